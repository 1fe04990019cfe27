"""The store: a DuckDB connection with one view per table over the Parquet files of a store directory."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from explorer.errors import StoreNotFoundError, TraceNotFoundError
from explorer.genai import LLMRowCache, Prices, resolve_prices
from explorer.tree import order_tree
from ingest.store import schema
from ingest.store.lock import read_lock

TABLES = tuple(schema.TABLES)


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
        self.root = Path(root)
        if not self.root.is_dir():
            msg = f"store directory {str(self.root)!r} does not exist; pass --store DIR or set LANGSWARM_TELEMETRY_DIR"
            raise StoreNotFoundError(msg)
        self.con = duckdb.connect(":memory:")
        self._lock = threading.RLock()
        self._present: dict[str, bool] = {}
        self.prices = resolve_prices(prices)
        create_empty_tables(self.con)
        self.refresh()
        self._llm = LLMRowCache(self.con, self.root, self.prices)

    def refresh(self) -> None:
        """(Re)create the views; a table that gained its first file since opening becomes a Parquet view."""
        with self._lock:
            point_views(self.con, self.root, self._present)

    def has(self, table: str) -> bool:
        """Whether ``table`` has at least one Parquet file."""
        return self._present.get(table, False)

    def sql(self, query: str, params: list[Any] | dict[str, Any] | None = None) -> pd.DataFrame:
        """Run a query over the views and return a DataFrame (the trusted path: no guard, no limit)."""
        # The store's shared read lock: a concurrent `ingest compact` swaps files only between queries,
        # so no query sees a span twice or misses one.
        with self._lock, read_lock(self.root):
            if "llm_calls" in query or "_llm." in query:
                self._llm.sync()  # the rows of new span files (decoding attribute maps is the costly part)
            cursor = self.con.execute(query, params)
            zoned = [d[0] for d in cursor.description if str(d[1]).startswith(("TIMESTAMPTZ", "TIMESTAMP WITH"))]
            frame = cursor.df()
        # DuckDB hands TIMESTAMPTZ_NS (the store's timestamps) to pandas without its zone; say it is UTC so
        # every query returns the same aware timestamps whatever precision the column has.
        for name in zoned:
            column = frame[name]
            if pd.api.types.is_datetime64_dtype(column) and column.dt.tz is None:
                frame[name] = column.dt.tz_localize("UTC")
        return frame

    def trace(self, trace_id: str) -> pd.DataFrame:
        """The spans of ``trace_id`` in tree order (depth-first, children by start time) with ``depth``."""
        spans = self.sql("SELECT * FROM spans WHERE trace_id = ?", [trace_id.lower()])
        if spans.empty:
            msg = f"trace {trace_id!r} is not in the store {str(self.root)!r}"
            raise TraceNotFoundError(msg)
        # A span snapshotted while still open (end_time NULL) and later finished has two rows: keep the finished one.
        spans = spans.sort_values("end_time", na_position="last", kind="stable").drop_duplicates("span_id")
        return order_tree(spans)

    def close(self) -> None:
        with self._lock:
            self.con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"


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


def point_views(con: duckdb.DuckDBPyConnection, root: Path, present: dict[str, bool]) -> None:
    """Point each table's view at its Parquet files, or at its empty table while it has none.

    ``present`` remembers what each view points at, so only a table that gained (or lost) its files
    is redefined.
    """
    for table in TABLES:
        has_files = any(root.glob(f"{table}/**/*.parquet"))
        if present.get(table) == has_files:
            continue
        if has_files:
            glob = str(root / table / "**" / "*.parquet").replace("'", "''")
            source = f"read_parquet('{glob}', hive_partitioning = true, union_by_name = true)"
        else:
            source = f"_store_empty.{table}"
        con.execute(f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM {source}")
        present[table] = has_files


def open_store(
    path: str | os.PathLike[str] | None = None, *, prices: Prices | str | os.PathLike[str] | None = None
) -> Store:
    """Open the store at ``path`` (default: ``$LANGSWARM_TELEMETRY_DIR``, else ``./telemetry``); ``prices``
    extends the LLM price list (default ``$LANGSWARM_PRICES``)."""
    from ingest.store.writer import resolve_store_path

    return Store(resolve_store_path(path), prices=prices)
