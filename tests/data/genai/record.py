"""Record the GenAI fixtures: real instrumentations, the real ``openai`` client, a fake OpenAI server, raw OTLP.

For each set: create (or reuse) a throwaway virtual environment outside the repository with the exact package
versions of the set, start the fake OpenAI server (``fake_openai.py``) and a capture server that answers
OTLP/HTTP like a collector and keeps every request body byte for byte, run ``scenario.py`` in the venv with the
set's instrumentations and environment, then write ``<set>/payloads/*`` and ``<set>/manifest.json`` (versions,
environment, payload list, counts, and per trace the calls with what the fake server was sent and answered).

    .venv/bin/python tests/data/genai/record.py                 # every set
    .venv/bin/python tests/data/genai/record.py openinference-0.1.66 --venvs /tmp/venvs

Run it with the project's venv (it decodes the payloads with ``opentelemetry-proto`` to count them). Nothing
of the instrumentations is installed into the project: each set's venv lives under ``--venvs``.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from fake_openai import FakeOpenAI  # noqa: E402 - a sibling script, not a package

OTEL_EXPORTER = ["opentelemetry-sdk", "opentelemetry-exporter-otlp-proto-http"]
V2_LATEST = [
    "openai==2.54.0",
    "opentelemetry-instrumentation-openai-v2==2.4b0",
    "opentelemetry-sdk==1.45.2",
    "opentelemetry-exporter-otlp-proto-http==1.45.2",
]
OPENINFERENCE_LATEST = [
    "openai==2.54.0",
    "openinference-instrumentation-openai==0.1.66",
    "openinference-instrumentation==0.1.72",
    "openinference-semantic-conventions==0.1.42",
]
OPENLLMETRY_LATEST = [
    "openai==2.54.0",
    "opentelemetry-instrumentation-openai==0.62.4",
    "opentelemetry-semantic-conventions-ai==0.5.1",
]
LATEST_EXPERIMENTAL = {"OTEL_SEMCONV_STABILITY_OPT_IN": "gen_ai_latest_experimental"}

#: venv name -> pip requirement lines (installed together), then the ones installed with --no-deps.
VENVS: dict[str, dict[str, list[str]]] = {
    "otel-openai-v2-2.4b0": {"install": V2_LATEST, "no_deps": ["opentelemetry-util-genai==1.1b0"]},
    "otel-openai-v2-2.4b0-json": {
        "install": [
            "openai==2.54.0",
            "opentelemetry-instrumentation-openai-v2==2.4b0",
            "opentelemetry-sdk==1.45.1",
            "opentelemetry-exporter-otlp-json-http==0.66b1",
        ],
        "no_deps": ["opentelemetry-util-genai==1.1b0"],
    },
    "otel-openai-v2-2.1b0": {
        "install": [
            "openai==1.109.1",
            "opentelemetry-instrumentation-openai-v2==2.1b0",
            "opentelemetry-sdk==1.38.0",
            "opentelemetry-exporter-otlp-proto-http==1.38.0",
        ]
    },
    "openinference-0.1.66": {
        "install": [
            *OPENINFERENCE_LATEST,
            "opentelemetry-sdk==1.45.2",
            "opentelemetry-exporter-otlp-proto-http==1.45.2",
        ]
    },
    "openinference-0.1.30": {
        "install": [
            "openai==1.76.0",
            "openinference-instrumentation-openai==0.1.30",
            "openinference-instrumentation==0.1.28",
            "openinference-semantic-conventions==0.1.17",
            "opentelemetry-sdk==1.33.1",
            "opentelemetry-exporter-otlp-proto-http==1.33.1",
        ]
    },
    "openllmetry-0.62.4": {
        "install": [
            *OPENLLMETRY_LATEST,
            "opentelemetry-sdk==1.45.2",
            "opentelemetry-exporter-otlp-proto-http==1.45.2",
        ]
    },
    "openllmetry-0.40.14": {
        "install": [
            "openai==1.109.1",
            "opentelemetry-instrumentation-openai==0.40.14",
            "opentelemetry-sdk==1.33.1",
            "opentelemetry-exporter-otlp-proto-http==1.33.1",
        ]
    },
    "mixed-openinference-openllmetry": {
        "install": [
            *OPENINFERENCE_LATEST,
            "opentelemetry-instrumentation-openai==0.62.4",
            "opentelemetry-semantic-conventions-ai==0.5.1",
            "opentelemetry-sdk==1.45.2",
            "opentelemetry-exporter-otlp-proto-http==1.45.2",
        ]
    },
    # traceloop-sdk 0.62.4's own requirements cannot be resolved together (it pins instrumentations of
    # opentelemetry-instrumentation 0.59b0 while its openai instrumentation needs semantic-conventions >= 0.63b1):
    # it goes in with --no-deps over what its OpenAI path imports.
    "traceloop-sdk-0.62.4": {
        "install": [
            *OPENLLMETRY_LATEST,
            "opentelemetry-sdk==1.45.1",
            "opentelemetry-exporter-otlp-proto-http==1.45.1",
            "opentelemetry-exporter-otlp-proto-grpc==1.45.1",
            "opentelemetry-instrumentation-threading==0.66b1",
            "opentelemetry-instrumentation-logging==0.66b1",
            "requests",
            "colorama",
            "cuid",
            "deprecated",
            "jinja2",
            "pydantic",
            "tenacity",
            "aiohttp",
        ],
        "no_deps": ["traceloop-sdk==0.62.4"],
    },
}

#: set name -> venv, instrumentations turned on, environment, exporter protocol, instrumentor options, purpose.
SETS: dict[str, dict[str, Any]] = {
    "otel-openai-v2-2.4b0": {
        "venv": "otel-openai-v2-2.4b0",
        "instrument": ["otel-openai-v2"],
        "env": LATEST_EXPERIMENTAL | {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "SPAN_ONLY"},
        "about": "OTel GenAI semconv, latest experimental: content as JSON span attributes gen_ai.input.messages / "
        "gen_ai.output.messages",
    },
    "otel-openai-v2-2.4b0-events": {
        "venv": "otel-openai-v2-2.4b0",
        "instrument": ["otel-openai-v2"],
        "env": LATEST_EXPERIMENTAL | {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "EVENT_ONLY"},
        "about": "OTel GenAI semconv, latest experimental: content in log records named "
        "gen_ai.client.inference.operation.details (empty body, content in attributes)",
    },
    "otel-openai-v2-2.4b0-json": {
        "venv": "otel-openai-v2-2.4b0-json",
        "instrument": ["otel-openai-v2"],
        "protocol": "json",
        "env": LATEST_EXPERIMENTAL | {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "SPAN_AND_EVENT"},
        "about": "OTel GenAI semconv, latest experimental, content both on spans and in log records, exported as "
        "OTLP/HTTP JSON (opentelemetry-exporter-otlp-json-http)",
    },
    "otel-openai-v2-2.1b0": {
        "venv": "otel-openai-v2-2.1b0",
        "instrument": ["otel-openai-v2"],
        "env": {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true"},
        "about": "OTel GenAI semconv v1.28-1.30 era: content in log records gen_ai.system.message / "
        "gen_ai.user.message / gen_ai.assistant.message / gen_ai.tool.message / gen_ai.choice (Events API)",
    },
    "openinference-0.1.66": {
        "venv": "openinference-0.1.66",
        "instrument": ["openinference"],
        "env": {},
        "about": "OpenInference (Arize Phoenix): flattened llm.input_messages.N.message.* attributes, "
        "input.value / output.value, session.id / user.id from using_attributes; hide/trace config defaults",
    },
    "openinference-0.1.30": {
        "venv": "openinference-0.1.30",
        "instrument": ["openinference"],
        "env": {},
        "about": "OpenInference, an older release (openai 1.76 era) with the same conventions",
    },
    "openllmetry-0.62.4": {
        "venv": "openllmetry-0.62.4",
        "instrument": ["openllmetry"],
        "env": {"TRACELOOP_TRACE_CONTENT": "true"},
        "about": "OpenLLMetry (Traceloop), current: content as JSON span attributes gen_ai.input.messages / "
        "gen_ai.output.messages (its default use_attributes=True)",
    },
    "openllmetry-0.62.4-events": {
        "venv": "openllmetry-0.62.4",
        "instrument": ["openllmetry"],
        "env": {"TRACELOOP_TRACE_CONTENT": "true"},
        "openllmetry_options": {"use_attributes": False},
        "about": "OpenLLMetry, current, use_attributes=False: content in log records gen_ai.*.message / gen_ai.choice",
    },
    "openllmetry-0.40.14": {
        "venv": "openllmetry-0.40.14",
        "instrument": ["openllmetry"],
        "env": {"TRACELOOP_TRACE_CONTENT": "true"},
        "about": "OpenLLMetry, an older release: content as flattened gen_ai.prompt.N.* / gen_ai.completion.N.* "
        "attributes, tokens as gen_ai.usage.prompt_tokens / completion_tokens, llm.* keys",
    },
    "traceloop-sdk-0.62.4": {
        "venv": "traceloop-sdk-0.62.4",
        "instrument": ["traceloop-sdk"],
        "env": {"TRACELOOP_TRACE_CONTENT": "true", "TRACELOOP_METRICS_ENABLED": "false"},
        "about": "OpenLLMetry through traceloop-sdk's Traceloop.init (how most of its users run it): the "
        "instrumentation's spans plus traceloop.association.properties.session_id / user_id",
    },
    "mixed-openinference-openllmetry": {
        "venv": "mixed-openinference-openllmetry",
        "instrument": ["openinference", "openllmetry"],
        "env": {"TRACELOOP_TRACE_CONTENT": "true"},
        "about": "OpenInference and OpenLLMetry on the same client at once: every call gives one span of each "
        "convention in the same trace",
    },
}

RELEVANT = ("openai", "httpx", "opentelemetry", "openinference", "traceloop", "wrapt", "protobuf", "tiktoken")


# --------------------------------------------------------------------------- capture server


class _CaptureHandler(BaseHTTPRequestHandler):
    server: CaptureServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the files are the record."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        content_type = self.headers.get("Content-Type", "")
        self.server.keep(self.path, content_type, self.headers.get("Content-Encoding"), body)
        answer = b"{}" if "json" in content_type else b""  # an empty Export*ServiceResponse: all accepted
        self.send_response(200)
        self.send_header("Content-Type", content_type or "application/x-protobuf")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


class CaptureServer(ThreadingHTTPServer):
    """Answers OTLP/HTTP like a collector and writes each request body, unchanged, to ``folder``."""

    daemon_threads = True

    def __init__(self, folder: Path, relative_to: Path) -> None:
        super().__init__(("127.0.0.1", 0), _CaptureHandler)
        self.folder = folder
        self.relative_to = relative_to
        self.payloads: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self.serve_forever, name="otlp-capture", daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def keep(self, path: str, content_type: str, encoding: str | None, body: bytes) -> None:
        with self._lock:
            signal = path.rstrip("/").rsplit("/", 1)[-1]
            ext = "json" if "json" in content_type else "pb"
            target = (
                self.folder
                / f"{len(self.payloads) + 1:03d}-{signal}.{ext}{'.gz' if encoding == 'gzip' else ''}"
            )
            target.write_bytes(body)
            self.payloads.append(
                {
                    "file": str(target.relative_to(self.relative_to)),
                    "path": path,
                    "content_type": content_type,
                    "content_encoding": encoding,
                    "bytes": len(body),
                    "sha256": hashlib.sha256(body).hexdigest(),
                }
            )

    def __enter__(self) -> CaptureServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()


# --------------------------------------------------------------------------- counting what was sent


def count_items(payload: dict[str, Any], body: bytes) -> tuple[str, int]:
    """(signal, number of spans / log records / metric data points) in one captured request."""
    signal = payload["path"].rstrip("/").rsplit("/", 1)[-1]
    if payload["content_encoding"] == "gzip":
        body = gzip.decompress(body)
    if "json" in payload["content_type"]:
        data = json.loads(body)
        if signal == "traces":
            return signal, sum(
                len(s.get("spans", []))
                for r in data.get("resourceSpans", [])
                for s in r.get("scopeSpans", [])
            )
        if signal == "logs":
            return signal, sum(
                len(s.get("logRecords", []))
                for r in data.get("resourceLogs", [])
                for s in r.get("scopeLogs", [])
            )
        return signal, sum(
            len(
                next(iter(v for k, v in m.items() if isinstance(v, dict) and "dataPoints" in v), {}).get(
                    "dataPoints", []
                )
            )
            for r in data.get("resourceMetrics", [])
            for s in r.get("scopeMetrics", [])
            for m in s.get("metrics", [])
        )
    request: Any = {
        "traces": ExportTraceServiceRequest,
        "logs": ExportLogsServiceRequest,
        "metrics": ExportMetricsServiceRequest,
    }[signal]()
    try:
        request.ParseFromString(body)
    except DecodeError as error:
        raise SystemExit(f"{payload['file']}: not an OTLP {signal} request: {error}") from error
    if signal == "traces":
        return signal, sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans)
    if signal == "logs":
        return signal, sum(len(s.log_records) for r in request.resource_logs for s in r.scope_logs)
    return signal, sum(
        len(getattr(m, m.WhichOneof("data")).data_points)
        for r in request.resource_metrics
        for s in r.scope_metrics
        for m in s.metrics
    )


# --------------------------------------------------------------------------- venvs


def ensure_venv(root: Path, name: str) -> Path:
    """The venv's python, created and installed once per exact requirement list (a marker file remembers it)."""
    spec = VENVS[name]
    venv = root / name
    marker = venv / "fixture-requirements.json"
    wanted = json.dumps(spec, sort_keys=True)
    python = venv / "bin" / "python"
    if marker.exists() and marker.read_text() == wanted:
        return python
    if venv.exists():
        shutil.rmtree(venv)
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, *spec["install"]], check=True)
    if spec.get("no_deps"):
        subprocess.run([*pip, "--no-deps", *spec["no_deps"]], check=True)
    marker.write_text(wanted)
    return python


