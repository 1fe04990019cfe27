"""The compiled JSON Lines reader (ingest.sources._jsonarrow) gives the importer what DuckDB's reader gives.

Each case reads the same lines with both (DuckDB's read_json_objects + json_transform, and
``transform_lines``), decodes both with ``decode_transformed`` and compares the store tables and the
lines handed to the exact path; then whole imports through either reader must write the same store.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.dataset
import pytest

from ingest.sources.importer import Importer
from ingest.sources.otlp_json import decode_transformed, transform_lines, transform_sql
from ingest.sources.otlp_json import reader as otlp_json

DATA = Path(__file__).parent / "data"
needs_compiled = pytest.mark.skipif(
    not otlp_json.compiled_reader(), reason="ingest.sources._jsonarrow is not compiled"
)

TRACE = "0af7651916cd43dd8448eb211c80319c"


def _span(**fields) -> dict:
    span = {
        "traceId": TRACE,
        "spanId": "b7ad6b7169203331",
        "name": "op",
        "kind": 2,
        "startTimeUnixNano": "1700000000000000000",
        "endTimeUnixNano": "1700000000500000000",
    }
    span.update(fields)
    return span


def _line(*spans: dict, resource: dict | None = None) -> str:
    resource = resource or {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]}
    return json.dumps(
        {
            "resourceSpans": [
                {"resource": resource, "scopeSpans": [{"scope": {"name": "s"}, "spans": list(spans)}]}
            ]
        }
    )


def _duckdb(tmp_path: Path, data: bytes) -> pa.Table:
    path = tmp_path / "lines.jsonl"
    path.write_bytes(data)
    source = f"read_json_objects('{path}', format='newline_delimited', ignore_errors=true)"
    return duckdb.connect().sql(transform_sql(source)).to_arrow_table()


def _assert_same(tmp_path: Path, data: bytes) -> None:
    compiled, reference = (
        decode_transformed(transform_lines(data)),
        decode_transformed(_duckdb(tmp_path, data)),
    )
    assert compiled.rows == reference.rows
    assert set(compiled.flagged) == set(reference.flagged), (compiled.flagged, reference.flagged)
    for name in ("spans", "logs"):
        mine, theirs = getattr(compiled, name), getattr(reference, name)
        assert (mine is None) == (theirs is None), name
        if mine is not None:
            for column in theirs.schema.names:
                assert mine.column(column).to_pylist() == theirs.column(column).to_pylist(), (name, column)


@needs_compiled
@pytest.mark.parametrize("sample", ["trace.json", "logs.json", "anyvalues.jsonl"])
def test_the_proto_examples_read_alike(tmp_path: Path, sample: str) -> None:
    """The opentelemetry-proto examples (one document per line) give the same rows."""
    text = (DATA / sample).read_text()
    documents = (
        [json.loads(line) for line in text.splitlines() if line.strip()]
        if sample.endswith("l")
        else [json.loads(text)]
    )
    _assert_same(tmp_path, "\n".join(json.dumps(d) for d in documents).encode())


@needs_compiled
def test_values_escapes_and_odd_shapes_read_alike(tmp_path: Path) -> None:
    """Escapes, raw UTF-8, every AnyValue form, numbers for strings, missing and mistyped fields."""
    values = [
        {"stringValue": "plain"},
        {"stringValue": 'é \u00e9 \\ " / \n tab\t ✓ 🚀'},
        {"stringValue": ""},
        {"intValue": "42"},
        {"intValue": 42},
        {"intValue": "-7"},
        {"doubleValue": 0.5},
        {"doubleValue": 1e-7},
        {"doubleValue": 1.5e300},
        {"doubleValue": "NaN"},
        {"doubleValue": 3},
        {"boolValue": True},
        {"boolValue": False},
        {"bytesValue": "AQID/w=="},
        {},
        {"arrayValue": {"values": [{"intValue": "1"}]}},
        {"kvlistValue": {"values": [{"key": "k", "value": {"stringValue": "v"}}]}},
        {"stringValue": {"odd": [1]}},
    ]
    attributes = [{"key": f"k{i}", "value": v} for i, v in enumerate(values)]
    lines = [
        _line(_span(attributes=attributes, status={"code": 2, "message": "boom \u2603"})),
        _line(_span(name="snow \\u2603", parentSpanId="", traceState="a=b", kind="SPAN_KIND_SERVER")),
        _line(
            _span(events=[{"timeUnixNano": "1700000000100000000", "name": "e", "attributes": attributes[:3]}])
        ),
        _line(_span(links=[{"traceId": TRACE, "spanId": "00f067aa0ba902b7", "attributes": attributes[3:6]}])),
        _line(_span(startTimeUnixNano=1700000000000000000, endTimeUnixNano=1700000000500000001)),
        _line(_span(status=None, unknown={"deep": [[[[{"x": None}]]]]})),
        _line(_span(attributes=[{"key": "k", "value": None}, {"key": "k2"}])),
        _line(_span(traceId="0AF7651916CD43DD8448EB211C80319C")),
        '{"resourceSpans": []}',
        "   ",
        '{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "' + TRACE + '"}]}]}]}',
    ]
    _assert_same(tmp_path, "\n".join(lines).encode() + b"\r\n\n")


@needs_compiled
@pytest.mark.parametrize(
    "bad",
    [
        b'{"resourceSpans": [',  # truncated
        b'{"resourceSpans": []} trailing',
        b"not json at all",
        b'{"resourceSpans": [{"resource": {"attributes": [{"key": "a\x01", "value": {}}]}}]}',  # control byte
        b'{"resourceSpans": [{"resource": {"attributes": [{"key": "\xff", "value": {}}]}}]}',  # bad UTF-8
        b'{"resourceSpans": [{"resource": {"attributes": [{"key": "\\ud800", "value": {}}]}}]}',  # surrogate
        b'{"resourceSpans": [{"resource": {"attributes": [{"key": "\\x", "value": {}}]}}]}',  # bad escape
        b"[1, 2, 3]",
        b'"a string"',
    ],
)
def test_bad_lines_are_flagged_like_duckdb_and_the_rest_is_kept(tmp_path: Path, bad: bytes) -> None:
    """A bad line becomes a flagged NULL row; the good lines around it are read in full."""
    good = _line(_span()).encode()
    data = good + b"\n" + bad + b"\n" + good.replace(b"b7ad6b7169203331", b"00f067aa0ba902b7")
    compiled = decode_transformed(transform_lines(data))
    assert set(compiled.flagged) == {1} and compiled.spans.num_rows == 2
    _assert_same(tmp_path, data)


@needs_compiled
@pytest.mark.parametrize(
    ("mistyped", "rejected"),
    [
        ({"attributes": "not a list"}, 1),
        ({"events": {"name": "e"}}, 1),
        ({"links": 5}, 1),
        ({"status": "not an object"}, 0),  # protobuf's JSON parser takes this one
    ],
    ids=["attributes", "events", "links", "status"],
)
def test_a_mistyped_container_goes_to_the_exact_path(tmp_path: Path, mistyped: dict, rejected: int) -> None:
    """Where json_transform reads a wrong JSON type as absent, the compiled reader hands the line on."""
    source = tmp_path / "in.jsonl"
    source.write_text(_line(_span()) + "\n" + _line(_span(spanId="00f067aa0ba902b7", **mistyped)) + "\n")
    assert set(decode_transformed(transform_lines(source.read_bytes())).flagged) == {1}
    report = Importer(tmp_path / "store", progress=False, durable=False).import_paths([source])[0]
    assert report.rejected == rejected and report.written["spans"] == 2 - rejected, report.problems
    if rejected:
        assert any("2" in problem for problem in report.problems), report.problems


@needs_compiled
def test_a_repeated_key_is_left_to_the_exact_path() -> None:
    """JSON with a repeated key is ambiguous: the line is flagged, not guessed at."""
    line = '{"resourceSpans": [], "resourceSpans": []}'
    assert set(decode_transformed(transform_lines(line.encode())).flagged) == {0}


@pytest.fixture(params=["compiled", "duckdb"])
def reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs a test on the compiled reader, then on DuckDB's (what runs when nothing is compiled)."""
    if request.param == "compiled" and not otlp_json.compiled_reader():
        pytest.skip("ingest.sources._jsonarrow is not compiled")
    if request.param == "duckdb":
        monkeypatch.setattr(otlp_json, "_jsonarrow", None)
    return request.param


