"""The store: a DuckDB connection with one view per table over the Parquet files of a store directory,
or of a store on S3-compatible object storage (``s3://bucket/prefix``: an fsspec ``s3fs`` filesystem is
registered on the one long-lived connection, so no DuckDB extension is downloaded)."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from explorer.errors import ExplorerError, StoreNotFoundError, TraceNotFoundError
from explorer.genai import LLMRowCache, Prices, resolve_prices
from explorer.tree import order_tree, tree_order
from ingest.errors import StoreError
from ingest.store import objectstore, rollups, schema
from ingest.store.lock import read_lock

TABLES = tuple(schema.TABLES)
#: The per-trace rollup as queries read it (:meth:`Store._point_trace_summaries`).
TRACE_SUMMARIES_VIEW = "_rollup.trace_summaries"
#: The per-operation rollup as queries read it (:meth:`Store._point_operations`).
OPERATIONS_VIEW = "_rollup.operations"
#: The spans with their dedicated columns (``_service_version``, ``_correlation_id``; :meth:`Store._point_spans_dedicated`).
SPANS_DEDICATED_VIEW = "_rollup.spans_dedicated"
#: DuckDB type ids :meth:`Store.sql` returns Arrow-backed.
_NESTED = frozenset({"map", "list", "struct", "array", "union"})


class Store:
    """A telemetry store opened read-only: views ``spans``, ``logs``, ``metrics``, ``profiles``, ``alerts``,
    and ``llm_calls`` (one row per GenAI span, :mod:`explorer.genai`).

    Views read ``<root>/<table>/**/*.parquet`` at query time, so files written after opening are
    seen by the next query. A table with no file yet is an empty view with the table's columns.
    ``prices`` (a file, files, or a :class:`~explorer.genai.Prices`) extends the shipped LLM price
    list; default ``$LANGSWARM_PRICES``.
    """

    def __init__(
        self, root: str | os.PathLike[str], *, prices: Prices | str | os.PathLike[str] | None = None
    ) -> None:
        self.root: Path | str = (
            objectstore.normalise(str(root)) if objectstore.is_object_store(root) else Path(root)
        )
        self.fs: Any = None
        if isinstance(self.root, str):
            try:
                self.fs = objectstore.filesystem()
                bucket_ok = self.fs.exists(self.root.split("/", 3)[2])
            except (StoreError, OSError) as exc:
                msg = f"cannot open the store {self.root}: {exc}"
                raise StoreNotFoundError(msg) from exc
            if not bucket_ok:
                msg = f"the bucket of {self.root} does not exist (or these AWS credentials cannot see it)"
                raise StoreNotFoundError(msg)
        elif not self.root.is_dir():
            msg = f"store directory {str(self.root)!r} does not exist; pass --store DIR or set LANGSWARM_TELEMETRY_DIR"
            raise StoreNotFoundError(msg)
        #: Where the control folders (``_rejected/``, ``_imports/``) are: the store, or a local one for s3://.
        self.control = objectstore.local_control(self.root)
        self.con = duckdb.connect(":memory:")
        # Every query over a view binds every file of its glob: without this each one re-reads every
        # footer (220 files of a 10M-span store: ~50 ms a query). Store files are never modified in
        # place (written under a temporary name, renamed; compaction writes new names), so a cached
        # footer cannot go stale; DuckDB also checks the file's modification time.
        self.con.execute("SET parquet_metadata_cache = true")
        if self.fs is not None:
            self.con.register_filesystem(self.fs)
        self._lock = threading.RLock()
        self._present: dict[str, bool] = {}
        self.prices = resolve_prices(prices)
        create_empty_tables(self.con)
        self.refresh()
        self._llm = LLMRowCache(self.con, self.root, self.prices, self.fs)
        self.con.execute("CREATE SCHEMA IF NOT EXISTS _rollup")
        self._rollups_read: dict[str, tuple[str, ...]] = {}
        self._dedicated_read: tuple[str, ...] | None = None
        self._dedicated: dict[tuple[Any, ...], bool] = {}
        self._view_sqls: dict[tuple[Any, ...], str] = {}

    def refresh(self) -> None:
        """(Re)create the views; a table that gained its first file since opening becomes a Parquet view."""
        with self._lock:
            point_views(self.con, self.root, self._present, self.fs)

    def has(self, table: str) -> bool:
        """Whether ``table`` has at least one Parquet file."""
        return self._present.get(table, False)

    def arrow(self, query: str, params: list[Any] | dict[str, Any] | None = None) -> pa.Table:
        """Run a query over the views and return an Arrow table: ~10x faster than :meth:`sql` for wide rows,
        since attribute maps stay Arrow data instead of becoming one Python dict per cell."""
        with self._reading(query):
            return self.con.sql(query, params=params).to_arrow_table()

    @contextlib.contextmanager
    def _reading(self, query: str) -> Iterator[None]:
        """Hold what a query over the views needs: the connection, the store's shared read lock (a concurrent
        `ingest compact` swaps files only between queries, so no query sees a span twice or misses one;
        object storage has no compaction, hence no lock) and, for ``llm_calls``, its cache brought up to date
        (the rows of new span files: decoding attribute maps is the costly part)."""
        with self._lock, read_lock(self.root) if isinstance(self.root, Path) else contextlib.nullcontext():
            if "llm_calls" in query or "_llm." in query:
                self._llm.sync()
            if TRACE_SUMMARIES_VIEW in query:
                self._point_trace_summaries()
            if OPERATIONS_VIEW in query:
                self._point_operations()
            if SPANS_DEDICATED_VIEW in query:
                self._point_spans_dedicated()
            yield

    def _point_spans_dedicated(self) -> None:
        """(Re)point ``_rollup.spans_dedicated`` (the ``spans`` view's columns plus ``_service_version`` and
        ``_correlation_id``) at the span files: compacted files' dedicated columns where they have them, the
        attribute maps elsewhere. The same rows and values as the maps; at 10M compacted spans grouping by
        version reads one flat column instead of 10M maps (:mod:`ingest.store.rollups`)."""
        dedicated = []
        if isinstance(self.root, Path) and self._present.get("spans"):
            # Only compaction writes dedicated columns: its outputs alone are listed, not every written file.
            compacted = sorted(map(str, (self.root / "spans").glob("**/*-compact-*.parquet")))
            dedicated = [p for p in compacted if self._has_dedicated(p)]
        if tuple(dedicated) == self._dedicated_read:
            return
        names = list(rollups.DEDICATED_SPAN_COLUMNS)
        from_maps = ", ".join(f"{m}['{k}'] AS _{n}" for n, (m, k) in rollups.DEDICATED_SPAN_COLUMNS.items())
        if not dedicated:
            sql = f"SELECT *, {from_maps} FROM spans"
        else:
            renamed = ", ".join(f"{n} AS _{n}" for n in names)
            sql = (
                f"SELECT * EXCLUDE ({', '.join(names)}), {renamed} FROM {_parquet_source(dedicated)} "
                f"UNION ALL BY NAME SELECT * EXCLUDE (_file), {from_maps} FROM ({self._spans_except(dedicated)})"
            )
        self.con.execute(f"CREATE OR REPLACE VIEW {SPANS_DEDICATED_VIEW} AS {sql}")
        self._dedicated_read = tuple(dedicated)

    def _spans_except(self, files: list[str]) -> str:
        """The ``spans`` view's rows (with ``_file``) of every span file but ``files``. The glob is read when
        the query runs, as the ``spans`` view's is, so a file written since the listing is in both; ``files``
        change only under the compaction lock this query holds shared."""
        source = _parquet_source(_table_glob(self.root, "spans"), filename=True)
        listed = ", ".join(map(_sql_string, files))
        # DuckDB prunes files by a filter on the filename column before reading them.
        return f"SELECT * FROM ({view_sql(self.con, 'spans', source)}) WHERE _file NOT IN ({listed})"

    def _has_dedicated(self, path: str) -> bool:
        """Whether the compacted span file ``path`` has every dedicated column (not rewritten since)."""
        key = (path, *_file_version(path, None))  # `ingest migrate` rewrites a file under its name
        if key not in self._dedicated:
            self._dedicated[key] = set(rollups.DEDICATED_SPAN_COLUMNS) <= set(pq.read_schema(path).names)
        return self._dedicated[key]

    def has_trace_summaries(self) -> bool:
        """Whether a compaction wrote rollups here (queries read ``_rollup.trace_summaries`` only then: over
        raw spans alone, a per-trace aggregate is slower than the plain one)."""
        return self.has_rollup(rollups.TRACE_SUMMARIES)

    def has_rollup(self, rollup: str) -> bool:
        """Whether a compaction wrote a file of the rollup table ``rollup`` here (:data:`ingest.store.rollups.ROLLUPS`;
        an emptied folder, e.g. after ``prune``, does not count: the raw query is the cheaper one then)."""
        return (
            isinstance(self.root, Path)
            and next((self.root / rollup).glob("date=*/*.parquet"), None) is not None
        )

    def _point_trace_summaries(self) -> None:
        """(Re)point ``_rollup.trace_summaries`` (one row per trace and span file: ``trace_id, start_time,
        start_time_unix_nano, last_start_time, end_time_unix_nano, span_count, error_count``) at the compacted
        span files' rollup twins plus a per-trace aggregate of every other span file (:mod:`ingest.store.rollups`).
        Summing its rows per trace gives exactly what aggregating every span would, from a tenth of the rows
        on a compacted store. Twins are listed per query, under the read lock: a compaction's swap is seen whole."""
        per_trace = """trace_id, min(start_time) AS start_time, min(start_time_unix_nano) AS start_time_unix_nano,
            max(start_time) AS last_start_time, max(end_time_unix_nano) AS end_time_unix_nano, count(*) AS span_count,
            coalesce(count_if(status_code = 'ERROR'), 0) AS error_count"""
        self._point_rollup(TRACE_SUMMARIES_VIEW, rollups.TRACE_SUMMARIES, per_trace, "trace_id")

    def _point_operations(self) -> None:
        """(Re)point ``_rollup.operations`` (one row per service, span name and span file: ``service_name,
        name, span_count, error_count, start_time, last_start_time``) at the compacted span files' twins plus
        the same aggregate of every other span file, as :meth:`_point_trace_summaries` does per trace."""
        per_operation = """service_name, name, count(*) AS span_count,
            coalesce(count_if(status_code = 'ERROR'), 0) AS error_count,
            min(start_time) AS start_time, max(start_time) AS last_start_time"""
        self._point_rollup(OPERATIONS_VIEW, rollups.OPERATIONS, per_operation, "service_name, name")

    def _point_rollup(self, view: str, rollup: str, aggregate: str, keys: str) -> None:
        """Point ``view`` at the twins of ``rollup`` plus ``aggregate`` (grouped by ``keys``) over every span
        file without one; unchanged while the twins are."""
        twins, covered = (
            _summarised(self.root, rollup)
            if isinstance(self.root, Path) and self._present.get("spans")
            else ([], [])
        )
        if view in self._rollups_read and tuple(twins) == self._rollups_read[view]:
            return
        if not twins:  # nothing compacted (or object storage, never compacted): every span, as before
            sql = f"SELECT {aggregate} FROM spans GROUP BY {keys}"
        else:
            listed = f"[{', '.join(map(_sql_string, twins))}]"
            sql = (
                f"SELECT {', '.join(rollups.SCHEMAS[rollup].names)} "
                f"FROM read_parquet({listed}, hive_partitioning = false, union_by_name = true) "
                f"UNION ALL SELECT {aggregate} FROM ({self._spans_except(covered)}) GROUP BY {keys}"
            )
        self.con.execute(f"CREATE OR REPLACE VIEW {view} AS {sql}")
        self._rollups_read[view] = tuple(twins)

    def polars(self, query: str, params: list[Any] | dict[str, Any] | None = None) -> Any:
        """:meth:`arrow` as a ``polars.DataFrame`` (polars is optional: ``pip install polars``)."""
        try:
            import polars
        except ImportError:
            msg = "Store.polars needs the polars package: pip install polars (or use Store.arrow)"
            raise ExplorerError(msg) from None
        return polars.from_arrow(self.arrow(query, params))

    def sql(
        self, query: str, params: list[Any] | dict[str, Any] | None = None, *, arrow_dtypes: bool = False
    ) -> pd.DataFrame:
        """Run a query over the views and return a DataFrame (the trusted path: no guard, no limit).

        Nested columns (attribute maps, events, links, histogram buckets) come back Arrow-backed
        (``pd.ArrowDtype``): a cell reads as a list of ``(key, value)`` pairs for a map, a list of dicts for
        events, ``pd.NA`` for NULL, and no Python object is made per cell until one is read (100,000 spans in
        ~0.11 s instead of ~1.4 s as dicts). Other columns have DuckDB's usual pandas types, timestamps in
        UTC. ``arrow_dtypes=True`` makes every column Arrow-backed, straight from :meth:`arrow`.
        """
        if arrow_dtypes:
            return self.arrow(query, params).to_pandas(types_mapper=pd.ArrowDtype)
        with self._reading(query):
            return self._frame(self.con.sql(query, params=params))

    def _frame(
        self,
        relation: duckdb.DuckDBPyRelation | None,
        *,
        arrange: Callable[[pa.Table], pa.Table] | None = None,
    ) -> pd.DataFrame:
        """Run ``relation`` (under :meth:`_reading`) and convert its rows as :meth:`sql` describes.

        ``arrange`` takes the rows as Arrow and returns them reordered, with new columns appended or none:
        one Arrow ``take`` instead of a pandas one, which costs ~20 us per Arrow-backed column."""
        if relation is None:  # a statement with no result (SET, CREATE ...)
            return pd.DataFrame()
        names, types = list(relation.columns), relation.types
        nested = [i for i, t in enumerate(types) if t.id in _NESTED]
        if not nested and arrange is None:
            frame = relation.df()
        else:
            table = relation.to_arrow_table()
            if arrange is not None:
                table = arrange(table)
                names += table.column_names[len(names) :]
            frame = self._with_arrow_nested(table, nested)
        # DuckDB hands TIMESTAMPTZ_NS (old stores' timestamps) to pandas without its zone and TIMESTAMPTZ in
        # its session zone; say UTC so every query returns the same aware timestamps whatever the precision.
        for position, kind in enumerate(types):
            if kind.id not in ("timestamp with time zone", "timestamp_ns with time zone"):
                continue
            column = frame.iloc[:, position]
            if pd.api.types.is_datetime64_dtype(column) and column.dt.tz is None:
                frame.isetitem(position, column.dt.tz_localize("UTC"))
            elif isinstance(column.dtype, pd.DatetimeTZDtype) and str(column.dt.tz) != "UTC":
                frame.isetitem(position, column.dt.tz_convert("UTC"))
        frame.columns = names
        return frame

    def _with_arrow_nested(self, table: pa.Table, nested: list[int]) -> pd.DataFrame:
        """``table`` as pandas: nested columns wrapped as Arrow arrays (no copy), the others with the pandas
        types DuckDB's own conversion gives them (:func:`_flat_column`)."""
        # Converting maps to one dict per cell is ~90% of a wide query's time (DuckDB and pyarrow alike).
        # One pyarrow conversion for every column (per column, a trace's few rows took ~3 ms in pandas
        # overhead), then the columns whose default conversion differs from DuckDB's are redone one by one.
        positional = table.rename_columns([f"_{i}" for i in range(table.num_columns)])
        frame = positional.to_pandas(types_mapper=_arrow_nested_dtype, split_blocks=True)
        fallback = []
        for position, column in enumerate(table.columns):
            if position in nested or not _differs_by_default(column):
                continue
            converted = _flat_column(column)
            if converted is None:
                fallback.append(position)
            else:
                frame.isetitem(position, converted)
        if fallback:  # types pandas and DuckDB convert differently (intervals, blobs, ...): DuckDB's way
            duck = self.con.from_arrow(table.select(fallback)).df()
            for i, position in enumerate(fallback):
                frame.isetitem(position, duck.iloc[:, i])
        return frame

    def trace(self, trace_id: str) -> pd.DataFrame:
        """The spans of ``trace_id`` in tree order (depth-first, children by start time) with ``depth``."""
        trace_id = trace_id.strip().lower()
        spans = self.trace_rows("spans", trace_id, arrange=_tree_ordered)
        if spans.empty and 4 <= len(trace_id) < 32:
            trace_id = self._expand_prefix(trace_id)
            spans = self.trace_rows("spans", trace_id, arrange=_tree_ordered)
        if spans.empty:
            msg = f"trace {trace_id!r} is not in the store {str(self.root)!r}"
            raise TraceNotFoundError(msg)
        if "depth" in spans:
            return spans
        # A span snapshotted while still open (end_time NULL) and later finished has two rows: keep the finished one.
        spans = spans.sort_values("end_time", na_position="last", kind="stable").drop_duplicates("span_id")
        return order_tree(spans)

    def trace_rows(
        self,
        table: str,
        trace_id: str,
        *,
        select: str = "*",
        order: str = "",
        arrange: Callable[[pa.Table], pa.Table] | None = None,
    ) -> pd.DataFrame:
        """``SELECT {select} FROM {table} WHERE trace_id = trace_id {order}``, read in two steps: the files
        holding the trace, found from the ``trace_id`` column alone (bloom filters and min/max skip the rest),
        then only those files' rows. One query over every file costs twice as much at 10M spans: it binds
        every file's whole schema and sets up a reader per column and row group (docs/benchmarks.md).
        ``arrange`` reorders or extends the rows as Arrow, before they become pandas (see :meth:`_frame`)."""
        if table not in TABLES:
            msg = f"no table {table!r}; the tables are {', '.join(TABLES)}"
            raise ExplorerError(msg)
        with self._reading(table):
            files = self._files_holding(table, trace_id) if self._present.get(table) else []
            if files:
                view = f"({self._view_sql(table, files)})"
            else:
                # No file holds it: the table's columns, no rows, without binding every file of the view.
                view = f"_store_empty.{table}"
            query = f"SELECT {select} FROM {view} AS t WHERE trace_id = $trace_id {order}"
            return self._frame(self.con.sql(query, params={"trace_id": trace_id}), arrange=arrange)

    def _view_sql(self, table: str, files: list[str]) -> str:
        """:func:`view_sql` of ``table`` over ``files``, remembered per file (name, size, modification time):
        a trace lookup reads the same few compacted files again and again, and the DESCRIBE costs ~1 ms."""
        key = (table, tuple(files), tuple(_file_version(f, self.fs) for f in files))
        if key not in self._view_sqls:
            if len(self._view_sqls) >= 256:
                self._view_sqls.clear()
            self._view_sqls[key] = view_sql(self.con, table, _parquet_source(files))
        return self._view_sqls[key]

    def _files_holding(self, table: str, trace_id: str) -> list[str]:
        """The Parquet files of ``table`` with at least one row of ``trace_id``. Every file has ``trace_id``, so
        no file's schema is unioned and no partition is parsed: half the time at 10M spans (47 -> 21 ms)."""
        glob = _sql_string(_table_glob(self.root, table))
        rows = self.con.execute(
            f"SELECT DISTINCT filename FROM read_parquet({glob}, filename = true, hive_partitioning = false) "
            "WHERE trace_id = ?",
            [trace_id],
        ).fetchall()
        return sorted(row[0] for row in rows)

    def _expand_prefix(self, prefix: str) -> str:
        """The one trace id starting with ``prefix`` (the short ids the app shows), or ``prefix`` itself
        when none does; several raise :class:`TraceNotFoundError` listing some of them."""
        found = self.sql(
            "SELECT DISTINCT trace_id FROM spans WHERE starts_with(trace_id, ?) ORDER BY trace_id LIMIT 6",
            [prefix],
        )["trace_id"].tolist()
        if len(found) > 1:
            shown = ", ".join(found[:5]) + (", …" if len(found) > 5 else "")
            msg = f"trace id prefix {prefix!r} is ambiguous in {str(self.root)!r}: {shown}; give more digits"
            raise TraceNotFoundError(msg)
        return found[0] if found else prefix

    def close(self) -> None:
        with self._lock:
            self.con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"


