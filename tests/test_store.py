"""The store on disk: layout, atomic files, day partitions, crash safety, and the explorer's views."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from explorer import StoreNotFoundError, TraceNotFoundError, open_store, queries
from explorer.errors import ExplorerError
from ingest import StoreWriter, resolve_store_path
from ingest.store.encoding import table_from_columns
from ingest.store.schema import TABLES

REPO = Path(__file__).resolve().parents[1]
DAY_NS = 86_400 * 10**9


def _spans(start_ns: list[int]) -> pa.Table:
    n = len(start_ns)
    return table_from_columns(
        "spans",
        {
            "trace_id": ["0" * 31 + "1"] * n,
            "span_id": [f"{i + 1:016x}" for i in range(n)],
            "name": [f"op{i}" for i in range(n)],
            "start_time": start_ns,
            "end_time": [s + 1000 for s in start_ns],
            "duration_ns": [1000] * n,
            "status_code": ["UNSET"] * n,
        },
        n,
    )


class TestStoreWriter:
    def test_rows_are_split_into_day_partitions(self, tmp_path):
        """Rows of two UTC days go to two date= folders."""
        day = 20_000 * DAY_NS  # 2024-10-04
        files = StoreWriter(tmp_path).write("spans", _spans([day + 5, day + DAY_NS + 5, day + 7]))
        assert sorted(p.parent.name for p in files) == ["date=2024-10-04", "date=2024-10-05"]
        counts = duckdb.sql(
            f"SELECT date::VARCHAR AS d, count(*) AS n FROM read_parquet('{tmp_path}/spans/**/*.parquet', "
            "hive_partitioning=true) GROUP BY d ORDER BY d"
        ).fetchall()
        assert counts == [("2024-10-04", 2), ("2024-10-05", 1)]

    def test_no_temporary_file_is_left_and_names_are_unique(self, tmp_path):
        """Each write renames its temporary file into place; names never collide."""
        writer = StoreWriter(tmp_path)
        paths = [writer.write("spans", _spans([time.time_ns()]))[0] for _ in range(20)]
        assert len(set(paths)) == 20
        assert not list(tmp_path.rglob("*.tmp"))
        assert writer.rows_written["spans"] == 20

    def test_unknown_table_and_unknown_column_are_refused(self, tmp_path):
        """A typo in a table or column name fails loudly with the valid names."""
        with pytest.raises(KeyError, match="the tables are spans, logs, metrics, profiles, alerts"):
            StoreWriter(tmp_path).write("span", _spans([1]))
        with pytest.raises(ValueError, match="traceid"):
            table_from_columns("spans", {"traceid": ["x"]}, 1)

    def test_store_path_resolution(self, monkeypatch, tmp_path):
        """Argument, then $LANGSWARM_TELEMETRY_DIR, then ./telemetry."""
        monkeypatch.setenv("LANGSWARM_TELEMETRY_DIR", str(tmp_path))
        assert resolve_store_path("elsewhere") == Path("elsewhere")
        assert resolve_store_path() == tmp_path
        monkeypatch.delenv("LANGSWARM_TELEMETRY_DIR")
        assert resolve_store_path() == Path("telemetry")


class TestExplorerStore:
    def test_empty_store_opens_with_every_view_and_its_columns(self, tmp_path):
        """An empty directory is a valid store: each view exists, is empty and has the table's columns."""
        store = open_store(tmp_path)
        for table, (schema, _) in TABLES.items():
            frame = store.sql(f"SELECT * FROM {table}")
            assert frame.empty
            assert list(frame.columns)[: len(schema.names)] == schema.names
        assert store.sql("SELECT attributes['x'] AS x FROM spans").empty

    def test_views_see_files_written_after_opening(self, tmp_path):
        """Files added later are seen after refresh (first file of a table) and at once afterwards."""
        store = open_store(tmp_path)
        writer = StoreWriter(tmp_path)
        writer.write("spans", _spans([time.time_ns()]))
        store.refresh()
        assert store.sql("SELECT count(*) AS n FROM spans")["n"][0] == 1
        writer.write("spans", _spans([time.time_ns()]))
        assert store.sql("SELECT count(*) AS n FROM spans")["n"][0] == 2

    def test_timestamps_come_back_utc_aware(self, tmp_path):
        """Store timestamps (microsecond TIMESTAMPTZ) reach pandas as UTC-aware, also through aggregates,
        and the exact nanoseconds are in start_time_unix_nano."""
        now = time.time_ns()
        StoreWriter(tmp_path).write("spans", _spans([now]))
        frame = open_store(tmp_path).sql(
            "SELECT start_time, start_time_unix_nano, max(end_time) OVER () AS last FROM spans"
        )
        assert str(frame["start_time"].dt.tz) == "UTC" and str(frame["last"].dt.tz) == "UTC"
        assert frame["start_time"][0].value == now // 1000 * 1000
        assert frame["start_time_unix_nano"][0] == now

    def test_queries_wait_for_a_compaction_swap(self, tmp_path):
        """While compaction holds the store's exclusive lock, a query waits; it runs once the swap is done."""
        import fcntl
        import threading

        from ingest.store.compact import COMPACT_DIR, READERS_LOCK

        StoreWriter(tmp_path).write("spans", _spans([time.time_ns()]))
        store = open_store(tmp_path)
        lock_path = tmp_path / COMPACT_DIR / READERS_LOCK
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT)
        fcntl.flock(fd, fcntl.LOCK_EX)
        result: list[int] = []
        reader = threading.Thread(
            target=lambda: result.append(int(store.sql("SELECT count(*) AS n FROM spans")["n"][0]))
        )
        reader.start()
        reader.join(timeout=0.5)
        assert reader.is_alive() and not result
        os.close(fd)
        reader.join(timeout=30)
        assert result == [1]

    def test_missing_store_and_missing_trace_errors_name_the_problem(self, tmp_path):
        with pytest.raises(StoreNotFoundError, match="does not exist"):
            open_store(tmp_path / "nope")
        with pytest.raises(TraceNotFoundError, match="abc"):
            open_store(tmp_path).trace("abc")

    def test_unfinished_snapshot_is_replaced_by_the_finished_span(self, tmp_path):
        """A span written as unfinished (end_time NULL) and later finished appears once, finished."""
        now = time.time_ns()
        common = {"trace_id": ["c" * 32], "span_id": ["1" * 16], "name": ["hung"], "start_time": [now]}
        writer = StoreWriter(tmp_path)
        writer.write("spans", table_from_columns("spans", {**common, "end_time": [None]}, 1))
        writer.write(
            "spans", table_from_columns("spans", {**common, "end_time": [now + 5], "duration_ns": [5]}, 1)
        )
        tree = open_store(tmp_path).trace("c" * 32)
        assert len(tree) == 1 and tree.iloc[0]["duration_ns"] == 5

    def test_orphan_spans_are_kept_as_roots(self, tmp_path):
        """A span whose parent never arrived is still shown, as a root marked orphan."""
        now = time.time_ns()
        table = table_from_columns(
            "spans",
            {
                "trace_id": ["a" * 32] * 3,
                "span_id": ["1" * 16, "2" * 16, "3" * 16],
                "parent_span_id": [None, "1" * 16, "9" * 16],
                "name": ["root", "child", "orphan"],
                "start_time": [now, now + 10, now + 5],
                "end_time": [now + 100, now + 20, now + 6],
                "duration_ns": [100, 10, 1],
            },
            3,
        )
        StoreWriter(tmp_path).write("spans", table)
        tree = open_store(tmp_path).trace("A" * 32)
        assert tree["name"].tolist() == ["root", "child", "orphan"]
        assert tree["depth"].tolist() == [0, 1, 0]
        assert tree["orphan"].tolist() == [False, False, True]


