"""Jaeger JSON ("Download JSON" from the Jaeger UI) imported as spans, mapped as OTel's Jaeger translator does."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.dataset as ds

from ingest.sources.importer import Importer
from ingest.store.rejects import read_rejected

DATA = Path(__file__).parent / "data"


def test_jaeger_download_maps_parent_links_kind_status_events_and_resources(tmp_path: Path) -> None:
    store = tmp_path / "store"
    [report] = Importer(store, progress=False, durable=False).import_paths([DATA / "jaeger.json"])
    assert report.format.startswith("jaeger-json") and report.written == {"spans": 3}
    spans = {s["name"]: s for s in ds.dataset(store / "spans", format="parquet").to_table().to_pylist()}
    root, child, lone = spans["HTTP GET /dispatch"], spans["SQL SELECT"], spans["Driver::findNearest"]

    assert root["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736" and root["span_id"] == "00f067aa0ba902b7"
    assert root["parent_span_id"] is None and root["kind"] == "SERVER" and root["status_code"] == "OK"
    assert root["service_name"] == "frontend" and root["scope_name"] == "net/http"
    assert dict(root["resource_attributes"]) == {"service.name": "frontend", "hostname": "web-1"}
    assert dict(root["attributes"]) == {"http.status_code": "200", "sampler.param": "true"}
    assert root["start_time_unix_nano"] == 1_700_000_000_000_000_000 and root["duration_ns"] == 250_000_000
    [event] = root["events"]
    assert event["name"] == "cache miss" and dict(event["attributes"]) == {"key": "driver:1"}
    assert event["time_unix_nano"] == 1_700_000_000_010_000_000

    assert child["parent_span_id"] == "00f067aa0ba902b7" and child["kind"] == "CLIENT"
    assert child["status_code"] == "ERROR" and child["service_name"] == "mysql"
    assert dict(child["attributes"]) == {"error": "true", "db.rows": "12.5", "payload": "AQID"}
    [link] = child["links"]
    assert link["trace_id"] == "0af7651916cd43dd8448eb211c80319c" and link["span_id"] == "a2fb4a1d1a96d312"
    assert dict(link["attributes"]) == {"jaeger.ref_type": "FOLLOWS_FROM"}
    assert child["duration_ns"] == 180_500_000

    assert lone["trace_id"] == "0000000000000000a3ce929d0e0e4736"  # a 64-bit Jaeger trace id, widened
    assert lone["kind"] == "INTERNAL" and lone["status_code"] == "UNSET" and lone["duration_ns"] == 5000

    [rejected] = [r for p in (store / "_rejected").glob("*.jsonl") for r in read_rejected(p)]
    assert "data[2].spans[0].spanID" in rejected["reason"]
    assert json.loads(rejected["data"])["traceID"] == "11112222333344445555666677778888"