#: Arrow types :func:`_flat_column` converts to pandas' nullable types when a value is NULL (as DuckDB does).
_NULLABLE: dict[pa.DataType, Any] = {
    pa.int8(): pd.Int8Dtype(),
    pa.int16(): pd.Int16Dtype(),
    pa.int32(): pd.Int32Dtype(),
    pa.int64(): pd.Int64Dtype(),
    pa.uint8(): pd.UInt8Dtype(),
    pa.uint16(): pd.UInt16Dtype(),
    pa.uint32(): pd.UInt32Dtype(),
    pa.uint64(): pd.UInt64Dtype(),
    pa.bool_(): pd.BooleanDtype(),
}


def _arrow_nested_dtype(kind: pa.DataType) -> pd.ArrowDtype | None:
    """pyarrow's ``types_mapper`` for :meth:`Store._with_arrow_nested`: nested types stay Arrow data."""
    return pd.ArrowDtype(kind) if pa.types.is_nested(kind) else None


def _differs_by_default(column: pa.ChunkedArray) -> bool:
    """Whether pyarrow's default conversion of a flat ``column`` differs from :func:`_flat_column`'s:
    integers or booleans with a NULL, a string column of only NULLs, dates, decimals, and any type that
    function does not handle."""
    kind = column.type
    if kind in _NULLABLE:
        return column.null_count > 0
    if pa.types.is_floating(kind) or pa.types.is_timestamp(kind):
        return False
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return column.null_count == len(column) > 0
    return True


