"""Drops and rejected input are visible: `explorer.telemetry_health` over a store the real SDK and importer wrote."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from explorer import open_store, telemetry_health

REPO = Path(__file__).resolve().parents[1]


def test_span_limit_drops_and_rejected_lines_are_reported(make_provider, tmp_path):
    """Spans over max_spans_per_trace and a malformed import line each show up with their reason and count."""
    provider = make_provider({"performance": {"max_spans_per_trace": 3}}, "planner")
    tracer = provider.get_tracer("agent")
    with tracer.start_span("root"):
        for i in range(6):
            with tracer.start_span(f"step-{i}"):
                pass
    provider.shutdown()
    store_dir = tmp_path / "store"

    bad = tmp_path / "broken.jsonl"
    bad.write_text('{"resourceSpans": [\n')
    result = subprocess.run(
        [sys.executable, "-m", "ingest", "import", str(bad), "--store", str(store_dir)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        cwd=tmp_path,
    )
    assert result.returncode == 1, result.stderr

    store = open_store(store_dir)
    assert store.sql("SELECT count(*) AS n FROM spans")["n"][0] == 3
    health = telemetry_health(store)
    dropped = health[(health["what"] == "dropped_spans") & (health["reason"] == "max_spans_per_trace")]
    assert dropped[["service_name", "count"]].values.tolist() == [["planner", 4]]
    rejected = health[health["what"] == "rejected_input"]
    assert rejected["count"].sum() == 1 and "JSON" in rejected["reason"].iloc[0]
    assert telemetry_health(store, service="nobody").empty


def test_a_clean_store_reports_nothing(make_provider, tmp_path):
    """No drop, no rejection: an empty frame (the page says every item arrived)."""
    provider = make_provider({}, "clean")
    with provider.get_tracer("a").start_span("ok"):
        pass
    provider.shutdown()
    assert telemetry_health(open_store(tmp_path / "store")).empty