KILLED_WRITER = textwrap.dedent(
    """
    import sys
    import time
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from ingest import ParquetSpanExporter

    provider = TracerProvider()
    provider.add_span_processor(
        BatchSpanProcessor(ParquetSpanExporter(sys.argv[1]), max_queue_size=100_000,
                           max_export_batch_size=2_000, schedule_delay_millis=1)
    )
    tracer = provider.get_tracer("crash")
    print("ready", flush=True)
    i = 0
    while True:
        with tracer.start_as_current_span("work", attributes={"i": i, "payload": "x" * 200}):
            i += 1
        if i % 500 == 0:
            time.sleep(0.001)  # let the export thread run, as a real workload would
    """
)


def test_sigkill_while_exporting_leaves_a_readable_store(tmp_path):
    """A process killed with SIGKILL mid-export leaves only complete Parquet files DuckDB reads."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(tmp_path)], stdout=subprocess.PIPE, env=env
    )
    try:
        assert proc.stdout.readline().strip() == b"ready"
        deadline = time.monotonic() + 60
        while len(list(tmp_path.rglob("*.parquet"))) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    files = list(tmp_path.rglob("*.parquet"))
    assert len(files) >= 3
    count = duckdb.sql(
        f"SELECT count(*), count(DISTINCT span_id) FROM read_parquet('{tmp_path}/spans/**/*.parquet', "
        "hive_partitioning=true)"
    ).fetchall()[0]
    assert count[0] > 0 and count[0] == count[1]
    assert open_store(tmp_path).sql("SELECT count(*) AS n FROM spans")["n"][0] == count[0]


def test_cli_sql_and_trace(tmp_path):
    """`python -m explorer sql` prints a table; `trace` prints an indented tree with durations and status."""
    now = time.time_ns()
    table = table_from_columns(
        "spans",
        {
            "trace_id": ["b" * 32] * 2,
            "span_id": ["1" * 16, "2" * 16],
            "parent_span_id": [None, "1" * 16],
            "name": ["agent.run", "llm.call"],
            "service_name": ["orchestrator", "orchestrator"],
            "start_time": [now, now + 1_000],
            "end_time": [now + 2_500_000, now + 1_501_000],
            "duration_ns": [2_500_000, 1_500_000],
            "status_code": ["OK", "ERROR"],
            "status_message": [None, "rate limited"],
        },
        2,
    )
    StoreWriter(tmp_path).write("spans", table)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    run = [sys.executable, "-m", "explorer"]
    sql = subprocess.run(
        [*run, "sql", "SELECT name, duration_ns FROM spans ORDER BY name", "--store", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert "agent.run" in sql.stdout and "1500000" in sql.stdout
    tree = subprocess.run(
        [*run, "trace", "b" * 32, "--store", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert tree.stdout.splitlines() == [
        "agent.run  [orchestrator]  2.50 ms  OK",
        "  llm.call  [orchestrator]  1.50 ms  ERROR rate limited",
    ]
    bad = subprocess.run(
        [*run, "sql", "SELEC nonsense", "--store", str(tmp_path)], capture_output=True, text=True, env=env
    )
    assert bad.returncode == 2 and "error:" in bad.stderr and "Traceback" not in bad.stderr


WRITER_IN_A_LOOP = textwrap.dedent(
    """
    import sys
    import numpy as np
    import pyarrow as pa
    from ingest import StoreWriter
    from ingest.store.encoding import table_from_columns

    n = 400_000
    table = table_from_columns(
        "spans",
        {"trace_id": ["0" * 31 + "1"] * n, "span_id": [f"{i:016x}" for i in range(n)], "name": ["op"] * n,
         "start_time": np.full(n, 1_700_000_000 * 10**9), "attributes": [[("payload", "x" * 100)]] * n},
        n,
    )
    writer = StoreWriter(sys.argv[1], durable=True)
    print("ready", flush=True)
    while True:
        writer.write("spans", table)
    """
)


def _orphan_of_a_killed_writer(store: Path) -> Path:
    """SIGKILL a process in the middle of StoreWriter.write; the temporary file it leaves."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for _ in range(20):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER_IN_A_LOOP, str(store)], stdout=subprocess.PIPE, env=env
        )
        try:
            assert proc.stdout.readline().strip() == b"ready"
            deadline = time.monotonic() + 60
            while not list(store.glob("spans/date=*/.*.tmp")) and time.monotonic() < deadline:
                time.sleep(0.001)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            proc.stdout.close()
        orphans = list(store.glob("spans/date=*/.*.tmp"))
        if orphans:  # else the kill landed between a rename and the next file: try again
            return orphans[0]
    raise AssertionError("no temporary file was ever left by a killed writer")


