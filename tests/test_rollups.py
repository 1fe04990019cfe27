"""Rollups written by compaction (``trace_summaries/``): one row per trace and compacted span file, read with
the spans written since, so listing every trace gives exactly the answer of aggregating every span."""

from __future__ import annotations

import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from explorer import open_store, queries
from ingest.store import rollups
from ingest.store.compact import Compactor
from ingest.store.encoding import encode_spans, table_from_columns
from ingest.store.migrate import migrate
from ingest.store.prune import prune
from ingest.store.writer import StoreWriter
from tests.otlp_samples import sdk_spans


def _files(store: Path, table: str) -> list[Path]:
    return sorted((store / table).glob("date=*/*.parquet"))


@pytest.fixture
def compacted(tmp_path: Path) -> Path:
    """A compacted store with traces cut across its files, then written to again: a new span of a compacted
    trace (an error, ending 1,000 s later), an exporter's retry of a compacted span, and two new traces."""
    store = tmp_path / "store"
    writer = StoreWriter(store, durable=False)
    versions = ["1.0", "2.0", None, "2.0", "1.0", "2.0"]  # service.version of each batch's resource
    batches = [
        _versioned(encode_spans(sdk_spans(n_traces=3, service=f"svc-{i % 2}")), v)
        for i, v in enumerate(versions)
    ]
    for a, b in zip(batches[::2], batches[1::2], strict=True):
        # The first halves of two batches, then their second halves: in groups of 16 rows, compaction
        # merges each pair of halves into its own file, so the trace cut by the halving sits in two files.
        for part in (a.slice(0, 8), b.slice(0, 8), a.slice(8), b.slice(8)):
            writer.write("spans", part)
    Compactor(store, target_rows=16).run()
    old = pq.read_table(_files(store, "spans")[0]).drop_columns(
        list(rollups.DEDICATED_SPAN_COLUMNS)
    )  # as exported
    late = old.slice(0, 1)
    late = late.set_column(late.schema.get_field_index("span_id"), "span_id", pa.array(["00000000000000ff"]))
    late = late.set_column(late.schema.get_field_index("status_code"), "status_code", pa.array(["ERROR"]))
    later = pc.add(late.column("end_time_unix_nano"), 10**12)
    late = late.set_column(late.schema.get_field_index("end_time_unix_nano"), "end_time_unix_nano", later)
    writer.write("spans", late)
    writer.write("spans", old.slice(1, 1))
    writer.write("spans", _versioned(encode_spans(sdk_spans(n_traces=2, service="svc-late")), "3.0"))
    return store


def _versioned(spans: pa.Table, version: str | None) -> pa.Table:
    """``spans`` with ``service.version`` added to every resource and ``correlation_id`` ``corr-<version>`` to
    every span's attributes (neither when ``version`` is None)."""
    if version is None:
        return spans
    for name, key, value in [
        ("resource_attributes", "service.version", version),
        ("attributes", "correlation_id", f"corr-{version}"),
    ]:
        column = spans.schema.get_field_index(name)
        maps = [[*row, (key, value)] for row in spans.column(column).to_pylist()]
        spans = spans.set_column(column, spans.field(column), pa.array(maps, spans.field(column).type))
    return spans


def test_compaction_writes_one_twin_per_span_file_summing_its_traces(compacted: Path) -> None:
    compacted_files = [p for p in _files(compacted, "spans") if "-compact-" in p.name]
    twins = _files(compacted, rollups.TRACE_SUMMARIES)
    assert len(compacted_files) == 6 and [t.name for t in twins] == [p.name for p in compacted_files]
    ids = [i for twin in twins for i in pq.read_table(twin).column("trace_id").to_pylist()]
    assert len(ids) == 18 + 6  # 18 traces; the middle one of each batch cut across two files
    for span_file, twin in zip(compacted_files, twins, strict=True):
        spans, summary = pq.read_table(span_file), pq.read_table(twin)
        assert summary.schema.equals(rollups.TRACE_SUMMARY_SCHEMA)
        assert sorted(summary.column("trace_id").to_pylist()) == sorted(
            set(spans.column("trace_id").to_pylist())
        )
        assert pc.sum(summary.column("span_count")).as_py() == spans.num_rows
        errors = pc.sum(pc.equal(spans.column("status_code"), "ERROR").cast(pa.int64())).as_py()
        assert pc.sum(summary.column("error_count")).as_py() == errors
        assert pc.min(summary.column("start_time_unix_nano")) == pc.min(spans.column("start_time_unix_nano"))


