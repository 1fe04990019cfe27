"""Importing OTLP: the opentelemetry-proto examples field by field, and every path against the SDK's own encoder."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pytest
import zstandard

from explorer.store import Store
from ingest.sources.importer import Importer, SpanIndex
from ingest.sources.otlp import request_from_json
from ingest.store.encoding import encode_logs, encode_metrics, encode_spans
from ingest.store.writer import StoreWriter
from tests.otlp_samples import (
    jsonl,
    length_prefixed,
    otlp_logs,
    otlp_metrics,
    otlp_spans,
    sdk_logs,
    sdk_metrics,
    sdk_spans,
    to_otlp_json,
)

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).resolve().parents[1]


def _import(store: Path, *paths: Path) -> Any:
    return Importer(store, progress=False, durable=False).import_paths(list(paths))


def _rows(store: Path, table: str, order: str) -> list[dict[str, Any]]:
    """Every row of a store table, read back with pyarrow (exact ns times, maps as key/value pairs)."""
    data = ds.dataset(store / table, format="parquet", partitioning="hive").to_table()
    data = data.drop_columns(["date"]).sort_by([(k.strip(), "ascending") for k in order.split(",")])
    return data.to_pylist()


def _normalise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Maps as dicts (key order is not meaning), NaN-free, so rows from different paths compare equal."""
    out = []
    for row in rows:
        clean = {}
        for key, value in row.items():
            if isinstance(value, list) and value and isinstance(value[0], tuple):
                value = dict(value)
            elif isinstance(value, list):
                value = [_normalise([v])[0] if isinstance(v, dict) else v for v in value]
            clean[key] = value
        out.append(clean)
    return out


