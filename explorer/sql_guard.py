"""The one guarded path for SQL typed by a user (the SQL page, ``python -m explorer sql --guarded``).

Layered like datasette's: a separate DuckDB connection sandboxed by DuckDB itself (external access off,
only the store directory readable, configuration locked, no Python replacement scans), a statement
allow-list checked with DuckDB's own parser, a row cap and a time limit enforced by interrupting the
connection. Every refusal raises :class:`~explorer.errors.QueryError` saying why and what to change.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from explorer.errors import QueryError
from explorer.store import Store, create_empty_tables, point_views
from ingest.compact import read_lock

#: Default row cap and time limit; the environment variables override them for the app.
MAX_ROWS = 10_000
TIMEOUT_S = 10.0
MAX_ROWS_ENV = "LANGSWARM_SQL_MAX_ROWS"
TIMEOUT_ENV = "LANGSWARM_SQL_TIMEOUT_S"

#: Statement types a user may run: queries and their plans. Everything else is refused by type.
ALLOWED = frozenset({"SELECT", "EXPLAIN"})

_WHY = {
    "COPY": "COPY reads or writes files; use the page's CSV/Parquet download buttons to save results",
    "EXPORT": "EXPORT DATABASE writes files; use the page's CSV/Parquet download buttons to save results",
    "ATTACH": "ATTACH opens another database; the SQL page only reads the store's views",
    "DETACH": "DETACH changes the attached databases; the SQL page only reads the store's views",
    "LOAD": "INSTALL/LOAD bring in DuckDB extensions, which are disabled on the guarded connection",
    "EXTENSION": "INSTALL/LOAD of DuckDB extensions is disabled on the guarded connection",
    "SET": "SET changes settings; the guarded connection's configuration is locked",
    "VARIABLE_SET": "SET changes settings; the guarded connection's configuration is locked",
    "PRAGMA": "PRAGMA changes or inspects settings; query duckdb_settings() with SELECT instead",
    "CALL": "CALL runs a table function; write SELECT * FROM function(...) instead",
    "TRANSACTION": "transactions are not needed: the store is read-only",
}


@dataclass(frozen=True)
class GuardedResult:
    """Rows of a guarded query (as pandas and as the exact Arrow table, e.g. for a Parquet download);
    ``truncated`` is True when the query had more than ``max_rows`` rows."""

    frame: pd.DataFrame
    arrow: pa.Table
    truncated: bool
    max_rows: int
    seconds: float


def _env_number(name: str, default: float, kind: type) -> float:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        value = kind(raw)
    except ValueError:
        msg = f"{name}={raw!r} is not a {kind.__name__}; unset it or give a positive number"
        raise QueryError(msg) from None
    if value <= 0:
        msg = f"{name}={raw!r} must be positive"
        raise QueryError(msg)
    return value


def check_statement(query: str) -> str:
    """Parse ``query`` with DuckDB and return its one statement type, or raise QueryError saying why not."""
    if not query or not query.strip():
        msg = "the query is empty; write a SELECT over spans, logs, metrics, profiles or alerts"
        raise QueryError(msg)
    try:
        statements = duckdb.extract_statements(query)
    except duckdb.Error as exc:
        msg = f"the query does not parse: {exc}"
        raise QueryError(msg) from None
    if len(statements) != 1:
        msg = f"one statement at a time, got {len(statements)}; remove the extra statements (split at ';')"
        raise QueryError(msg)
    kind = statements[0].type.name
    if kind in ALLOWED:
        return kind
    why = _WHY.get(kind, f"{kind} statements change the database")
    msg = f"{kind} refused: {why}. The SQL page runs read-only SELECT (or EXPLAIN) queries only."
    raise QueryError(msg)


class GuardedSQL:
    """Runs user SQL on its own sandboxed connection over the same store files as ``store``.

    The sandbox is DuckDB's: ``allowed_directories`` is the store root and ``enable_external_access``
    is off, so ``read_csv('/etc/passwd')``, ``COPY ... TO``, ``ATTACH`` and extension installs fail inside
    DuckDB even if the statement check missed them; ``lock_configuration`` stops a query from undoing it.
    """

    def __init__(self, store: Store, *, max_rows: int | None = None, timeout_s: float | None = None) -> None:
        self.root = Path(store.root).resolve()
        self.max_rows = int(max_rows if max_rows is not None else _env_number(MAX_ROWS_ENV, MAX_ROWS, int))
        self.timeout_s = float(
            timeout_s if timeout_s is not None else _env_number(TIMEOUT_ENV, TIMEOUT_S, float)
        )
        self._lock = threading.Lock()
        self._present: dict[str, bool] = {}
        self.con = duckdb.connect(":memory:")
        # Empty typed tables for tables without files, made before the sandbox closes (they need Arrow scans).
        create_empty_tables(self.con)
        self.con.execute("SET allowed_directories = ?", [[str(self.root) + os.sep]])
        self.con.execute("SET enable_external_access = false")
        self.con.execute("SET python_enable_replacements = false")
        self.con.execute("SET autoinstall_known_extensions = false")
        self.con.execute("SET autoload_known_extensions = false")
        self.con.execute("SET lock_configuration = true")
        self.refresh()

    def refresh(self) -> None:
        """Point each view at the table's files (or its empty table), as :meth:`Store.refresh` does."""
        with self._lock:
            point_views(self.con, self.root, self._present)

    def run(self, query: str, *, max_rows: int | None = None) -> GuardedResult:
        """Check and run one read-only statement; at most ``max_rows`` rows, stopped after ``timeout_s``."""
        check_statement(query)
        cap = self.max_rows if max_rows is None else max_rows
        if cap <= 0:
            msg = f"max_rows must be positive, got {cap}"
            raise QueryError(msg)
        # The store's shared read lock: a concurrent `ingest compact` swaps files only between queries.
        with self._lock, read_lock(self.root):
            timer = threading.Timer(self.timeout_s, self.con.interrupt)
            started = time.perf_counter()
            timer.start()
            try:
                reader = self.con.sql(query).to_arrow_reader(min(cap + 1, 100_000))
                batches, rows = [], 0
                for batch in reader:
                    batches.append(batch)
                    rows += batch.num_rows
                    if rows > cap:
                        break
                table = pa.Table.from_batches(batches, schema=reader.schema).slice(0, cap + 1)
            except duckdb.InterruptException:
                msg = (
                    f"the query ran longer than the {self.timeout_s:g} s limit and was stopped; narrow it "
                    f"(WHERE on start_time/timestamp, LIMIT) or raise {TIMEOUT_ENV}"
                )
                raise QueryError(msg) from None
            except duckdb.PermissionException as exc:
                msg = (
                    f"refused: {exc}. Only the store's views (spans, logs, metrics, profiles, alerts) and "
                    f"files under {self.root} can be read; nothing can be written"
                )
                raise QueryError(msg) from None
            except duckdb.Error as exc:
                msg = f"the query failed: {exc}"
                raise QueryError(msg) from None
            finally:
                timer.cancel()
            seconds = time.perf_counter() - started
        truncated = table.num_rows > cap
        table = table.slice(0, cap)
        return GuardedResult(
            frame=table.to_pandas(), arrow=table, truncated=truncated, max_rows=cap, seconds=seconds
        )

    def close(self) -> None:
        with self._lock:
            self.con.close()


