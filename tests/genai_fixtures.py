"""The recorded GenAI fixtures (``tests/data/genai``): list the sets, read a manifest, hand out the OTLP requests.

Each set is one run of ``tests/data/genai/record.py``: real instrumentations exporting over OTLP/HTTP, every
request body kept byte for byte under ``<set>/payloads/``, and ``<set>/manifest.json`` with the package versions,
the counts and, per trace, what the fake OpenAI server was sent and answered (the ground truth). Tests POST the
payloads to the real receiver, or import the payload files with the real importer: the protobuf ones are bare
``Export*ServiceRequest`` messages and the JSON ones single OTLP JSON objects, both of which ``python -m ingest
import`` reads as they are (docs/importing.md), so nothing is converted.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

GENAI_DATA = Path(__file__).resolve().parent / "data" / "genai"


class Payload(NamedTuple):
    """One captured OTLP/HTTP request: where it was sent, its content type, its body as sent, and its file."""

    path: str
    content_type: str
    body: bytes
    file: Path
    content_encoding: str | None = None

    @property
    def signal(self) -> str:
        """``traces``, ``logs`` or ``metrics``."""
        return self.path.rstrip("/").rsplit("/", 1)[-1]


def sets() -> list[str]:
    """The names of the recorded sets, sorted."""
    return sorted(p.parent.name for p in GENAI_DATA.glob("*/manifest.json"))


@cache
def manifest(name: str) -> dict[str, Any]:
    """A set's manifest (versions, environment, payloads, counts, traces with their calls)."""
    path = GENAI_DATA / name / "manifest.json"
    if not path.is_file():
        msg = f"no GenAI fixture set {name!r}; recorded sets: {', '.join(sets())}"
        raise KeyError(msg)
    return json.loads(path.read_text(encoding="utf-8"))


def payloads(name: str) -> Iterator[Payload]:
    """The set's captured requests, in the order the exporters sent them."""
    for entry in manifest(name)["payloads"]:
        file = GENAI_DATA / name / entry["file"]
        yield Payload(
            entry["path"], entry["content_type"], file.read_bytes(), file, entry["content_encoding"]
        )


def payload_files(name: str) -> list[Path]:
    """The payload files, for ``Importer.import_paths`` / ``python -m ingest import``."""
    return [payload.file for payload in payloads(name)]


def exchanges(name: str) -> list[dict[str, Any]]:
    """Every request the fake OpenAI server received in the set's run, with the answer it gave as sent."""
    return json.loads((GENAI_DATA / name / manifest(name)["exchanges_file"]).read_text(encoding="utf-8"))


def trace_ids(name: str) -> set[str]:
    """The trace ids the scenario app read from its root spans."""
    return {trace["trace_id"] for trace in manifest(name)["traces"]}


def calls(name: str) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(trace, call) for every API call of the set, with the ground truth of each."""
    for trace in manifest(name)["traces"]:
        for call in trace["calls"]:
            yield trace, call


def post(base_url: str, payload: Payload, timeout: float = 30.0) -> tuple[int, bytes]:
    """POST one payload to an OTLP/HTTP endpoint as the exporter sent it; (status, response body)."""
    headers = {"Content-Type": payload.content_type}
    if payload.content_encoding:
        headers["Content-Encoding"] = payload.content_encoding
    request = urllib.request.Request(
        base_url.rstrip("/") + payload.path, data=payload.body, headers=headers, method="POST"
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.status, response.read()