def test_compaction_writes_operation_twins_counting_each_service_and_name(compacted: Path) -> None:
    compacted_files = [p for p in _files(compacted, "spans") if "-compact-" in p.name]
    twins = _files(compacted, rollups.OPERATIONS)
    assert [t.name for t in twins] == [p.name for p in compacted_files]
    for span_file, twin in zip(compacted_files, twins, strict=True):
        con = duckdb.connect()
        con.register("spans", pq.read_table(span_file))
        con.register("operations", pq.read_table(twin))
        assert pq.read_schema(twin).equals(rollups.OPERATION_SCHEMA)
        expected = con.sql(
            "SELECT service_name, name, count(*), count_if(status_code = 'ERROR'), min(start_time), "
            "max(start_time) FROM spans GROUP BY ALL ORDER BY ALL"
        ).fetchall()
        assert con.sql("SELECT * FROM operations ORDER BY ALL").fetchall() == expected


def test_services_and_operations_read_the_twins_and_answer_as_every_span_would(compacted: Path) -> None:
    with open_store(compacted) as store:
        asked = [
            lambda: queries.list_operations(store),
            lambda: queries.list_operations(store, service="svc-0"),
            lambda: queries.list_services(store),
        ]
        answers = [ask() for ask in asked]
        assert len(answers[0]) > len(answers[1]) > 0 and len(answers[2]) == 3
        shutil.move(compacted / rollups.OPERATIONS, compacted.parent / "aside")
        for ask, answer in zip(asked, answers, strict=True):
            pd.testing.assert_frame_equal(ask(), answer)
        shutil.move(compacted.parent / "aside", compacted / rollups.OPERATIONS)
        # The twins are what answered: a doctored one changes the counts.
        twin = _files(compacted, rollups.OPERATIONS)[0]
        table = pq.read_table(twin)
        bumped = pc.add(table.column("span_count"), 1000)
        pq.write_table(
            table.set_column(table.schema.get_field_index("span_count"), "span_count", bumped), twin
        )
        assert queries.list_services(store).spans.sum() == answers[2].spans.sum() + 1000 * table.num_rows
        assert queries.list_operations(store).spans.sum() == answers[0].spans.sum() + 1000 * table.num_rows


def test_trace_search_reads_the_twins_and_answers_as_every_span_would(compacted: Path) -> None:
    with open_store(compacted) as store:
        listed = queries.search_traces(store, limit=1000)
        histogram = queries.trace_duration_histogram(store)
        overview, over_time = queries.store_overview(store), queries.red_over_time(store)
        # Span criteria match spans, then the matched traces' rollup rows are summed.
        criteria = [
            {"service": "svc-1"},
            {"status": "error"},
            {"service": "svc-0", "min_duration_ms": 0.001},
            {"operation": "GET /cart", "max_duration_ms": 1e9},
        ]
        searched = [queries.search_traces(store, limit=1000, **c) for c in criteria]
        filtered_histograms = [queries.trace_duration_histogram(store, **c) for c in criteria]
        assert all(len(found) for found in searched)
        summaries = store.sql(f"SELECT * FROM {queries.traces.TRACE_SUMMARIES_VIEW}")
        assert len(listed) == 20 and len(summaries) > 20  # cut traces and late spans: several rows each
        # The same store without its rollups: every span aggregated, as before compaction wrote them.
        shutil.move(compacted / rollups.TRACE_SUMMARIES, compacted.parent / "aside")
        pd.testing.assert_frame_equal(queries.search_traces(store, limit=1000), listed)
        pd.testing.assert_frame_equal(queries.trace_duration_histogram(store), histogram)
        pd.testing.assert_frame_equal(queries.store_overview(store), overview)
        pd.testing.assert_frame_equal(queries.red_over_time(store), over_time)
        for c, found, histogram_of in zip(criteria, searched, filtered_histograms, strict=True):
            pd.testing.assert_frame_equal(queries.search_traces(store, limit=1000, **c), found)
            pd.testing.assert_frame_equal(queries.trace_duration_histogram(store, **c), histogram_of)
        shutil.move(compacted.parent / "aside", compacted / rollups.TRACE_SUMMARIES)
        late = listed[listed.error_count == 2]
        assert len(late) == 1 and late.duration_ms.iloc[0] > 1e6  # the late error span, 1,000 s later
        # The twins are what answered: a doctored one changes the answer.
        twin = _files(compacted, rollups.TRACE_SUMMARIES)[0]
        table = pq.read_table(twin)
        bumped = pc.add(table.column("span_count"), 1000)
        pq.write_table(
            table.set_column(table.schema.get_field_index("span_count"), "span_count", bumped), twin
        )
        doctored = queries.search_traces(store, limit=1000).set_index("trace_id").span_count
        first = table.column("trace_id")[0].as_py()
        assert doctored[first] == listed.set_index("trace_id").span_count[first] + 1000
        by_operation = queries.search_traces(store, operation="GET /cart", limit=1000).set_index("trace_id")
        assert by_operation.span_count[first] == doctored[first]  # a broad filter sums the rollup's rows too
        # A trace id (or correlation id, log text) finds few traces: their spans are read, not the rollup.
        by_id = queries.search_traces(store, trace_id=first, limit=10).set_index("trace_id").span_count
        assert by_id[first] == listed.set_index("trace_id").span_count[first]