#: Example queries shown on the SQL page (each also appears in docs/sql-cookbook.md).
EXAMPLES: dict[str, str] = {
    "Slowest operations (p95)": (
        "SELECT service_name, name, count(*) AS spans,\n"
        "       round(quantile_cont(duration_ns, 0.95) / 1e6, 3) AS p95_ms\n"
        "FROM spans GROUP BY ALL ORDER BY p95_ms DESC LIMIT 20"
    ),
    "Error spans with their message": (
        "SELECT start_time, service_name, name, status_message, trace_id\n"
        "FROM spans WHERE status_code = 'ERROR' ORDER BY start_time DESC LIMIT 50"
    ),
    "Spans by attribute": (
        "SELECT trace_id, name, attributes['correlation_id'] AS correlation_id\n"
        "FROM spans WHERE attributes['correlation_id'] IS NOT NULL LIMIT 50"
    ),
    "Exception stack traces": (
        "SELECT s.trace_id, s.name, e.name AS event, e.attributes['exception.stacktrace'] AS stacktrace\n"
        "FROM spans s, unnest(s.events) AS u(e) WHERE e.name = 'exception' LIMIT 20"
    ),
    "Error logs with their trace": (
        "SELECT timestamp, service_name, logger_name, body, trace_id\n"
        "FROM logs WHERE severity_number >= 17 ORDER BY timestamp DESC LIMIT 50"
    ),
    "Top functions by self time": (
        "SELECT function, sum(calls) AS calls, round(sum(self_time_s), 4) AS self_s\n"
        "FROM profiles WHERE caller IS NULL GROUP BY function ORDER BY self_s DESC LIMIT 20"
    ),
    "Alerts": "SELECT timestamp, severity, state, title, metric_name, current_value, threshold FROM alerts ORDER BY timestamp",
}