class TestStaleTemporaries:
    def test_a_killed_writer_s_orphan_is_removed_by_the_next_writer_and_a_live_temporary_is_kept(
        self, tmp_path
    ):
        """The next StoreWriter on the store removes an orphan over an hour old; a fresh temporary stays."""
        orphan = _orphan_of_a_killed_writer(tmp_path)
        two_hours_ago = time.time() - 7200
        os.utime(orphan, (two_hours_ago, two_hours_ago))  # as it is an hour after the crash
        live = orphan.with_name(".1-2-live-000001.parquet.tmp")
        live.write_bytes(b"being written")
        StoreWriter(tmp_path)
        assert not orphan.exists() and live.exists()
        complete = list(tmp_path.glob("spans/date=*/*.parquet"))
        assert open_store(tmp_path).sql("SELECT count(*) AS n FROM spans")["n"][0] == 400_000 * len(complete)

    @pytest.mark.parametrize("command", ["import", "serve"])
    def test_import_and_serve_remove_orphans_at_start(self, tmp_path, command):
        """`python -m ingest import` and `python -m ingest serve` sweep the store's stale temporaries when they start."""
        store = tmp_path / "store"
        folder = store / "logs" / "date=2024-10-04"
        folder.mkdir(parents=True)
        orphan = folder / ".1-2-dead-000001.parquet.tmp"
        live = folder / ".1-3-live-000001.parquet.tmp"
        orphan.write_bytes(b"half")
        live.write_bytes(b"half")
        two_hours_ago = time.time() - 7200
        os.utime(orphan, (two_hours_ago, two_hours_ago))
        run = [sys.executable, "-m", "ingest", command, "--store", str(store)]
        if command == "import":
            source = tmp_path / "empty.jsonl"
            source.write_text("\n")
            subprocess.run([*run, str(source)], cwd=REPO, check=True, capture_output=True, timeout=120)
        else:
            proc = subprocess.Popen(
                [*run, "--port", "0", "--workers", "1"], cwd=REPO, stdout=subprocess.PIPE, text=True
            )
            try:
                assert "listening on" in proc.stdout.readline()
                deadline = time.monotonic() + 60
                while orphan.exists() and time.monotonic() < deadline:
                    time.sleep(0.05)
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.communicate(timeout=60)
            assert proc.returncode == 0
        assert not orphan.exists() and live.exists()