def test_a_twin_without_its_span_file_is_ignored_then_removed(compacted: Path) -> None:
    with open_store(compacted) as store:
        listed = queries.search_traces(store, limit=1000)
        orphan = (
            compacted / rollups.TRACE_SUMMARIES / _files(compacted, "spans")[0].parent.name / "gone.parquet"
        )
        bogus = pa.table({"trace_id": ["f" * 32], "span_count": [5]})
        pq.write_table(bogus, orphan)  # e.g. a crash between a span file's removal and its twin's
        operations = queries.list_operations(store)
        stray = compacted / rollups.OPERATIONS / orphan.parent.name / "gone.parquet"
        pq.write_table(pa.table({"service_name": ["ghost"], "name": ["x"], "span_count": [5]}), stray)
        pd.testing.assert_frame_equal(queries.search_traces(store, limit=1000), listed)
        pd.testing.assert_frame_equal(queries.list_operations(store), operations)
    assert (
        Compactor(compacted).run().orphan_rollups_removed == 2 and not orphan.exists() and not stray.exists()
    )


def test_merging_compacted_files_again_replaces_their_twins(compacted: Path) -> None:
    with open_store(compacted) as store:
        listed = queries.search_traces(store, limit=1000)
    before = {p.name for p in _files(compacted, rollups.TRACE_SUMMARIES)}
    Compactor(compacted).run()  # the 6 small compacted files and the 3 late ones become one
    spans, twins = _files(compacted, "spans"), _files(compacted, rollups.TRACE_SUMMARIES)
    assert len(spans) == 1 and [t.name for t in twins] == [spans[0].name] and not before & {spans[0].name}
    assert [t.name for t in _files(compacted, rollups.OPERATIONS)] == [spans[0].name]
    with open_store(compacted) as store:
        again = queries.search_traces(store, limit=1000)
    # The retried span was dropped as a duplicate: one span fewer in its trace, nothing else changed.
    assert again.span_count.sum() == listed.span_count.sum() - 1
    pd.testing.assert_frame_equal(again.drop(columns="span_count"), listed.drop(columns="span_count"))


def test_prune_removes_a_days_rollups_with_its_spans(compacted: Path) -> None:
    report = prune(compacted, timedelta(days=1), now=datetime.now(UTC) + timedelta(days=3))
    assert {r.table for r in report.removed} >= {"spans", rollups.TRACE_SUMMARIES, rollups.OPERATIONS}
    assert not _files(compacted, rollups.TRACE_SUMMARIES) and not _files(compacted, "spans")
    assert not _files(compacted, rollups.OPERATIONS)


def test_compacted_span_files_carry_dedicated_columns_the_spans_view_hides(compacted: Path) -> None:
    for path in _files(compacted, "spans"):
        table = pq.read_table(path)
        for name, (column, key) in rollups.DEDICATED_SPAN_COLUMNS.items():
            if "-compact-" not in path.name:
                assert name not in table.column_names
                continue
            expected = pc.map_lookup(table.column(column), pa.scalar(key), "first")
            assert table.column(name).equals(expected) and expected.null_count < len(expected)
    with open_store(compacted) as store:
        assert not set(rollups.DEDICATED_SPAN_COLUMNS) & set(store.sql("SELECT * FROM spans LIMIT 1").columns)
        versions = queries.service_versions(store)
        percentiles = queries.latency_percentiles(store, group_by="version")
        histogram = queries.latency_histogram(store, group_by="version")
        outliers = queries.latency_outliers(store, versions=["2.0", "3.0"])
        assert sorted(percentiles.group) == ["(none)", "1.0", "2.0", "3.0"]
        assert set(outliers.version) == {"2.0", "3.0"}
        # The map, read for every span, gives the same answers.
        expected = store.sql(
            """SELECT coalesce(resource_attributes['service.version'], '(none)') AS "group", count(*) AS spans
               FROM spans GROUP BY ALL ORDER BY spans DESC, "group" """
        )
        assert (
            percentiles.sort_values(["spans", "group"], ascending=[False, True])[["group", "spans"]]
            .reset_index(drop=True)
            .equals(expected)
        )
        for correlation in ("corr-1.0", "corr-2.0", "corr-3.0"):
            found = queries.search_traces(store, correlation_id=correlation, limit=1000)
            expected_ids = store.sql(
                "SELECT DISTINCT trace_id FROM spans WHERE attributes['correlation_id'] = ?", [correlation]
            )
            assert sorted(found.trace_id) == sorted(expected_ids.trace_id) and len(found)
        # The dedicated columns are what answered: a doctored file changes the answers.
        path = next(p for p in _files(compacted, "spans") if "-compact-" in p.name)
        table = pq.read_table(path)
        doctored = pa.array(["doctored"] * table.num_rows)
        for name in rollups.DEDICATED_SPAN_COLUMNS:
            table = table.set_column(table.schema.get_field_index(name), name, doctored)
        pq.write_table(table, path)
        assert len(queries.search_traces(store, correlation_id="doctored", limit=1000)) > 0
        assert "doctored" in set(queries.service_versions(store).version)
        assert "doctored" in set(queries.latency_percentiles(store, group_by="version").group)
        assert len(versions) == 3 and len(histogram)  # svc-0 1.0, svc-1 2.0, svc-late 3.0