def _flat_column(column: pa.ChunkedArray) -> pd.Series | None:
    """A flat Arrow column as pandas with the types DuckDB's ``.df()`` gives, ~30x faster than DuckDB's
    conversion (strings stay Arrow-backed ``str``): integers and booleans nullable only when a value is NULL,
    dates as datetimes, decimals as floats, a string column of only NULLs as ``None`` objects. ``None`` for
    other types (the caller converts those through DuckDB)."""
    kind = column.type
    if kind in _NULLABLE:
        return column.to_pandas(types_mapper=_NULLABLE.get if column.null_count else None)
    if pa.types.is_floating(kind) or pa.types.is_timestamp(kind):
        return column.to_pandas()
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        if column.null_count == len(column) > 0:
            return pd.Series([None] * len(column), dtype=object)
        return column.to_pandas()
    if pa.types.is_date(kind):
        return column.cast(pa.timestamp("us")).to_pandas()
    if pa.types.is_decimal(kind):
        return column.cast(pa.float64()).to_pandas()
    return None


def create_empty_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Empty typed tables ``_store_empty.<table>`` (hive ``date`` column included): a view's stand-in
    while its table has no file, so every view always has the table's columns."""
    con.execute("CREATE SCHEMA IF NOT EXISTS _store_empty")
    for table in TABLES:
        con.register("_empty_arrow", schema.schema_for(table).empty_table())
        con.execute(
            f"CREATE OR REPLACE TABLE _store_empty.{table} AS SELECT *, NULL::DATE AS date FROM _empty_arrow"
        )
        con.unregister("_empty_arrow")