class TestOpentelemetryProtoExamples:
    """tests/data/{trace,metrics,logs}.json are opentelemetry-proto's examples/, byte for byte."""

    def test_trace_example_lands_field_by_field(self, tmp_path: Path) -> None:
        """Upper-case hex ids are read as hex (not base64), numbers as int64, kind 2 as SERVER."""
        store = tmp_path / "store"
        [report] = _import(store, DATA / "trace.json")
        assert report.written == {"spans": 1} and report.rejected == 0
        [span] = Store(store).sql("SELECT * FROM spans").to_dict("records")
        assert span["trace_id"] == "5b8efff798038103d269b633813fc60c"
        assert span["span_id"] == "eee19b7ec3c1b174"
        assert span["parent_span_id"] == "eee19b7ec3c1b173"
        assert span["name"] == "I'm a server span"
        assert span["kind"] == "SERVER"
        assert span["service_name"] == "my.service"
        assert span["start_time_unix_nano"] == 1544712660000000000
        assert span["end_time_unix_nano"] == 1544712661000000000
        assert span["duration_ns"] == 1_000_000_000
        assert span["status_code"] == "UNSET" and span["status_message"] is None
        assert dict(span["attributes"]) == {"my.span.attr": "some value"}
        assert dict(span["resource_attributes"]) == {"service.name": "my.service"}
        assert span["scope_name"] == "my.library" and span["scope_version"] == "1.0.0"
        assert list(span["events"]) == [] and list(span["links"]) == []
        assert str(span["date"]).startswith("2018-12-13")  # the day partition of the span's start

    def test_logs_example_keeps_every_anyvalue_kind(self, tmp_path: Path) -> None:
        store = tmp_path / "store"
        [report] = _import(store, DATA / "logs.json")
        assert report.written == {"logs": 1}
        [log] = Store(store).sql("SELECT * FROM logs").to_dict("records")
        assert log["time_unix_nano"] == 1544712660300000000
        assert log["observed_time_unix_nano"] == 1544712660300000000
        assert log["trace_id"] == "5b8efff798038103d269b633813fc60c"
        assert log["span_id"] == "eee19b7ec3c1b174"
        assert log["severity_text"] == "Information" and log["severity_number"] is None
        assert log["body"] == "Example log record"
        assert log["service_name"] == "my.service" and log["logger_name"] == "my.library"
        attrs = dict(log["attributes"])
        assert attrs == {
            "string.attribute": "some string",
            "boolean.attribute": "true",
            "int.attribute": "10",
            "double.attribute": "637.704",
            "array.attribute": '["many", "values"]',
            "map.attribute": '{"some.map.key": "some value"}',
        }
        with Store(store) as s:
            typed = s.sql(
                "SELECT CAST(attributes['int.attribute'] AS BIGINT) AS i, CAST(attributes['double.attribute'] AS DOUBLE) AS d,"
                " CAST(attributes['array.attribute'] AS VARCHAR[]) AS a,"
                " json_extract_string(attributes['map.attribute'], '$.\"some.map.key\"') AS m FROM logs"
            ).to_dict("records")[0]
        assert typed["i"] == 10 and typed["d"] == 637.704 and list(typed["a"]) == ["many", "values"]
        assert typed["m"] == "some value"

    def test_metrics_example_sum_gauge_histogram(self, tmp_path: Path) -> None:
        store = tmp_path / "store"
        [report] = _import(store, DATA / "metrics.json")
        assert report.written == {"metrics": 3}
        rows = {r["name"]: r for r in _rows(store, "metrics", "name")}
        counter, gauge, histogram = rows["my.counter"], rows["my.gauge"], rows["my.histogram"]
        assert counter["type"] == "counter" and counter["is_monotonic"] and counter["temporality"] == "delta"
        assert (
            counter["value"] == 5.0 and counter["unit"] == "1" and counter["description"] == "I am a Counter"
        )
        assert counter["start_time_unix_nano"] == 1544712660300000000
        assert dict(counter["attributes"]) == {"my.counter.attr": "some value"}
        assert gauge["type"] == "gauge" and gauge["value"] == 10.0 and gauge["temporality"] is None
        assert histogram["type"] == "histogram" and histogram["temporality"] == "delta"
        assert histogram["count"] == 2 and histogram["sum"] == 2.0
        assert list(histogram["bucket_counts"]) == [1, 1] and list(histogram["explicit_bounds"]) == [1.0]
        assert histogram["min"] == 0.0 and histogram["max"] == 2.0
        assert all(
            r["service_name"] == "my.service" and r["scope_name"] == "my.library" for r in rows.values()
        )

    def test_the_examples_as_protobuf_give_the_same_rows(self, tmp_path: Path) -> None:
        """Each example as one bare protobuf message, and all three length-prefixed in one file."""
        requests = [
            request_from_json(json.loads((DATA / f"{n}.json").read_text()))[1]
            for n in ("trace", "logs", "metrics")
        ]
        (tmp_path / "trace.pb").write_bytes(requests[0].SerializeToString())
        (tmp_path / "all.pb").write_bytes(length_prefixed(requests))
        _import(tmp_path / "json", *(DATA / f"{n}.json" for n in ("trace", "logs", "metrics")))
        [single] = _import(tmp_path / "bare", tmp_path / "trace.pb")
        [framed] = _import(tmp_path / "framed", tmp_path / "all.pb")
        assert single.written == {"spans": 1} and "one message" in single.format
        assert framed.written == {"spans": 1, "logs": 1, "metrics": 3} and "length-prefixed" in framed.format
        for table, order in (("spans", "span_id"), ("logs", "timestamp"), ("metrics", "name")):
            assert _rows(tmp_path / "framed", table, order) == _rows(tmp_path / "json", table, order)
        assert _rows(tmp_path / "bare", "spans", "span_id") == _rows(tmp_path / "json", "spans", "span_id")