def pip_freeze(python: Path) -> list[str]:
    """The venv's installed packages, ``name==version``, limited to the ones that shape the telemetry."""
    out = subprocess.run(
        [str(python), "-m", "pip", "freeze", "--all"], check=True, capture_output=True, text=True
    )
    return sorted(line for line in out.stdout.splitlines() if line.lower().startswith(RELEVANT))


# --------------------------------------------------------------------------- ground truth


def _message(message: dict[str, Any]) -> dict[str, Any]:
    """A request message as the ground truth lists it: role, text content, tool calls, tool_call_id."""
    content = message.get("content")
    if isinstance(content, list):
        content = "".join(part.get("text", "") for part in content)
    return {
        "role": message.get("role"),
        "content": content,
        "tool_calls": [
            {"id": c["id"], "name": c["function"]["name"], "arguments": c["function"]["arguments"]}
            for c in message.get("tool_calls") or []
        ],
        "tool_call_id": message.get("tool_call_id"),
    }


def ground_truth(app: dict[str, Any], exchanges: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per trace: ids, session attributes, span count and each call joined with the fake server's exchange."""
    by_call = {(e["fixture_trace"], e["fixture_call"]): e for e in exchanges}
    if len(by_call) != len(exchanges):
        raise SystemExit("the fake server saw a call twice: an instrumentation retried or replayed a request")
    spans_per_trace = Counter(s["trace_id"] for s in app["spans"])
    traces = []
    for record in app["traces"]:
        calls = []
        for call in record["calls"]:
            exchange = by_call.pop((record["trace_id"], call["call"]), None)
            if exchange is None:
                raise SystemExit(f"{call['call']}: the fake server never saw this call")
            request = exchange["request"]
            answer = exchange["answer"] or {}
            usage = answer.get("usage")
            entry = {
                **call,
                "path": exchange["path"],
                "status": exchange["status"],
                "model_answered": answer.get("model"),
                "input_tokens": usage and usage["input_tokens"],
                "output_tokens": usage and usage["output_tokens"],
                "cached_tokens": usage and usage["cached_tokens"],
                "exchange": exchange["index"],
            }
            if call["kind"] == "chat":
                entry["request"] = {
                    "messages": [_message(m) for m in request.get("messages", [])],
                    "tools": [t["function"]["name"] for t in request.get("tools", [])],
                }
                entry["answer"] = (
                    {key: answer[key] for key in ("content", "tool_calls", "finish_reason")}
                    if exchange["status"] == 200
                    else None
                )
            else:
                entry["request"] = {"input": request.get("input")}
                entry["answer"] = {"vectors": answer["vectors"]} if exchange["status"] == 200 else None
            calls.append(entry)
        attributes = record["root_attributes"]
        traces.append(
            {
                "label": record["label"],
                "trace_id": record["trace_id"],
                "root_span_id": record["root_span_id"],
                "session_id": attributes.get("session.id"),
                "user_id": attributes.get("user.id"),
                "conversation_id": attributes.get("gen_ai.conversation.id"),
                "error": record["error"],
                "spans": spans_per_trace[record["trace_id"]],
                "calls": calls,
            }
        )
    if by_call:
        raise SystemExit(f"the fake server saw calls the app did not make: {sorted(by_call)}")
    return traces


# --------------------------------------------------------------------------- one set


def record(set_name: str, venvs: Path, protocol: str = "protobuf") -> dict[str, Any]:
    """Record one set into ``HERE/<set>`` and return its manifest."""
    spec = SETS[set_name]
    python = ensure_venv(venvs, spec["venv"])
    folder = HERE / set_name
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "payloads").mkdir(parents=True)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OTEL_", "TRACELOOP_", "OPENINFERENCE_", "OPENAI_"))
    }
    env |= spec["env"]
    app_file = folder / "app.json"
    with FakeOpenAI() as fake, CaptureServer(folder / "payloads", folder) as capture:
        command = [
            str(python),
            str(HERE / "scenario.py"),
            "--set",
            set_name,
            "--openai-url",
            fake.base_url,
            "--otlp-endpoint",
            capture.endpoint,
            "--protocol",
            spec.get("protocol", protocol),
            "--out",
            str(app_file),
            "--openllmetry-options",
            json.dumps(spec.get("openllmetry_options", {})),
        ]
        for name in spec["instrument"]:
            command += ["--instrument", name]
        subprocess.run(command, check=True, env=env, cwd=folder)
        exchanges = fake.exchanges
        payloads = capture.payloads
    app = json.loads(app_file.read_text())
    app_file.unlink()
    sent: Counter[str] = Counter()
    for payload in payloads:
        signal, items = count_items(payload, (folder / payload["file"]).read_bytes())
        payload["items"] = items
        sent[signal] += items
    if sent["traces"] != len(app["spans"]) or sent["logs"] != len(app["log_records"]):
        raise SystemExit(
            f"{set_name}: the exporters sent {dict(sent)} but the SDK finished "
            f"{len(app['spans'])} spans and {len(app['log_records'])} log records"
        )
    (folder / "fake_openai_exchanges.json").write_text(
        json.dumps(exchanges, indent=1, ensure_ascii=False) + "\n"
    )
    manifest = {
        "set": set_name,
        "about": spec["about"],
        "instrumentations": spec["instrument"],
        "openllmetry_options": spec.get("openllmetry_options", {}),
        "venv_requirements": VENVS[spec["venv"]],
        "packages": app["versions"],
        "pip_freeze": pip_freeze(python),
        "python": subprocess.run(
            [str(python), "-c", "import sys; print(sys.version.split()[0])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip(),
        "env": spec["env"],
        "protocol": spec.get("protocol", protocol),
        "service_name": f"genai-{set_name}",
        "counts": {
            "spans": sent["traces"],
            "log_records": sent["logs"],
            "metric_points": sent["metrics"],
            "traces": len(app["traces"]),
            "calls": len(exchanges),
        },
        "span_names": dict(sorted(Counter(s["name"] for s in app["spans"]).items())),
        "log_event_names": dict(sorted(Counter(str(r["event_name"]) for r in app["log_records"]).items())),
        "payloads": payloads,
        "exchanges_file": "fake_openai_exchanges.json",
        "traces": ground_truth(app, exchanges),
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    return manifest


def main() -> None:
    """Record the sets named (all by default)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("sets", nargs="*", help=f"default: all of {', '.join(SETS)}")
    parser.add_argument(
        "--venvs",
        type=Path,
        default=Path(os.environ.get("GENAI_FIXTURE_VENVS", "/work/genai-venvs")),
        help="where the throwaway venvs live (outside the repository)",
    )
    args = parser.parse_args()
    unknown = [name for name in args.sets if name not in SETS]
    if unknown:
        parser.error(f"unknown set(s) {unknown}; known: {', '.join(SETS)}")
    for name in args.sets or list(SETS):
        manifest = record(name, args.venvs)
        print(f"{name}: {manifest['counts']} in {len(manifest['payloads'])} payloads")


if __name__ == "__main__":
    main()