def test_a_store_opened_before_compaction_keeps_its_columns_and_answers(tmp_path: Path) -> None:
    store = tmp_path / "store"
    writer = StoreWriter(store, durable=False)
    for _ in range(3):
        writer.write("spans", _versioned(encode_spans(sdk_spans(n_traces=2, service="svc")), "1.0"))
    with open_store(store) as opened:  # the app's Store lives across compactions
        columns = list(opened.sql("SELECT * FROM spans LIMIT 1").columns)
        before = queries.search_traces(opened, limit=100)
        Compactor(store).run()
        assert list(opened.sql("SELECT * FROM spans LIMIT 1").columns) == columns
        pd.testing.assert_frame_equal(queries.search_traces(opened, limit=100), before)
        # A span file written after the rollup view was made is counted by the same statement as spans.
        writer.write("spans", _versioned(encode_spans(sdk_spans(n_traces=1, service="svc")), "1.0"))
        same = opened.sql(
            f"SELECT (SELECT sum(span_count) FROM {queries.traces.TRACE_SUMMARIES_VIEW}) AS rolled, "
            "(SELECT count(*) FROM spans) AS counted"
        )
        assert same.rolled[0] == same.counted[0] == 35
        # No file with dedicated columns any more (rewritten without them): the views still bind and answer.
        for path in _files(store, "spans"):
            table = pq.read_table(path)
            pq.write_table(
                table.drop_columns([c for c in rollups.DEDICATED_SPAN_COLUMNS if c in table.column_names]),
                path,
            )
        assert list(opened.sql("SELECT * FROM spans LIMIT 1").columns) == columns
        assert len(queries.search_traces(opened, limit=100)) == 7
        assert queries.service_versions(opened).spans.tolist() == [35]


def test_migrate_keeps_compacted_files_and_a_rewritten_one_is_read_from_its_maps(compacted: Path) -> None:
    assert migrate(compacted).rewritten == []  # dedicated columns are not an old layout
    with open_store(compacted) as store:
        versions = queries.service_versions(store)
        path = next(p for p in _files(compacted, "spans") if "-compact-" in p.name)
        time.sleep(0.01)  # a new modification time, as a rewrite by an older migrate would give
        pq.write_table(pq.read_table(path).drop_columns(list(rollups.DEDICATED_SPAN_COLUMNS)), path)
        pd.testing.assert_frame_equal(queries.service_versions(store), versions)


def test_a_trace_whose_spans_have_no_status_counts_zero_errors_either_way(tmp_path: Path) -> None:
    """DuckDB's count_if gives NULL when every status is NULL; the rollup stores 0: both paths say 0."""
    now = time.time_ns()
    columns = {
        "trace_id": ["a" * 32, "a" * 32, "b" * 32],
        "span_id": ["1" * 16, "2" * 16, "3" * 16],
        "name": ["root", "child", "other"],
        "service_name": ["svc", "svc", "svc"],
        "start_time": [now, now + 10, now + 20],
        "end_time": [now + 100, now + 20, now + 30],
        "duration_ns": [100, 10, 10],
    }
    table = table_from_columns("spans", columns, 3)
    writer = StoreWriter(tmp_path, durable=False)
    for row in range(3):  # three small files: compaction merges them and writes the rollups
        writer.write("spans", table.slice(row, 1))
    Compactor(tmp_path).run()
    with open_store(tmp_path) as store:
        assert store.sql("SELECT count(status_code) AS n FROM spans").n[0] == 0
        found = [queries.search_traces(store, service="svc"), queries.search_traces(store)]
        shutil.move(tmp_path / rollups.TRACE_SUMMARIES, tmp_path.parent / "aside")
        raw = [queries.search_traces(store, service="svc"), queries.search_traces(store)]
    for with_rollup, without in zip(found, raw, strict=True):
        assert with_rollup.error_count.tolist() == [0, 0]
        pd.testing.assert_frame_equal(with_rollup, without)