class TestAgainstTheSdkEncoder:
    """SDK objects -> OTLP (JSON Lines, gzip, zstd, protobuf) -> import == SDK objects -> ParquetSpanExporter encoding."""

    def test_spans_every_path_equals_the_exporters_encoding(self, tmp_path: Path) -> None:
        spans = sdk_spans()
        request = otlp_spans(spans)
        line = to_otlp_json(request)
        (tmp_path / "spans.jsonl").write_bytes(jsonl([line]))
        (tmp_path / "spans.jsonl.gz").write_bytes(gzip.compress(jsonl([line])))
        (tmp_path / "spans.zst").write_bytes(zstandard.ZstdCompressor().compress(jsonl([line])))
        (tmp_path / "spans.pb").write_bytes(length_prefixed([request]))
        (tmp_path / "spans.json").write_text(json.dumps(line, indent=2))
        expected = _normalise(sorted(encode_spans(spans).to_pylist(), key=lambda r: r["span_id"]))
        for name in ("spans.jsonl", "spans.jsonl.gz", "spans.zst", "spans.pb", "spans.json"):
            store = tmp_path / f"store-{name}"
            [report] = _import(store, tmp_path / name)
            assert report.written == {"spans": len(spans)}, (name, report)
            got = _normalise(_rows(store, "spans", "span_id"))
            assert [_plain(r) for r in got] == [_plain(r) for r in expected], name

    def test_logs_and_metrics_equal_the_exporters_encoding(self, tmp_path: Path) -> None:
        logs = sdk_logs()
        metrics = sdk_metrics()
        lines = [to_otlp_json(otlp_logs(logs)), to_otlp_json(otlp_metrics(metrics))]
        (tmp_path / "mixed.jsonl").write_bytes(jsonl(lines))
        store = tmp_path / "store"
        [report] = _import(store, tmp_path / "mixed.jsonl")
        assert report.written == {"logs": len(logs), "metrics": encode_metrics(metrics).num_rows}
        expected_logs = sorted(encode_logs(logs).to_pylist(), key=lambda r: (r["timestamp"], r["body"]))
        got_logs = _rows(store, "logs", "timestamp,body")
        assert [_plain(r) for r in _normalise(got_logs)] == [_plain(r) for r in _normalise(expected_logs)]
        key = lambda r: (r["name"], json.dumps(sorted(dict(r["attributes"]).items())))  # noqa: E731
        expected_metrics = sorted(encode_metrics(metrics).to_pylist(), key=key)
        got_metrics = sorted(_rows(store, "metrics", "name"), key=key)
        assert [_plain(r) for r in _normalise(got_metrics)] == [
            _plain(r) for r in _normalise(expected_metrics)
        ]


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """Comparable values: timestamps as integer ns, NaN as None."""
    out = {}
    for key, value in row.items():
        if hasattr(value, "value") and hasattr(value, "tz_localize"):  # pandas Timestamp
            value = value.value
        if isinstance(value, list):
            value = [_plain(v) if isinstance(v, dict) else v for v in value]
        if isinstance(value, float) and value != value:
            value = None
        out[key] = value
    return out


class TestMetricTypesAndValues:
    """Exponential histograms, summaries, and AnyValue kinds the examples do not cover."""

    def test_exponential_histogram_and_summary(self, tmp_path: Path) -> None:
        store = tmp_path / "store"
        [report] = _import(store, DATA / "metrics-all-types.json")
        assert report.rejected == 0, report.problems
        rows = {r["name"]: r for r in _rows(store, "metrics", "name")}
        exp = rows["rpc.duration"]
        assert exp["type"] == "exponential_histogram" and exp["temporality"] == "cumulative"
        assert exp["count"] == 6 and exp["sum"] == 21.5 and exp["scale"] == 3 and exp["zero_count"] == 1
        assert exp["positive_offset"] == -2 and list(exp["positive_bucket_counts"]) == [1, 2, 1]
        assert exp["negative_offset"] == 0 and list(exp["negative_bucket_counts"]) == [1]
        assert exp["min"] == -1.0 and exp["max"] == 9.5
        summary = rows["request.size"]
        assert summary["type"] == "summary" and summary["count"] == 10 and summary["sum"] == 1234.5
        assert summary["quantiles"] == [
            {"quantile": 0.5, "value": 100.0},
            {"quantile": 0.99, "value": 512.0},
        ]
        ints = rows["active.requests"]
        assert ints["type"] == "gauge" and ints["value"] == 7.0 and not ints["is_monotonic"]
        assert ints["temporality"] == "cumulative"

    @pytest.mark.parametrize("form", ["jsonl", "protobuf"])
    def test_anyvalue_kinds_bytes_nested_and_empty(self, tmp_path: Path, form: str) -> None:
        """The fast JSON path and the protobuf path encode every AnyValue kind the same way."""
        source = DATA / "anyvalues.jsonl"
        if form == "protobuf":
            request = request_from_json(json.loads(source.read_text()))[1]
            source = tmp_path / "anyvalues.pb"
            source.write_bytes(request.SerializeToString())
        store = tmp_path / "store"
        [report] = _import(store, source)
        assert report.rejected == 0, report.problems
        [row] = _rows(store, "spans", "span_id")
        got = dict(row["attributes"])
        assert got["bytes"] == "AQID/w=="  # bytes stay base64, as the SDK encoder writes them
        assert got["nested"] == '[1, [true, "x"], {"k": 2.5}]'
        assert got["map"] == '{"a": {"b": [1]}, "c": null}'
        assert got["empty"] is None
        assert got["big"] == "9007199254740993"
        assert got["unicode"] == 'é中\n"q"'


