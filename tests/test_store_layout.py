"""The portable layout: microsecond timestamps beside exact ``*_unix_nano`` columns, and stores written before it
(nanosecond timestamps, no ``*_unix_nano``) still open in the explorer and migrate in place."""

from __future__ import annotations

import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from explorer import open_store
from explorer.queries import trace_tree
from ingest.store import schema
from ingest.store.encoding import table_from_columns
from ingest.store.migrate import is_current, migrate
from ingest.store.writer import StoreWriter

NS = pa.timestamp("ns", tz="UTC")
OLD_SPANS = pa.schema(
    [
        (f.name, NS if f.name in ("start_time", "end_time") else f.type)
        for f in schema.SPANS
        if "unix_nano" not in f.name
    ]
).set(schema.SPANS.get_field_index("events") - 2, pa.field("events", pa.list_(schema.EVENT_NS)))


def _old_spans(t0: int) -> pa.Table:
    """Two spans of one trace as a store written before the portable layout holds them: started 400 ns apart."""
    rows = {
        "trace_id": ["a" * 32] * 2,
        "span_id": ["1" * 16, "2" * 16],
        "parent_span_id": [None, "1" * 16],
        "name": ["root", "child"],
        "kind": ["SERVER", "INTERNAL"],
        "service_name": ["svc"] * 2,
        "start_time": [t0, t0 + 400],
        "end_time": [t0 + 5_000_123, t0 + 900],
        "duration_ns": [5_000_123, 500],
        "status_code": ["OK"] * 2,
        "events": [[{"name": "e", "timestamp": t0 + 777, "attributes": []}], []],
        "links": [[], []],
    }
    return pa.table(
        {f.name: pa.array(rows.get(f.name, [None] * 2), f.type) for f in OLD_SPANS}, schema=OLD_SPANS
    )


def _write_old(store: Path, t0: int) -> Path:
    day = time.strftime("%Y-%m-%d", time.gmtime(t0 // 10**9))
    path = store / "spans" / f"date={day}" / "old.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(_old_spans(t0), path)
    return path


def test_writer_stores_microsecond_timestamps_and_exact_nanoseconds(tmp_path: Path) -> None:
    t0 = 1_795_536_667_301_428_963
    table = table_from_columns(
        "spans",
        {
            "trace_id": ["a" * 32],
            "span_id": ["1" * 16],
            "start_time": [t0],
            "end_time": [t0 + 1],
            "events": pa.array(
                [[{"name": "e", "timestamp": t0 + 2, "attributes": []}]], pa.list_(schema.EVENT_NS)
            ),
        },
        1,
    )
    [path] = StoreWriter(tmp_path, durable=False).write("spans", table)
    stored = pq.read_table(path)
    assert stored.schema.field("start_time").type == pa.timestamp("us", tz="UTC")
    row = stored.to_pylist()[0]
    assert (row["start_time_unix_nano"], row["end_time_unix_nano"]) == (t0, t0 + 1)
    assert row["events"][0]["time_unix_nano"] == t0 + 2
    assert row["start_time"].timestamp() * 1e6 == pytest.approx(t0 // 1000, abs=1)


def test_an_old_store_opens_with_exact_nanoseconds_derived(tmp_path: Path) -> None:
    """Old files next to new ones: the view derives the *_unix_nano columns, the trace tree stays ns exact."""
    t0 = time.time_ns() // 10**9 * 10**9 + 123_456_789
    _write_old(tmp_path, t0)
    new = _old_spans(t0 + 10**6)
    new = table_from_columns(
        "spans",
        {name: new.column(name) for name in new.column_names if name not in ("trace_id",)}
        | {"trace_id": ["b" * 32] * 2},
        2,
    )
    StoreWriter(tmp_path, durable=False).write("spans", new)
    store = open_store(tmp_path)
    rows = store.sql(
        "SELECT trace_id, span_id, start_time, start_time_unix_nano, events FROM spans ORDER BY 1, 2"
    )
    assert rows["start_time_unix_nano"].tolist() == [t0, t0 + 400, t0 + 10**6, t0 + 10**6 + 400]
    assert str(rows["start_time"].dt.tz) == "UTC"
    assert rows["start_time"].iloc[0].value == t0 // 1000 * 1000  # truncated, as the writer stores it
    assert rows["events"].iloc[0][0]["time_unix_nano"] == t0 + 777
    tree = trace_tree(store, "a" * 32)
    assert tree["offset_ms"].tolist() == [0.0, 0.0004]


def test_migrate_rewrites_old_files_in_place_and_is_idempotent(tmp_path: Path) -> None:
    t0 = time.time_ns() // 10**9 * 10**9 + 987_654_321
    path = _write_old(tmp_path, t0)
    before = open_store(tmp_path).sql(
        "SELECT span_id, start_time_unix_nano, duration_ns FROM spans ORDER BY 1"
    )
    assert not is_current(path, "spans")
    report = migrate(tmp_path, dry_run=True)
    assert report.rewritten == [path] and not is_current(path, "spans")
    report = migrate(tmp_path)
    assert report.rewritten == [path] and is_current(path, "spans")
    assert migrate(tmp_path).rewritten == [] and migrate(tmp_path).current == 1
    after = open_store(tmp_path).sql(
        "SELECT span_id, start_time_unix_nano, duration_ns FROM spans ORDER BY 1"
    )
    assert after.equals(before)
    assert pq.read_table(path).column("events").to_pylist()[0][0]["time_unix_nano"] == t0 + 777