class TestArrowResults:
    """Store.arrow, Store.polars and Store.sql(arrow_dtypes=True): the same rows as Store.sql, as Arrow data."""

    QUERY = "SELECT trace_id, span_id, name, attributes, start_time, duration_ns FROM spans ORDER BY span_id"

    def test_same_rows_as_sql(self) -> None:
        import pandas as pd

        from tests.storegen import shared_store

        with open_store(shared_store().root) as store:
            plain = store.sql(self.QUERY)
            table = store.arrow(self.QUERY)
            frame = store.sql(self.QUERY, arrow_dtypes=True)
        assert table.num_rows == len(plain) == len(frame) > 1000
        assert table.column("span_id").to_pylist() == plain["span_id"].tolist()
        assert all(isinstance(dtype, pd.ArrowDtype) for dtype in frame.dtypes)
        assert frame["duration_ns"].tolist() == plain["duration_ns"].tolist()
        # The maps stay Arrow data: the same key/value pairs as sql()'s dicts.
        first = next(i for i, a in enumerate(plain["attributes"]) if a)
        assert dict(table.column("attributes")[first].as_py()) == dict(plain["attributes"][first])
        assert frame["start_time"].tolist() == plain["start_time"].tolist()

    def test_polars(self) -> None:
        import polars

        from tests.storegen import shared_store

        with open_store(shared_store().root) as store:
            frame = store.polars("SELECT name, count(*) AS n FROM spans GROUP BY name ORDER BY n DESC, name")
            expected = store.sql("SELECT name, count(*) AS n FROM spans GROUP BY name ORDER BY n DESC, name")
        assert isinstance(frame, polars.DataFrame)
        assert frame["name"].to_list() == expected["name"].tolist()

    @pytest.mark.parametrize("table", [*TABLES, "llm_calls"])
    def test_sql_keeps_nested_columns_as_arrow_and_flat_ones_as_duckdb_types_them(self, table: str) -> None:
        """Store.sql: maps, lists and structs Arrow-backed (no Python object per cell); every other column with
        the dtype and values DuckDB's own pandas conversion gives (nullable integers, NULL-only strings ...)."""
        import pandas as pd

        with open_store(REPO / "sample_data") as store:
            frame = store.sql(f"SELECT * FROM {table}")
            nested = [c for c in frame.columns if isinstance(frame[c].dtype, pd.ArrowDtype)]
            flat = [c for c in frame.columns if c not in nested]
            described = dict(
                store.con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {table})").fetchall()
            )
            expected = store.con.sql(f"SELECT {', '.join(flat)} FROM {table}").df()
        assert len(frame) > 0
        assert sorted(nested) == sorted(
            c for c, t in described.items() if t.startswith(("MAP", "STRUCT")) or t.endswith("]")
        )
        for name in flat:
            ours, duck = frame[name], expected[name]
            if isinstance(duck.dtype, pd.DatetimeTZDtype):  # Store.sql says UTC, DuckDB its session zone
                duck = duck.dt.tz_convert("UTC")
            assert str(ours.dtype) == str(duck.dtype), name
            pd.testing.assert_series_equal(ours, duck, check_names=False)
        if "attributes" in nested:  # a cell reads as (key, value) pairs; NULL as pd.NA
            cell = next(v for v in frame["attributes"] if v is not pd.NA and len(v))
            assert all(isinstance(pair, tuple) and len(pair) == 2 for pair in cell)