def point_views(
    con: duckdb.DuckDBPyConnection, root: Path | str, present: dict[str, bool], fs: Any = None
) -> None:
    """Point each table's view at its Parquet files, or at its empty table while it has none.

    ``present`` remembers what each view points at, so only a table that gained (or lost) its files
    is redefined. A table holding files written before the portable layout (nanosecond timestamps, no
    ``*_unix_nano`` columns) gets a view that derives the missing columns (:func:`legacy_view_sql`).
    """
    for table in TABLES:
        if isinstance(root, str):
            has_files = bool(fs.glob(f"{root}/{table}/date=*/*.parquet"))
        else:
            has_files = any(root.glob(f"{table}/**/*.parquet"))
        if present.get(table) == has_files:
            continue
        if has_files:
            source = _parquet_source(_table_glob(root, table))
            con.execute(f"CREATE OR REPLACE VIEW {table} AS {view_sql(con, table, source)}")
        else:
            con.execute(f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM _store_empty.{table}")
        present[table] = has_files


def _table_glob(root: Path | str, table: str) -> str:
    """Every Parquet file of ``table`` under ``root`` (a directory or an ``s3://`` prefix)."""
    return f"{root}/{table}/**/*.parquet" if isinstance(root, str) else str(root / table / "**" / "*.parquet")


def _summarised(root: Path, rollup: str) -> tuple[list[str], list[str]]:
    """The twins of ``rollup`` whose span file exists, and those span files."""
    pairs = [(str(t), str(s)) for t, s in rollups.twins(root, rollup) if s.exists()]
    return [t for t, _ in pairs], [s for _, s in pairs]


def _tree_ordered(table: pa.Table) -> pa.Table:
    """One trace's spans in tree order (:func:`explorer.tree.tree_order`) with ``depth`` and ``orphan``;
    unchanged when a span id repeats (:meth:`Store.trace` then drops the copies first, in pandas)."""
    if not table.num_rows:
        return table
    span_ids = table.column("span_id").to_pylist()
    if len(set(span_ids)) < len(span_ids):
        return table
    by = "start_time_unix_nano" if "start_time_unix_nano" in table.column_names else "start_time"
    order, depth, orphan = tree_order(
        table.column(by).to_pylist(), span_ids, table.column("parent_span_id").to_pylist()
    )
    ordered = table.take(order)
    ordered = ordered.append_column("depth", pa.array(depth, pa.int64()))
    return ordered.append_column("orphan", pa.array(orphan, pa.bool_()))


def _file_version(path: str, fs: Any) -> tuple[int, int]:
    """A local file's (size, modification time in ns): what changes when ``ingest migrate`` rewrites it in
    place. Objects are never rewritten under their name (``migrate`` works on local stores only), so an
    object store's files are known by name, without a request per lookup."""
    if fs is not None:
        return (0, 0)
    stat = os.stat(path)
    return stat.st_size, stat.st_mtime_ns


def _sql_string(text: str) -> str:
    """``text`` as a SQL string literal (file names are not bindable parameters in ``read_parquet``)."""
    return "'" + text.replace("'", "''") + "'"


def _parquet_source(paths: str | list[str], *, filename: bool = False) -> str:
    """A ``read_parquet`` of ``paths`` (a glob, or a list of files) as every view reads the store; with
    ``filename``, each row's file in a ``_file`` column."""
    listed = _sql_string(paths) if isinstance(paths, str) else f"[{', '.join(map(_sql_string, paths))}]"
    named = ", filename = '_file'" if filename else ""
    return f"read_parquet({listed}, hive_partitioning = true, union_by_name = true{named})"


def view_sql(con: duckdb.DuckDBPyConnection, table: str, source: str) -> str:
    """The SELECT of a table's view over ``source``: the files as they are when every file has the
    portable layout, else :func:`legacy_view_sql` (read both layouts)."""
    # union_by_name reads every file's footer at bind time anyway: this costs one query's planning.
    columns = {row[0]: str(row[1]) for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
    if table == "spans":
        # Compaction's dedicated columns stay out of the table's view, whether or not a file has them yet
        # (the glob is bound per query; a view made before the first compaction must not show them after).
        hidden = ", ".join(map(_sql_string, rollups.DEDICATED_SPAN_COLUMNS))
        source = f"(SELECT COLUMNS(lambda c: c NOT IN ({hidden})) FROM {source})"
        for name in rollups.DEDICATED_SPAN_COLUMNS:
            columns.pop(name, None)
    legacy = any(
        nano not in columns or columns.get(stamp, "").endswith("_NS")
        for stamp, nano in schema.NANO_COLUMNS[table].items()
    ) or (table == "spans" and "time_unix_nano" not in columns.get("events", ""))
    return legacy_view_sql(table, source, columns) if legacy else f"SELECT * FROM {source}"


def _micros(stamp: str) -> str:
    """SQL for a nanosecond timestamp truncated to the microsecond, as the writer stores it (a plain cast
    would round, and could move a time of 23:59:59.9999995 to the next day)."""
    return f"timezone('UTC', make_timestamp(epoch_ns({stamp}) // 1000))"


def legacy_view_sql(table: str, source: str, columns: dict[str, str]) -> str:
    """Read both layouts: microsecond timestamps, and each ``*_unix_nano`` taken from the file when it has
    one, else derived exactly from the old nanosecond timestamp (so queries need not know the layout)."""
    replaced, added = [], []
    for stamp, nano in schema.NANO_COLUMNS[table].items():
        if stamp not in columns:
            continue
        replaced.append(f"{_micros(stamp)} AS {stamp}")
        derived = f"epoch_ns({stamp})"
        if nano in columns:
            replaced.append(f"coalesce({nano}, {derived}) AS {nano}")
        else:
            added.append(f"{derived}::BIGINT AS {nano}")
    if table == "spans":
        has_nano = "time_unix_nano" in columns.get("events", "")
        nano = "coalesce(e.time_unix_nano, epoch_ns(e.timestamp))" if has_nano else "epoch_ns(e.timestamp)"
        replaced.append(
            "list_transform(events, lambda e: struct_pack(name := e.name, "
            f"timestamp := {_micros('e.timestamp')}, "
            f"time_unix_nano := {nano}::BIGINT, attributes := e.attributes)) AS events"
        )
    extra = "".join(f", {a}" for a in added)
    return f"SELECT * REPLACE ({', '.join(replaced)}){extra} FROM {source}"


#: The committed sample store, present in a checkout of this repository (not in an installed package).
SAMPLE_STORE = Path(__file__).resolve().parent.parent / "sample_data"


def default_store(argument: str | os.PathLike[str] | None = None) -> tuple[Path | str, str]:
    """The store the app and the CLI open, and why — one rule for both: ``argument`` (``--store DIR`` or
    ``s3://bucket/prefix``) > ``$LANGSWARM_TELEMETRY_DIR`` > ``./telemetry`` if it exists > the sample store
    if present > ``./telemetry`` (which then does not exist, and says so)."""
    from ingest.store import objectstore
    from ingest.store.writer import DEFAULT_STORE, STORE_ENV

    def location(given: str | os.PathLike[str]) -> Path | str:
        text = os.fspath(given)
        return objectstore.normalise(text) if objectstore.is_object_store(text) else Path(text).expanduser()

    if argument:
        return location(argument), "--store"
    env = os.environ.get(STORE_ENV)
    if env:
        return location(env), f"${STORE_ENV}"
    if Path(DEFAULT_STORE).is_dir():
        return Path(DEFAULT_STORE), "./telemetry"
    if SAMPLE_STORE.is_dir():
        return SAMPLE_STORE, "sample store"
    return Path(DEFAULT_STORE), "./telemetry"


def open_store(
    path: str | os.PathLike[str] | None = None, *, prices: Prices | str | os.PathLike[str] | None = None
) -> Store:
    """Open the store at ``path``, a directory or ``s3://bucket/prefix`` (default: ``$LANGSWARM_TELEMETRY_DIR``,
    else ``./telemetry``); ``prices`` extends the LLM price list (default ``$LANGSWARM_PRICES``)."""
    from ingest.store.writer import resolve_store

    return Store(resolve_store(path), prices=prices)
