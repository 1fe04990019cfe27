"""Ingest throughput: ``python -m ingest import`` of OTLP JSON Lines, and the OTLP/HTTP receiver.

1. Import: a generated OTLP JSON Lines file of ``--spans`` spans (default 1,000,000; 512 spans a line,
   as the Collector's ``file`` exporter writes batches; six attributes a span, an event on one span in
   ten, a link on one in 25, four services) imported into a fresh store by :class:`ingest.sources.importer.Importer`
   (the compiled JSON Lines reader ``ingest.sources._jsonarrow``, or DuckDB's where it is not built; dedupe,
   durable Parquet writes), ``--runs`` times; the median is reported.
   Baseline in the same run: the classic way — ``json.loads`` and protobuf ``json_format.ParseDict``
   into ``ExportTraceServiceRequest`` (ids fixed to hex first, as json_format would misread them),
   then the per-span conversion and the same writer — on the first ``--baseline-spans`` spans.
   Target: >= 300,000 spans/s.
2. Receiver: ``python -m ingest serve`` in a subprocess; ``--clients`` threads post pre-encoded
   protobuf ``ExportTraceServiceRequest`` batches (512 spans each, ``--receiver-spans`` in all) over
   keep-alive connections; then SIGTERM, and the store must hold every span. Reported: spans/s
   until the last 200 OK (accepted), and until the process exited with everything on disk.
   Target: >= 50,000 spans/s with nothing lost.

Usage: ``python bench/ingest.py [--spans N] [--runs R] [--check]``; the generated file is cached in
``--workdir`` (default: a folder in the system temp dir). Results: docs/benchmarks.md ("Ingest").
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ingest.sources.importer import Importer  # noqa: E402
from ingest.sources.otlp import decode_traces, request_from_json  # noqa: E402
from ingest.sources.otlp_json import compiled_reader  # noqa: E402
from ingest.store.writer import StoreWriter  # noqa: E402

SPANS_PER_LINE = 512


def _value(v: object) -> dict:
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    if isinstance(v, float):
        return {"doubleValue": v}
    return {"stringValue": v}


def _kvs(d: dict) -> list[dict]:
    return [{"key": k, "value": _value(v)} for k, v in d.items()]


def generate(path: Path, n_spans: int, seed: int = 1) -> None:
    """OTLP JSON Lines like the Collector's file exporter: one ExportTraceServiceRequest per line."""
    rnd = random.Random(seed)
    t0 = 1_700_000_000_000_000_000
    services = ["gateway", "orchestrator", "llm-proxy", "retriever"]
    made = 0
    tmp = path.with_suffix(".partial")
    with open(tmp, "w") as out:
        while made < n_spans:
            k = min(SPANS_PER_LINE, n_spans - made)
            service = services[(made // SPANS_PER_LINE) % len(services)]
            spans = []
            trace = root = ""
            for i in range(k):
                if i % 8 == 0:
                    trace, root, parent = f"{rnd.getrandbits(128):032x}", f"{rnd.getrandbits(64):016x}", ""
                    span_id = root
                else:
                    parent, span_id = root, f"{rnd.getrandbits(64):016x}"
                start = t0 + (made + i) * 1_000_000
                span = {
                    "traceId": trace,
                    "spanId": span_id,
                    "parentSpanId": parent,
                    "name": f"agent.step.{i % 17}",
                    "kind": 1 + i % 3,
                    "startTimeUnixNano": str(start),
                    "endTimeUnixNano": str(start + rnd.randint(1_000, 100_000_000)),
                    "attributes": _kvs(
                        {
                            "http.method": "POST",
                            "http.status_code": 200 + i % 3,
                            "llm.tokens": rnd.randint(1, 4000),
                            "cache.hit": bool(i % 2),
                            "score": rnd.random(),
                            "user.id": f"u{rnd.randint(1, 999)}",
                        }
                    ),
                    "status": {"code": 2, "message": "upstream timeout"} if i % 50 == 0 else {},
                }
                if i % 10 == 0:
                    span["events"] = [
                        {
                            "timeUnixNano": str(start + 10),
                            "name": "exception",
                            "attributes": _kvs({"exception.type": "TimeoutError"}),
                        }
                    ]
                if i % 25 == 0:
                    span["links"] = [
                        {"traceId": f"{rnd.getrandbits(128):032x}", "spanId": f"{rnd.getrandbits(64):016x}"}
                    ]
                spans.append(span)
            request = {
                "resourceSpans": [
                    {
                        "resource": {"attributes": _kvs({"service.name": service, "host.name": "node-1"})},
                        "scopeSpans": [{"scope": {"name": "langswarm", "version": "2.0"}, "spans": spans}],
                    }
                ]
            }
            out.write(json.dumps(request, separators=(",", ":")) + "\n")
            made += k
    os.replace(tmp, path)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def bench_import(path: Path, n_spans: int, runs: int, work: Path, cpu: list[float]) -> list[float]:
    """Median-able spans/s of whole-file imports; ``cpu`` gets the CPU seconds (all threads) of each."""
    rates = []
    for run in range(runs):
        store = work / f"import-store-{run}"
        shutil.rmtree(store, ignore_errors=True)
        started = time.perf_counter()
        cpu_start = _cpu()
        report = Importer(store, progress=False).import_file(path)
        elapsed = time.perf_counter() - started
        cpu.append(_cpu() - cpu_start)
        assert report.written.get("spans") == n_spans and report.rejected == 0, report.summary()
        rates.append(n_spans / elapsed)
        print(
            f"  import run {run + 1}: {elapsed:.2f} s, {n_spans / elapsed:,.0f} spans/s, {cpu[-1]:.2f} CPU s",
            flush=True,
        )
        shutil.rmtree(store, ignore_errors=True)
    return rates


def bench_baseline(path: Path, n_spans: int, runs: int, work: Path) -> list[float]:
    """json.loads + json_format.ParseDict into the proto classes + per-span conversion + the same writer."""
    lines = []
    with open(path, "rb") as handle:
        for line in handle:
            lines.append(line)
            if len(lines) * SPANS_PER_LINE >= n_spans:
                break
    count = len(lines) * SPANS_PER_LINE
    rates = []
    for run in range(runs):
        store = work / f"baseline-store-{run}"
        shutil.rmtree(store, ignore_errors=True)
        writer = StoreWriter(store)
        started = time.perf_counter()
        pending = []
        rows = 0
        for line in lines:
            _, request = request_from_json(json.loads(line), "traces")
            table = decode_traces(request).table
            pending.append(table)
            rows += table.num_rows
            if sum(t.num_rows for t in pending) >= 262_144:
                import pyarrow as pa

                writer.write("spans", pa.concat_tables(pending))
                pending = []
        if pending:
            import pyarrow as pa

            writer.write("spans", pa.concat_tables(pending))
        elapsed = time.perf_counter() - started
        assert rows == count
        rates.append(count / elapsed)
        print(
            f"  baseline run {run + 1}: {count:,} spans in {elapsed:.2f} s, {count / elapsed:,.0f} spans/s",
            flush=True,
        )
        shutil.rmtree(store, ignore_errors=True)
    return rates


def bench_receiver(path: Path, n_spans: int, clients: int, work: Path) -> dict[str, float]:
    bodies = []
    with open(path, "rb") as handle:
        for line in handle:
            bodies.append(request_from_json(json.loads(line), "traces")[1].SerializeToString())
            if len(bodies) * SPANS_PER_LINE >= n_spans:
                break
    total = len(bodies) * SPANS_PER_LINE
    store = work / "receiver-store"
    shutil.rmtree(store, ignore_errors=True)
    process = subprocess.Popen(
        [sys.executable, "-m", "ingest", "serve", "--store", str(store), "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = process.stdout.readline()
    match = re.search(r"http://([\d.]+):(\d+)", line)
    if not match:
        process.kill()
        raise SystemExit(f"receiver did not start: {line} {process.stderr.read()}")
    host, port = match.group(1), int(match.group(2))
    failures: list[str] = []

    def client(share: list[bytes]) -> None:
        connection = http.client.HTTPConnection(host, port, timeout=120)
        for body in share:
            for attempt in range(20):
                connection.request(
                    "POST", "/v1/traces", body=body, headers={"Content-Type": "application/x-protobuf"}
                )
                response = connection.getresponse()
                response.read()
                if response.status == 200:
                    break
                if response.status not in (429, 503):
                    failures.append(f"HTTP {response.status}")
                    break
                time.sleep(0.1 * (attempt + 1))
        connection.close()

    threads = [threading.Thread(target=client, args=(bodies[i::clients],)) for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    accepted = time.perf_counter() - started
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=300)
    on_disk = time.perf_counter() - started
    import pyarrow.dataset as ds

    stored = ds.dataset(store / "spans", format="parquet").count_rows() if (store / "spans").exists() else 0
    shutil.rmtree(store, ignore_errors=True)
    if failures or stored != total or process.returncode != 0:
        raise SystemExit(
            f"receiver lost data: sent {total}, stored {stored}, failures {failures[:3]}, exit {process.returncode}: {err[-500:]}"
        )
    return {"spans": total, "accepted_rate": total / accepted, "disk_rate": total / on_disk, "stored": stored}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline-spans", type=int, default=100_000)
    parser.add_argument("--receiver-spans", type=int, default=300_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "langswarm-bench-ingest"
    )
    parser.add_argument("--skip-receiver", action="store_true")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    source = args.workdir / f"otlp-traces-{args.spans}.jsonl"
    if not source.exists():
        print(f"generating {source} ({args.spans:,} spans) ...", flush=True)
        generate(source, args.spans)
    size = source.stat().st_size
    print(f"input: {source} ({size / 1e6:.0f} MB, {args.spans:,} spans, {SPANS_PER_LINE} a line)")
    load = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} cores, load average {load:.1f} at start", flush=True)

    baseline = bench_baseline(source, args.baseline_spans, args.runs, args.workdir)
    cpu: list[float] = []
    rates = bench_import(source, args.spans, args.runs, args.workdir, cpu)
    receiver = (
        None
        if args.skip_receiver
        else bench_receiver(source, args.receiver_spans, args.clients, args.workdir)
    )

    base = statistics.median(baseline)
    fast = statistics.median(rates)
    print()
    print(f"{'measurement':58s} {'median':>14s}  target")
    print(f"{'baseline: json.loads + json_format.ParseDict + conversion':58s} {base:>10,.0f} /s  (reference)")
    reader = "compiled reader" if compiled_reader() else "DuckDB reader"
    print(f"{f'import ({reader}, dedupe, durable writes)':58s} {fast:>10,.0f} /s  >= 300,000")
    print(f"{'  speed-up over the baseline':58s} {fast / base:>12.1f}x")
    print(f"{'  throughput in MB of JSON per second':58s} {size / 1e6 / (args.spans / fast):>10,.0f} MB/s")
    per_cpu = args.spans / statistics.median(cpu)
    print(f"{'  spans per CPU-second (all threads; x2 = two idle cores)':58s} {per_cpu:>10,.0f} /s")
    ok = fast >= 300_000
    if receiver:
        print(
            f"{f'receiver, {args.clients} clients, accepted (200 OK)':58s} {receiver['accepted_rate']:>10,.0f} /s  >= 50,000"
        )
        print(
            f"{'receiver, until SIGTERM exit with all spans on disk':58s} {receiver['disk_rate']:>10,.0f} /s"
        )
        print(f"{'receiver: spans sent / stored':58s} {receiver['spans']:>10,} / {receiver['stored']:,}")
        ok = ok and receiver["accepted_rate"] >= 50_000
    print(f"load average at end {os.getloadavg()[0]:.1f}")
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