def test_imports_through_either_reader_write_the_same_store(tmp_path: Path, reader: str) -> None:
    """The importer on the compiled reader and on DuckDB's reader (what runs when nothing is compiled)."""
    source = tmp_path / "in.jsonl"
    source.write_text(
        "\n".join(
            _line(_span(spanId=f"{i:016x}", attributes=[{"key": "n", "value": {"intValue": str(i)}}]))
            for i in range(1, 200)
        )
        + "\nbroken\n"
    )
    store = tmp_path / "store"
    reports = Importer(store, progress=False, durable=False).import_paths([source])
    assert reports[0].rejected == 1
    table = pa.dataset.dataset(store / "spans", format="parquet", partitioning="hive").to_table()
    assert sorted(table.column("span_id").to_pylist()) == [f"{i:016x}" for i in range(1, 200)]
    assert sorted(dict(a)["n"] for a in table.column("attributes").to_pylist()) == sorted(
        str(i) for i in range(1, 200)
    )


@pytest.mark.parametrize(
    "bad_span",
    [
        _span(startTimeUnixNano="9544712660300000000"),  # 19 digits past int64
        _span(attributes=[{"key": "a", "value": {"arrayValue": {"values": [{"intValue": "e1"}]}}}]),
    ],
    ids=["time-past-int64", "bad-nested-int"],
)
def test_a_bad_value_rejects_its_line_and_keeps_the_rest(tmp_path: Path, reader: str, bad_span: dict) -> None:
    """Values the fast path cannot take reach the exact path, which rejects their line by number."""
    source = tmp_path / "in.jsonl"
    good = [_line(_span(spanId=f"{i:016x}")) for i in range(1, 4)]
    source.write_text("\n".join([good[0], _line(bad_span), *good[1:]]) + "\n")
    report = Importer(tmp_path / "store", progress=False, durable=False).import_paths([source])[0]
    assert report.rejected == 1 and report.written["spans"] == 3
    assert any(":2:" in problem or "line 2" in problem for problem in report.problems), report.problems