def test_cli_import_prints_a_summary_and_exits_zero(tmp_path: Path) -> None:
    """``python -m ingest import`` on the three examples: a line per file, a total, exit 0."""
    store = tmp_path / "store"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ingest",
            "import",
            "--store",
            str(store),
            "--no-progress",
            str(DATA / "trace.json"),
            str(DATA / "logs.json"),
            str(DATA / "metrics.json"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "wrote 1 spans" in result.stdout and "wrote 3 metrics" in result.stdout
    assert "total: wrote 1 spans, 1 logs, 3 metrics" in result.stdout


@pytest.mark.parametrize("command", ["import", "serve", "compact"])
def test_every_command_has_help_and_store(command: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ingest", command, "--help"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert result.returncode == 0 and "--store DIR" in result.stdout


def _as_snapshots(table: pa.Table) -> pa.Table:
    """The same spans as unfinished snapshots: no end time, no duration."""
    for name in ("end_time", "duration_ns"):
        index = table.schema.get_field_index(name)
        table = table.set_column(index, name, pa.nulls(table.num_rows, table.schema.field(name).type))
    return table


class TestUnfinishedSnapshots:
    """A span snapshotted while open (end_time NULL) must not keep its finished row out of the store."""

    def test_finished_rows_are_imported_over_stored_snapshots(self, tmp_path: Path) -> None:
        """The store holds a snapshot of every span; importing the finished spans stores every finished row."""
        spans = sdk_spans(1)
        finished = encode_spans(spans)
        store = tmp_path / "store"
        StoreWriter(store, durable=False).write("spans", _as_snapshots(finished))
        source = tmp_path / "finished.json"
        source.write_text(json.dumps(to_otlp_json(otlp_spans(spans))))
        report = _import(store, source)[0]
        assert (report.written.get("spans"), report.duplicates) == (finished.num_rows, 0)
        with Store(store) as opened:
            done = opened.sql("SELECT count(*) AS n FROM spans WHERE end_time IS NOT NULL").n[0]
            tree = opened.trace(finished.column("trace_id")[0].as_py())
        assert done == finished.num_rows
        assert tree["end_time"].notna().all()

    def test_snapshots_of_finished_spans_are_duplicates_and_snapshots_are_never_indexed(
        self, tmp_path: Path
    ) -> None:
        """A snapshot of a finished span is dropped; a snapshot alone is kept each time it comes."""
        finished = encode_spans(sdk_spans(1))
        store = tmp_path / "store"
        StoreWriter(store, durable=False).write("spans", finished)
        kept, duplicates = SpanIndex(store).filter(_as_snapshots(finished))
        assert (kept.num_rows, duplicates) == (0, finished.num_rows)
        fresh = SpanIndex(tmp_path / "empty")
        for _ in range(2):
            kept, duplicates = fresh.filter(_as_snapshots(finished))
            assert (kept.num_rows, duplicates) == (finished.num_rows, 0)
        kept, duplicates = fresh.filter(finished)
        assert (kept.num_rows, duplicates) == (finished.num_rows, 0)