class TestTraceRows:
    """Store.trace_rows reads a trace in two steps (the files holding it, then their rows): the same rows as
    one query over every file, wherever the trace's spans were written."""

    def test_same_rows_as_one_query_when_a_trace_spans_several_files(self, tmp_path: Path) -> None:
        from ingest.store.encoding import encode_spans
        from tests.otlp_samples import sdk_spans

        spans = encode_spans(sdk_spans(n_traces=3))
        writer = StoreWriter(tmp_path, durable=False)
        half = spans.num_rows // 2
        writer.write("spans", spans.slice(0, half))  # a trace cut in two: its spans in two files
        writer.write("spans", spans.slice(half))
        writer.write("spans", spans.slice(0, 2))  # and an exporter retry of two spans: a third file
        with open_store(tmp_path) as store:
            for trace_id in set(spans.column("trace_id").to_pylist()):
                ours = store.trace_rows("spans", trace_id).sort_values(["span_id", "start_time"])
                plain = store.sql("SELECT * FROM spans WHERE trace_id = ?", [trace_id])
                plain = plain.sort_values(["span_id", "start_time"])
                assert len(ours) == len(plain) > 0
                assert list(ours.columns) == list(plain.columns)
                assert ours["span_id"].tolist() == plain["span_id"].tolist()
                assert ours["start_time_unix_nano"].tolist() == plain["start_time_unix_nano"].tolist()
                assert [dict(a) for a in ours["attributes"]] == [dict(a) for a in plain["attributes"]]
            missing = store.trace_rows("spans", "0" * 32)
            assert missing.empty and list(missing.columns) == list(plain.columns)
            logs = store.trace_rows("logs", "0" * 32, select="body")  # a table with no file yet
            assert logs.empty and list(logs.columns) == ["body"]
            with pytest.raises(ExplorerError, match="no table 'span'"):
                store.trace_rows("span", "0" * 32)


def _reference_tree(spans: list[tuple[str, str | None, int]]) -> list[tuple[str, int, bool]]:
    """(span id, depth, orphan) in tree order, by the definition: children by (start, id), depth first;
    a span whose parent is absent (or itself) is an orphan root; spans in a parent cycle come last."""
    ids = {s for s, _, _ in spans}
    ordered = sorted(spans, key=lambda s: (s[2], s[0]))
    kids: dict[str, list[str]] = {}
    roots, orphans = [], set()
    for span, parent, _ in ordered:
        if not parent:
            roots.append(span)
        elif parent in ids and parent != span:
            kids.setdefault(parent, []).append(span)
        else:
            roots.append(span)
            orphans.add(span)
    out: list[tuple[str, int, bool]] = []
    seen: set[str] = set()

    def walk(span: str, depth: int) -> None:
        if span in seen:
            return
        seen.add(span)
        out.append((span, depth, span in orphans))
        for kid in kids.get(span, []):
            walk(kid, depth + 1)

    for root in roots:
        walk(root, 0)
    out.extend((s, 0, True) for s, _, _ in ordered if s not in seen)
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.tuples(st.sampled_from([None, "", *range(8), 99]), st.integers(0, 3)), min_size=1, max_size=8)
)
def test_trace_tree_order_matches_the_definition(tmp_path_factory, shape):
    """Store.trace orders a trace read from Parquet (reordered as Arrow, not pandas) as the definition does:
    orphans, self-parents, cycles, tied start times; trace_tree's columns keep their types."""
    now = 1_700_000_000 * 10**9
    span_ids = [f"{i:016x}" for i in range(len(shape))]
    rows = [
        (span_ids[i], parent if parent in (None, "") else f"{parent:016x}", now + start)
        for i, (parent, start) in enumerate(shape)
    ]
    root = tmp_path_factory.mktemp("tree")
    columns = {
        "trace_id": ["e" * 32] * len(rows),
        "span_id": [r[0] for r in rows],
        "parent_span_id": [r[1] for r in rows],
        "name": [f"op{i}" for i in range(len(rows))],
        "start_time": [r[2] for r in rows],
        "end_time": [r[2] + 10 for r in rows],
        "duration_ns": [10] * len(rows),
    }
    StoreWriter(root).write("spans", table_from_columns("spans", columns, len(rows)))
    with open_store(root) as store:
        tree = queries.trace_tree(store, "e" * 32)
    assert list(zip(tree["span_id"], tree["depth"], tree["orphan"], strict=True)) == _reference_tree(rows)
    assert tree.index.tolist() == list(range(len(rows)))
    kinds = {
        c: str(tree[c].dtype) for c in ("depth", "orphan", "children", "critical", "start_ns", "offset_ms")
    }
    assert kinds == {
        "depth": "int64",
        "orphan": "bool",
        "children": "int64",
        "critical": "bool",
        "start_ns": "int64",
        "offset_ms": "float64",
    }
