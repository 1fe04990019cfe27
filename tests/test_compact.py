"""``python -m ingest compact``: fewer, sorted files with trace-sized row groups; safe beside readers and writers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from explorer import open_store
from ingest.store.compact import (
    COMPACT_DIR,
    COMPACTOR_LOCK,
    CompactionError,
    Compactor,
    _exclusive,
    _row_groups,
)
from ingest.store.encoding import encode_logs, encode_spans, table_from_columns
from ingest.store.lock import read_lock
from ingest.store.writer import StoreWriter
from tests.otlp_samples import sdk_logs, sdk_spans

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def span_batches() -> list[pa.Table]:
    """12 batches of SDK spans from three services (15 spans each)."""
    return [encode_spans(sdk_spans(n_traces=3, service=f"svc-{i % 3}")) for i in range(12)]


def _day_files(store: Path, table: str = "spans") -> list[Path]:
    return sorted((store / table).glob("date=*/*.parquet"))


def _count(store: Path) -> tuple[int, int]:
    glob = str(store / "spans" / "**" / "*.parquet")
    return duckdb.sql(
        f"SELECT count(*), count(DISTINCT (trace_id, span_id)) FROM read_parquet('{glob}', hive_partitioning=true)"
    ).fetchall()[0]


class TestCompaction:
    def test_small_files_merge_sorted_deduplicated_with_small_row_groups(
        self, tmp_path: Path, span_batches: list[pa.Table]
    ) -> None:
        store = tmp_path / "store"
        writer = StoreWriter(store, durable=False)
        for batch in span_batches:
            writer.write("spans", batch)
        writer.write("spans", span_batches[0])  # an exporter retry: the same spans twice
        writer.write("logs", encode_logs(sdk_logs()))
        writer.write("logs", encode_logs(sdk_logs()))
        assert len(_day_files(store)) == 13
        unique = sum(b.num_rows for b in span_batches)
        report = Compactor(store, row_group_rows=16).run()
        files = _day_files(store)
        assert len(files) == 1
        assert _count(store) == (unique, unique)
        [spans_day] = [d for d in report.days if d.table == "spans"]
        assert spans_day.inputs == 13 and spans_day.outputs == 1 and spans_day.duplicates == 15
        table = pq.read_table(files[0])
        keys = list(zip(*(table.column(k).to_pylist() for k in ("trace_id", "start_time"))))
        assert keys == sorted(keys)
        metadata = pq.ParquetFile(files[0]).metadata
        sizes = [metadata.row_group(g).num_rows for g in range(metadata.num_row_groups)]
        assert max(sizes) <= 16 and sum(sizes) == unique
        assert [c.column_index for c in metadata.row_group(0).sorting_columns][:2] == [
            table.schema.get_field_index("trace_id"),
            table.schema.get_field_index("start_time_unix_nano"),
        ]
        # Groups hold whole traces: a lookup by id finds exactly one group whose trace_id range holds it.
        column = table.schema.get_field_index("trace_id")
        for trace_id in set(table.column("trace_id").to_pylist()):
            candidates = [
                g
                for g in range(metadata.num_row_groups)
                if metadata.row_group(g).column(column).statistics.min
                <= trace_id
                <= metadata.row_group(g).column(column).statistics.max
            ]
            assert len(candidates) == 1
        assert (
            len(_day_files(store, "logs")) == 1 and pq.read_table(_day_files(store, "logs")[0]).num_rows == 10
        )
        assert not list(store.glob("spans/date=*/.*.tmp")) and not list((store / COMPACT_DIR).glob("*.json"))

    def test_nothing_to_do_and_large_files_are_left_alone(
        self, tmp_path: Path, span_batches: list[pa.Table]
    ) -> None:
        store = tmp_path / "store"
        writer = StoreWriter(store, durable=False)
        writer.write("spans", span_batches[0])
        assert Compactor(store).run().days == []
        writer.write("spans", span_batches[1])
        assert Compactor(store, small_bytes=10).run().days == []  # every file counts as large
        assert len(_day_files(store)) == 2

    def test_target_rows_splits_the_output(self, tmp_path: Path, span_batches: list[pa.Table]) -> None:
        store = tmp_path / "store"
        writer = StoreWriter(store, durable=False)
        for batch in span_batches:
            writer.write("spans", batch)
        Compactor(store, target_rows=60).run()
        files = _day_files(store)
        assert len(files) == 3 and sum(pq.ParquetFile(f).metadata.num_rows for f in files) == 180


def test_readers_never_see_a_span_twice_or_lose_one_while_writers_and_compaction_run(
    tmp_path: Path, span_batches: list[pa.Table]
) -> None:
    """A writer adds files, compaction merges them over and over; readers under read_lock see exact counts."""
    store = tmp_path / "store"
    writer = StoreWriter(store, durable=False)
    writer.write("spans", span_batches[0])
    Compactor(store).run()  # creates the readers' lock file
    written = [span_batches[0].num_rows]  # batches whose write returned: a reader sees at least these
    started = list(written)  # batches whose write began: a reader sees at most these
    done = threading.Event()
    problems: list[str] = []
    glob = str(store / "spans" / "**" / "*.parquet")

    def write() -> None:
        for batch in span_batches[1:]:
            started.append(batch.num_rows)
            writer.write("spans", batch)
            written.append(batch.num_rows)
            time.sleep(0.01)
        done.set()

    def read() -> None:
        con = duckdb.connect()
        last = 0
        while not done.is_set() or last < sum(written):
            before = sum(written)
            with read_lock(store):
                total, distinct = con.sql(
                    f"SELECT count(*), count(DISTINCT (trace_id, span_id)) FROM read_parquet('{glob}')"
                ).fetchall()[0]
            after = sum(started)  # the file is visible before write() returns
            if total != distinct:
                problems.append(f"saw {total} rows but {distinct} distinct spans")
            if total < last or total < before or total > after:
                problems.append(f"saw {total} spans; before {before}, after {after}, previously {last}")
            last = total

    threads = [threading.Thread(target=write)] + [threading.Thread(target=read) for _ in range(2)]
    for thread in threads:
        thread.start()
    compactions = 0
    while not done.is_set():
        compactions += len(Compactor(store).run().days)
    for thread in threads:
        thread.join(timeout=120)
    assert not problems, problems[:5]
    assert compactions >= 1
    assert _count(store) == (sum(written), sum(written))


class TestCrashRecovery:
    def _journal(self, store: Path, folder: Path, outputs: list[tuple[str, str]], inputs: list[str]) -> None:
        control = store / COMPACT_DIR
        control.mkdir(parents=True, exist_ok=True)
        (control / "abc.json").write_text(
            json.dumps({"folder": str(folder), "outputs": outputs, "inputs": inputs})
        )

    def test_outputs_in_place_means_the_inputs_go(self, tmp_path: Path, span_batches: list[pa.Table]) -> None:
        store = tmp_path / "store"
        [a] = StoreWriter(store, durable=False).write("spans", span_batches[0])
        [b] = StoreWriter(store, durable=False).write("spans", span_batches[1])
        merged = a.parent / "9-compact-x-000.parquet"
        pq.write_table(pa.concat_tables([span_batches[0], span_batches[1]]), merged)
        self._journal(store, a.parent, [[".9-compact-x-000.parquet.tmp", merged.name]], [a.name, b.name])
        done = Compactor(store).recover()
        assert "finished" in done[0] and _day_files(store) == [merged]

    def test_outputs_missing_means_the_inputs_stay(
        self, tmp_path: Path, span_batches: list[pa.Table]
    ) -> None:
        store = tmp_path / "store"
        [a] = StoreWriter(store, durable=False).write("spans", span_batches[0])
        [b] = StoreWriter(store, durable=False).write("spans", span_batches[1])
        tmp = a.parent / ".9-compact-x-000.parquet.tmp"
        tmp.write_bytes(b"half a file")
        self._journal(store, a.parent, [[tmp.name, "9-compact-x-000.parquet"]], [a.name, b.name])
        done = Compactor(store).recover()
        assert "undid" in done[0] and _day_files(store) == sorted([a, b]) and not tmp.exists()


def test_one_compactor_at_a_time(tmp_path: Path, span_batches: list[pa.Table]) -> None:
    store = tmp_path / "store"
    StoreWriter(store, durable=False).write("spans", span_batches[0])
    with _exclusive(store / COMPACT_DIR / COMPACTOR_LOCK, wait=False):
        with pytest.raises(CompactionError, match="another compaction is running"):
            Compactor(store).run()


def test_cli_compact(tmp_path: Path, span_batches: list[pa.Table]) -> None:
    store = tmp_path / "store"
    writer = StoreWriter(store, durable=False)
    for batch in span_batches[:4]:
        writer.write("spans", batch)
    result = subprocess.run(
        [sys.executable, "-m", "ingest", "compact", "--store", str(store)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "4 files" in result.stdout and "-> 1 " in result.stdout and "60 rows" in result.stdout
    again = subprocess.run(
        [sys.executable, "-m", "ingest", "compact", "--store", str(store)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert "nothing to compact" in again.stdout


class TestUnfinishedSnapshots:
    def test_the_finished_span_survives_compaction_of_its_snapshot(self, make_provider: Any) -> None:
        """A span written unfinished (open past span_timeout_seconds), then finished: compaction keeps the finished row."""
        provider = make_provider({"performance": {"span_timeout_seconds": 0.1}}, service_name="jobs")
        tracer = provider.get_tracer("jobs")
        hung = tracer.start_span("hung_operation", {"job": "j-1"})
        deadline = time.monotonic() + 60
        while provider.counters.get("unfinished_spans", "timeout") == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        provider.force_flush()  # the snapshot's file
        with tracer.start_as_current_span("other"):
            pass
        hung.end()
        provider.shutdown()  # the finished row's file
        store = provider.store_writer.root
        trace_id = f"{hung.get_span_context().trace_id:032x}"
        span_id = f"{hung.get_span_context().span_id:016x}"
        glob = str(store / "spans" / "**" / "*.parquet")
        rows = "SELECT end_time IS NULL AS open FROM read_parquet(?) WHERE span_id = ? ORDER BY open"
        assert duckdb.execute(rows, [glob, span_id]).fetchall() == [(False,), (True,)]
        report = Compactor(store).run(["spans"])
        [day] = report.days
        assert day.inputs >= 2 and day.duplicates == 1
        assert duckdb.execute(rows, [glob, span_id]).fetchall() == [(False,)]
        [span] = open_store(store).trace(trace_id).to_dict("records")
        assert span["name"] == "hung_operation" and span["duration_ns"] > 100_000_000
        assert "langswarm.span.unfinished" not in dict(span["attributes"])

    @pytest.mark.parametrize(
        "snapshot_first", [True, False], ids=["snapshot-file-first", "snapshot-file-last"]
    )
    def test_of_several_copies_the_latest_finished_one_is_kept(
        self, tmp_path: Path, snapshot_first: bool
    ) -> None:
        """Copies of one span in three files, whatever their order: the row with the latest end_time stays."""
        now = time.time_ns()
        common = {"trace_id": ["c" * 32], "span_id": ["1" * 16], "name": ["hung"], "start_time": [now]}
        snapshot = table_from_columns("spans", {**common, "end_time": [None]}, 1)
        early = table_from_columns("spans", {**common, "end_time": [now + 5], "duration_ns": [5]}, 1)
        late = table_from_columns("spans", {**common, "end_time": [now + 9], "duration_ns": [9]}, 1)
        store = tmp_path / "store"
        writer = StoreWriter(store, durable=False)
        for table in [snapshot, early, late] if snapshot_first else [late, early, snapshot]:
            writer.write("spans", table)
        Compactor(store).run()
        [file] = _day_files(store)
        assert pq.read_table(file, columns=["duration_ns"]).column(0).to_pylist() == [9]


class TestTemporaries:
    def test_compaction_removes_orphans_and_keeps_a_live_writer_s_temporary(
        self, tmp_path: Path, span_batches: list[pa.Table]
    ) -> None:
        """A killed compaction's output (any age) and a crashed writer's file (over an hour old) go; a fresh one stays."""
        store = tmp_path / "store"
        [first] = StoreWriter(store, durable=False).write("spans", span_batches[0])
        folder = first.parent
        killed_compaction = folder / ".123-compact-abcdef012345-000.parquet.tmp"
        crashed_writer = folder / ".456-999-deadbeef-000001.parquet.tmp"
        live_writer = folder / ".789-1000-cafebabe-000002.parquet.tmp"
        for path in (killed_compaction, crashed_writer, live_writer):
            path.write_bytes(b"PAR1 half a file")
        two_hours_ago = time.time() - 7200
        os.utime(crashed_writer, (two_hours_ago, two_hours_ago))
        result = subprocess.run(
            [sys.executable, "-m", "ingest", "compact", "--store", str(store)],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        assert "removed 2 temporary files" in result.stdout
        assert not killed_compaction.exists() and not crashed_writer.exists() and live_writer.exists()


def _bloom_excludes(path: Path, trace_id: str) -> list[bool]:
    """Per row group of ``path``: does its trace_id bloom filter rule ``trace_id`` out? (DuckDB's probe.)"""
    rows = duckdb.sql(
        f"SELECT row_group_id, bloom_filter_excludes FROM parquet_bloom_probe('{path}', 'trace_id', '{trace_id}') "
        "ORDER BY row_group_id"
    ).fetchall()
    return [bool(excluded) for _, excluded in rows]


def test_trace_id_bloom_filters_on_written_and_compacted_files(
    tmp_path: Path, span_batches: list[pa.Table]
) -> None:
    """Every span and log file, as written and after compaction, has a trace-id bloom filter per row group
    that rules out an absent trace and never a present one: a lookup by trace id skips the rest."""
    store = tmp_path / "store"
    writer = StoreWriter(store, durable=False)
    for batch in span_batches:
        writer.write("spans", batch)
    writer.write("logs", encode_logs(sdk_logs()))
    absent = "f" * 32
    for table in ("spans", "logs"):
        for path in _day_files(store, table):
            present = pq.read_table(path, columns=["trace_id"]).column(0)[0].as_py()
            assert _bloom_excludes(path, absent) == [True] * pq.ParquetFile(path).num_row_groups
            assert not any(_bloom_excludes(path, present))
    Compactor(store, row_group_rows=16).run()
    (compacted,) = _day_files(store)
    groups = pq.ParquetFile(compacted).num_row_groups
    assert groups > 1 and _bloom_excludes(compacted, absent) == [True] * groups
    for trace_id in {b.column("trace_id")[0].as_py() for b in span_batches}:
        holding = [not excluded for excluded in _bloom_excludes(compacted, trace_id)]
        assert any(holding)  # the group(s) holding the trace are never ruled out


def _encodings(path: Path) -> dict[str, set[str]]:
    """Each leaf column's data-page encodings in the first row group of ``path``."""
    group = pq.ParquetFile(path).metadata.row_group(0)
    return {
        group.column(i).path_in_schema: set(group.column(i).encodings) - {"RLE"}
        for i in range(group.num_columns)
    }


def test_files_carry_the_encodings_of_file_options(tmp_path: Path, span_batches: list[pa.Table]) -> None:
    """Written and compacted span files: dictionaries on repetitive leaves, attribute maps included (they
    had none: 46 -> 27 KB of keys on sample_data), BYTE_STREAM_SPLIT on times, DELTA_LENGTH_BYTE_ARRAY on
    random ids, no dictionary on unique ids; compaction dictionary-encodes the sorted trace ids."""
    store = tmp_path / "store"
    writer = StoreWriter(store, durable=False)
    for batch in span_batches:
        writer.write("spans", batch)
    written = _encodings(_day_files(store)[0])
    Compactor(store).run()
    (compacted_path,) = _day_files(store)
    compacted = _encodings(compacted_path)
    for encodings in (written, compacted):
        assert "RLE_DICTIONARY" in encodings["attributes.key_value.key"]
        assert "RLE_DICTIONARY" in encodings["resource_attributes.key_value.value"]
        assert "RLE_DICTIONARY" in encodings["name"]
        assert encodings["start_time_unix_nano"] == {"BYTE_STREAM_SPLIT"}
        assert encodings["events.list.element.time_unix_nano"] == {"BYTE_STREAM_SPLIT"}
        assert encodings["span_id"] == {"DELTA_LENGTH_BYTE_ARRAY"}
    assert written["trace_id"] == {"DELTA_LENGTH_BYTE_ARRAY"}
    assert "RLE_DICTIONARY" in compacted["trace_id"]
    assert "RLE_DICTIONARY" in written["attributes.key_value.value"]
    assert "RLE_DICTIONARY" not in compacted["attributes.key_value.value"]
    assert pq.read_table(compacted_path).num_rows == sum(b.num_rows for b in span_batches)


def test_short_runs_share_a_row_group() -> None:
    """Row groups start where the first sort key changes unless whole runs fit together: 14 alerts of 14
    distinct times make one group, not 14; a long run gets groups of its own, its tail shared."""
    assert _row_groups([(i, 1) for i in range(14)], 32_768) == [(0, 14)]
    assert _row_groups([(0, 40), (40, 5), (45, 30)], 16) == [(0, 16), (16, 16), (32, 13), (45, 16), (61, 14)]
    assert _row_groups([(0, 3), (3, 4)], 16) == [(0, 7)]
    assert _row_groups([], 16) == []
