"""The one guarded path for SQL typed by a user (the SQL page, ``python -m explorer sql --guarded``).

Layered like datasette's, and as DuckDB's own security guide advises for untrusted SQL ("a separate
process with minimal privileges", "strict query timeouts at the application level"):

1. a **size cap** on the query text, checked before DuckDB sees it;
2. an **allow-list checked after DuckDB has parsed the statement**: one ``SELECT`` (or ``EXPLAIN``
   [``ANALYZE``] of one ``SELECT``, rebuilt by the guard around the checked ``SELECT``); inside it, table
   functions from an allow-list only and no function or view that reveals DuckDB's settings;
3. a **worker process** (:mod:`explorer.sql_worker`) owning the DuckDB connection: sandboxed by DuckDB
   (external access off, only the store readable, configuration locked), unable to create, write or
   remove any file (Linux Landlock, where the kernel has it), with per-query memory, thread and time
   limits; its catalog is compared after every query and the worker rebuilt if anything changed;
4. a **time limit that covers parsing and planning**: DuckDB stops the query at the limit, and a
   worker still busy :data:`GRACE_S` later (DuckDB cannot interrupt its parser or planner) is killed
   and restarted, so no query holds the guard for much longer than the limit;
5. a **row cap** and a **result size cap** (the rows go on into the app's process, shared by every user).

Every refusal raises :class:`~explorer.errors.QueryError` saying why and what to change.
"""

from __future__ import annotations

import json
import os
import select
import signal
import struct
import subprocess
import sys
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import duckdb
import pandas as pd
import pyarrow as pa

from explorer.errors import QueryError
from explorer.store import Store
from ingest.compact import read_lock

#: Defaults; each has an environment variable and a constructor argument (argument > environment > default).
MAX_ROWS = 10_000
TIMEOUT_S = 10.0
MAX_QUERY_BYTES = 100_000
MEMORY_MB = 1024
MAX_RESULT_MB = 200
THREADS = 2
MAX_ROWS_ENV = "LANGSWARM_SQL_MAX_ROWS"
TIMEOUT_ENV = "LANGSWARM_SQL_TIMEOUT_S"
MAX_QUERY_BYTES_ENV = "LANGSWARM_SQL_MAX_QUERY_BYTES"
MEMORY_MB_ENV = "LANGSWARM_SQL_MEMORY_MB"
MAX_RESULT_MB_ENV = "LANGSWARM_SQL_MAX_RESULT_MB"
THREADS_ENV = "LANGSWARM_SQL_THREADS"

#: How long after the time limit a worker still parsing or planning is killed (DuckDB interrupts only
#: running pipelines; its parser, binder and optimizer never look at the interrupt flag).
GRACE_S = 1.0
#: The worker's command line after the interpreter (``-P``: the store directory, its working directory,
#: is not put on ``sys.path``).
WORKER_ARGS: tuple[str, ...] = ("-P", "-m", "explorer.sql_worker")
#: The worker starts with one thread (no BLAS pool, no jemalloc purge thread), so that Landlock, which binds
#: only the threads of the moment and their children, covers every thread DuckDB starts afterwards.
WORKER_ENV = {
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "JE_ARROW_MALLOC_CONF": "background_thread:false",
}
#: How much longer than one query's limit a caller waits for the guard before a "busy" refusal (room for
#: stopping a query at the limit and starting a new worker on a loaded machine).
BUSY_WAIT_S = 5.0
#: How long the worker may take to start (imports, views, sandbox) before the guard gives up.
START_TIMEOUT_S = 60.0

#: Statement types a user may run: queries and their plans. Everything else is refused by type.
ALLOWED = frozenset({"SELECT", "EXPLAIN"})

#: Table functions a query may call: the file readers (DuckDB's sandbox keeps them inside the store),
#: generators and catalog listings. Not allowed, among others: ``query``/``query_table`` and
#: ``json_execute_serialized_sql`` (they run SQL text the guard never parsed), ``duckdb_settings``,
#: ``duckdb_secrets``, ``duckdb_extensions``, ``duckdb_temporary_files``, ``which_secret`` (settings,
#: paths and secrets), ``checkpoint``, ``enable_logging``/``enable_profiling`` and every ``pragma_*``.
TABLE_FUNCTIONS = frozenset(
    {
        # files (inside the store only)
        "read_parquet",
        "parquet_scan",
        "read_csv",
        "read_csv_auto",
        "read_json",
        "read_json_auto",
        "read_ndjson",
        "read_ndjson_auto",
        "read_json_objects",
        "read_json_objects_auto",
        "read_ndjson_objects",
        "read_text",
        "read_blob",
        "glob",
        "sniff_csv",
        "parquet_metadata",
        "parquet_schema",
        "parquet_file_metadata",
        "parquet_kv_metadata",
        "parquet_full_metadata",
        "parquet_page_index",
        "parquet_bloom_probe",
        # generators
        "range",
        "generate_series",
        "unnest",
        "repeat",
        "repeat_row",
        "json_each",
        "json_tree",
        "histogram",
        "histogram_values",
        "summary",
        # catalog listings (the views and their columns)
        "duckdb_columns",
        "duckdb_tables",
        "duckdb_views",
        "duckdb_schemas",
        "duckdb_types",
        "duckdb_functions",
        "duckdb_keywords",
        "duckdb_constraints",
        "duckdb_indexes",
        "duckdb_dependencies",
        "pragma_table_info",
        "table_info",
        "pg_timezone_names",
        "icu_calendar_names",
    }
)

#: Scalar functions refused anywhere in a query: they read DuckDB's settings (which hold the store's
#: absolute path, the home directory, limits) or variables, or write to DuckDB's log.
DENIED_FUNCTIONS = {
    "current_setting": "it reads DuckDB's settings, which are not part of the store",
    "getvariable": "it reads connection variables, which are not part of the store",
    "write_log": "it writes to DuckDB's log",
}

#: Views refused anywhere in a query (system views over the settings).
DENIED_RELATIONS = {"pg_settings": "it lists DuckDB's settings, which are not part of the store"}

#: EXPLAIN output formats accepted in ``EXPLAIN (FORMAT ...)``.
EXPLAIN_FORMATS = frozenset({"text", "json", "html", "graphviz", "yaml", "mermaid"})

_WHY = {
    "COPY": "COPY reads or writes files; use the page's CSV/Parquet download buttons to save results",
    "EXPORT": "EXPORT DATABASE writes files; use the page's CSV/Parquet download buttons to save results",
    "ATTACH": "ATTACH opens another database; the SQL page only reads the store's views",
    "DETACH": "DETACH changes the attached databases; the SQL page only reads the store's views",
    "LOAD": "INSTALL/LOAD bring in DuckDB extensions, which are disabled on the guarded connection",
    "EXTENSION": "INSTALL/LOAD of DuckDB extensions is disabled on the guarded connection",
    "SET": "SET/RESET/USE change settings; the guarded connection's configuration is locked",
    "VARIABLE_SET": "SET changes settings; the guarded connection's configuration is locked",
    "PRAGMA": "PRAGMA changes or inspects settings or imports a database; the SQL page reads the views only",
    "CALL": "CALL (and CHECKPOINT) run a table function; write SELECT * FROM function(...) instead",
    "TRANSACTION": "transactions are not needed: the store is read-only",
    "PREPARE": "PREPARE keeps a statement on the shared connection; write the SELECT itself",
    "EXECUTE": "EXECUTE runs a prepared statement; write the SELECT itself",
    "VACUUM": "VACUUM/ANALYZE maintain tables; the store's views have nothing to maintain",
    "MULTI": (
        "this statement runs several statements (a PIVOT without an IN list creates a type first); "
        "list the values: PIVOT ... ON column IN ('a', 'b') USING ..."
    ),
}

# A private connection for :func:`check_statement` outside a worker (json_serialize_sql needs one).
_PARSER: duckdb.DuckDBPyConnection | None = None
_PARSER_LOCK = threading.Lock()


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


def _setting(value: float | None, name: str, default: float, kind: type) -> Any:
    """A limit from the argument, else the environment variable ``name``, else the default."""
    if value is None:
        return kind(_env_number(name, default, kind))
    if value <= 0:
        msg = f"{name.removeprefix('LANGSWARM_SQL_').lower()} must be positive, got {value}"
        raise QueryError(msg)
    return kind(value)


def check_statement(query: str) -> str:
    """Parse ``query`` with DuckDB and return its one statement type, or raise QueryError saying why not.

    The same check :meth:`GuardedSQL.run` applies, run here in this process (without a time limit):
    for tools and tests; the guard itself checks inside its worker, under the time limit.
    """
    global _PARSER
    with _PARSER_LOCK:
        if _PARSER is None:
            _PARSER = duckdb.connect(":memory:")
        return checked_sql(query, _PARSER)[0]


def checked_sql(query: str, con: duckdb.DuckDBPyConnection) -> tuple[str, str]:
    """``(statement type, SQL to run)`` for an allowed query, else QueryError saying why not.

    ``con`` parses (``json_serialize_sql``); nothing is run on it. The SQL to run is ``query`` itself
    for a SELECT; for EXPLAIN it is rebuilt by the guard around the checked SELECT, so what DuckDB
    runs is exactly what was checked.
    """
    if not query or not query.strip():
        msg = "the query is empty; write a SELECT over spans, logs, metrics, profiles or alerts"
        raise QueryError(msg)
    kind = _one_statement(query)
    if kind == "SELECT":
        _check_select(query, con)
        return kind, query
    if kind == "EXPLAIN":
        return kind, _checked_explain(query, con)
    why = _WHY.get(kind, f"{kind} statements change the database")
    msg = f"{kind} refused: {why}. The SQL page runs read-only SELECT (or EXPLAIN) queries only."
    raise QueryError(msg)


def _one_statement(query: str) -> str:
    try:
        statements = duckdb.extract_statements(query)
        kinds = [statement.type.name for statement in statements]
    except duckdb.Error as exc:
        msg = f"the query does not parse: {exc}"
        raise QueryError(msg) from None
    except ValueError as exc:  # a statement type the Python client has no name for, e.g. UPDATE EXTENSIONS
        msg = f"refused: the statement's type is not one the guard knows ({exc}); write a SELECT"
        raise QueryError(msg) from None
    if len(kinds) != 1:
        msg = f"one statement at a time, got {len(kinds)}; remove the extra statements (split at ';')"
        raise QueryError(msg)
    return kinds[0]


def _check_select(query: str, con: duckdb.DuckDBPyConnection) -> None:
    """Refuse a SELECT whose parse tree calls a table function off the allow-list or a denied function."""
    try:
        tree = json.loads(con.execute("SELECT json_serialize_sql(?)", [query]).fetchall()[0][0])
    except (duckdb.OutOfMemoryException, duckdb.InterruptException):
        raise  # the limits' own messages, not a parse error
    except duckdb.Error as exc:
        msg = f"the query does not parse: {exc}"
        raise QueryError(msg) from None
    if tree.get("error"):
        msg = (
            f"refused: {tree.get('error_message')}; the SQL page runs read-only SELECT (or EXPLAIN) "
            f"queries only"
        )
        raise QueryError(msg)
    _walk(tree["statements"])


def _walk(node: Any) -> None:
    if isinstance(node, list):
        for item in node:
            _walk(item)
        return
    if not isinstance(node, dict):
        return
    kind = node.get("type")
    if kind == "TABLE_FUNCTION":
        function = node.get("function") or {}
        name = str(function.get("function_name", "")).lower()
        if function.get("class") != "FUNCTION" or name not in TABLE_FUNCTIONS:
            msg = (
                f"table function {name or '?'}() refused: the SQL page allows the store's views and the "
                f"table functions {', '.join(sorted(TABLE_FUNCTIONS))}"
            )
            raise QueryError(msg)
    elif node.get("class") in ("FUNCTION", "WINDOW"):
        name = str(node.get("function_name", "")).lower()
        if name in DENIED_FUNCTIONS:
            msg = f"function {name}() refused: {DENIED_FUNCTIONS[name]}"
            raise QueryError(msg)
    elif kind == "BASE_TABLE":
        name = str(node.get("table_name", "")).lower()
        if name in DENIED_RELATIONS:
            msg = f"{name} refused: {DENIED_RELATIONS[name]}"
            raise QueryError(msg)
    for value in node.values():
        if isinstance(value, (dict, list)):
            _walk(value)


def _checked_explain(query: str, con: duckdb.DuckDBPyConnection) -> str:
    """Split ``EXPLAIN [ANALYZE | (options)] <statement>``, check that the statement is one allowed
    SELECT, and return an EXPLAIN the guard wrote around it (EXPLAIN ANALYZE runs the SELECT, which a
    plain SELECT may do anyway; any other wrapped statement would run too, so it is refused)."""
    tokens = [(start, kind) for start, kind in duckdb.tokenize(query) if kind != duckdb.token_type.comment]
    ends = [start for start, _ in tokens[1:]] + [len(query)]

    def text(i: int) -> str:
        return query[tokens[i][0] : ends[i]].strip()

    analyze, fmt, i = False, "text", 1
    if len(tokens) > 1 and text(1).lower() in ("analyze", "analyse"):
        analyze, i = True, 2
    elif len(tokens) > 1 and text(1) == "(" and not _is_select(query[tokens[1][0] :]):
        analyze, fmt, i = _explain_options(tokens, text)
    inner = query[tokens[i][0] :] if i < len(tokens) else ""
    if not inner.strip() or _one_statement_or_none(inner) != "SELECT":
        msg = (
            "EXPLAIN refused: it may only wrap one SELECT (EXPLAIN ANALYZE runs the statement it wraps); "
            "write EXPLAIN SELECT ... or EXPLAIN ANALYZE SELECT ..."
        )
        raise QueryError(msg)
    _check_select(inner, con)
    options = f"ANALYZE, FORMAT {fmt}" if analyze else f"FORMAT {fmt}"
    return f"EXPLAIN ({options}) {inner}"


def _explain_options(tokens: list[tuple[int, Any]], text: Any) -> tuple[bool, str, int]:
    """Read ``( ANALYZE [, FORMAT name] )``; return (analyze, format, index of the wrapped statement)."""
    analyze, fmt, i = False, "text", 2
    while i < len(tokens) and text(i) != ")":
        word = text(i).lower()
        if word in ("analyze", "analyse"):
            analyze, i = True, i + 1
        elif word == "format" and i + 1 < len(tokens) and text(i + 1).strip("'\"").lower() in EXPLAIN_FORMATS:
            fmt, i = text(i + 1).strip("'\"").lower(), i + 2
        elif word == ",":
            i += 1
        else:
            msg = (
                f"EXPLAIN option {text(i)!r} refused: the SQL page accepts EXPLAIN, EXPLAIN ANALYZE and "
                f"EXPLAIN (ANALYZE, FORMAT {'|'.join(sorted(EXPLAIN_FORMATS))})"
            )
            raise QueryError(msg)
    return analyze, fmt, i + 1


def _is_select(text: str) -> bool:
    return _one_statement_or_none(text) == "SELECT"


def _one_statement_or_none(text: str) -> str | None:
    try:
        kinds = [statement.type.name for statement in duckdb.extract_statements(text)]
    except (duckdb.Error, ValueError):
        return None
    return kinds[0] if len(kinds) == 1 else None


class GuardedSQL:
    """Runs user SQL in a sandboxed worker process over the same store files as ``store``.

    One query at a time per guard (the app shares one guard per store between its users); a caller
    waits at most about one time limit for the query before it, then gets a "busy" refusal.
    """

    def __init__(
        self,
        store: Store,
        *,
        max_rows: int | None = None,
        timeout_s: float | None = None,
        memory_mb: int | None = None,
        threads: int | None = None,
        max_query_bytes: int | None = None,
        max_result_mb: int | None = None,
    ) -> None:
        if not isinstance(store.root, Path):
            msg = (
                f"the SQL page runs in a sandbox that reads local files only, and {store.root} is on object "
                "storage: query it from a notebook (open_store(...).sql) or DuckDB with s3fs (docs/deployment.md)"
            )
            raise QueryError(msg)
        self.root = store.root.resolve()
        self.max_rows = _setting(max_rows, MAX_ROWS_ENV, MAX_ROWS, int)
        self.timeout_s = _setting(timeout_s, TIMEOUT_ENV, TIMEOUT_S, float)
        self.memory_mb = _setting(memory_mb, MEMORY_MB_ENV, MEMORY_MB, int)
        self.threads = _setting(threads, THREADS_ENV, THREADS, int)
        self.max_query_bytes = _setting(max_query_bytes, MAX_QUERY_BYTES_ENV, MAX_QUERY_BYTES, int)
        self.max_result_mb = _setting(max_result_mb, MAX_RESULT_MB_ENV, MAX_RESULT_MB, int)
        #: How the worker is kept from writing files ("landlock ..." or why the kernel could not help).
        self.write_protection = ""
        self._lock = threading.Lock()
        self._worker: _Worker | None = None
        self._starts = 0
        self._closed = False
        self._ensure_worker()

    @property
    def restarts(self) -> int:
        """Times the worker was rebuilt (time limit, out of memory, catalog changed, refresh)."""
        return self._starts - 1

    def _ensure_worker(self) -> _Worker:
        if self._worker is None or not self._worker.alive():
            self._drop_worker()
            config = {
                "root": str(self.root),
                "timeout_s": self.timeout_s,
                "memory_mb": self.memory_mb,
                "threads": self.threads,
            }
            self._starts += 1
            self._worker = _Worker(config)
            self.write_protection = self._worker.ready["write_protection"]
        return self._worker

    def _drop_worker(self) -> None:
        if self._worker is not None:
            self._worker.stop()
            self._worker = None

    def refresh(self) -> None:
        """Rebuild the worker: views for tables that gained files, and a fresh connection and catalog."""
        with self._lock:
            self._drop_worker()
            self._ensure_worker()

    def run(self, query: str, *, max_rows: int | None = None) -> GuardedResult:
        """Check and run one read-only statement; at most ``max_rows`` rows, stopped after ``timeout_s``."""
        cap = self.max_rows if max_rows is None else max_rows
        if cap <= 0:
            msg = f"max_rows must be positive, got {cap}"
            raise QueryError(msg)
        size = len(query.encode("utf-8"))
        if size > self.max_query_bytes:
            msg = (
                f"the query text is {size:,} bytes, over the {self.max_query_bytes:,}-byte limit; shorten it "
                f"(a long IN list or OR chain is better written as a join or a range) or raise "
                f"{MAX_QUERY_BYTES_ENV}"
            )
            raise QueryError(msg)
        if not self._lock.acquire(timeout=self.timeout_s + GRACE_S + BUSY_WAIT_S):
            msg = (
                f"the guarded SQL connection is busy with another query (each runs at most "
                f"{self.timeout_s:g} s); try again in a moment"
            )
            raise QueryError(msg)
        try:
            if self._closed:
                msg = "this guarded SQL runner is closed"
                raise QueryError(msg)
            return self._run_locked(self._ensure_worker(), query, cap)
        finally:
            self._lock.release()

    def _run_locked(self, worker: _Worker, query: str, cap: int) -> GuardedResult:
        # The store's shared read lock: a concurrent `ingest compact` swaps files only between queries.
        with read_lock(self.root):
            started = time.perf_counter()
            try:
                header, payload = worker.request(
                    {"sql": query, "max_rows": cap, "max_result_bytes": self.max_result_mb << 20},
                    deadline=started + self.timeout_s + GRACE_S,
                )
            except _Deadline:
                self._drop_worker()  # rebuilt by the next query
                msg = (
                    f"{self._too_long()}. It was still running {GRACE_S:g} s later (DuckDB cannot interrupt "
                    f"its parser, its planner or some functions), so the SQL worker was restarted"
                )
                raise QueryError(msg) from None
            except _WorkerDied as exc:
                self._drop_worker()
                msg = (
                    f"the query stopped the SQL worker ({exc}), most likely by using more than the "
                    f"{self.memory_mb:,} MB limit; the worker was restarted. Narrow the query (WHERE, LIMIT, "
                    f"fewer columns) or raise {MEMORY_MB_ENV}"
                )
                raise QueryError(msg) from None
            seconds = time.perf_counter() - started
        if not header["ok"]:
            if header.get("restart"):
                self._drop_worker()
            raise QueryError(self._message(header))
        table = pa.ipc.open_stream(payload).read_all()
        return GuardedResult(
            frame=table.to_pandas(),
            arrow=table,
            truncated=bool(header["truncated"]),
            max_rows=cap,
            seconds=seconds,
        )

    def _too_long(self) -> str:
        return (
            f"the query ran longer than the {self.timeout_s:g} s limit and was stopped; narrow it "
            f"(WHERE on start_time/timestamp, LIMIT) or raise {TIMEOUT_ENV}"
        )

    def _message(self, header: dict[str, Any]) -> str:
        kind, detail = header["kind"], header["message"]
        if kind == "refused":
            return detail
        if kind == "timeout":
            return self._too_long()
        if kind == "memory":
            detail = detail.splitlines()[
                0
            ]  # DuckDB's advice after it (SET memory_limit ...) cannot apply here
            return (
                f"the query needs more than the {self.memory_mb:,} MB memory limit ({detail}); narrow it "
                f"(WHERE, LIMIT, fewer columns) or raise {MEMORY_MB_ENV}"
            )
        if kind == "result":
            return (
                f"the result is larger than the {self.max_result_mb:,} MB limit ({detail}); select fewer or "
                f"shorter columns, aggregate, add a LIMIT, or raise {MAX_RESULT_MB_ENV}"
            )
        if kind == "permission":
            return (
                f"refused: {detail}. Only the store's views (spans, logs, metrics, profiles, alerts) and "
                f"files under the store directory can be read; nothing can be written"
            )
        if kind == "catalog":
            return (
                f"refused: the query changed the guarded connection's catalog ({detail}); nothing it "
                f"changed was kept: the connection was rebuilt. The SQL page runs read-only queries only"
            )
        return f"the query failed: {detail}"

    def close(self) -> None:
        """Stop the worker process."""
        with self._lock:
            self._closed = True
            self._drop_worker()

    def __enter__(self) -> GuardedSQL:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Deadline(Exception):
    """The worker did not answer before the deadline."""


class _WorkerDied(Exception):
    """The worker's pipe closed: it exited or was killed (the message says how)."""


class _Worker:
    """One ``python -m explorer.sql_worker`` process and its length-prefixed pipe protocol."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, *WORKER_ARGS],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=config["root"],
            env={**os.environ, **WORKER_ENV, "PYTHONPATH": _import_path()},
            close_fds=True,
        )
        # The process is ended when the guard is garbage collected or the interpreter exits.
        self._finalizer = weakref.finalize(self, _kill, self.proc)
        try:
            header, _ = self.request(config, deadline=time.perf_counter() + START_TIMEOUT_S)
        except (_Deadline, _WorkerDied) as exc:
            self.stop()
            msg = f"the guarded SQL worker did not start ({exc}); see the messages above on standard error"
            raise QueryError(msg) from None
        if not header["ok"]:
            self.stop()
            msg = f"the guarded SQL worker did not start: {header['message']}"
            raise QueryError(msg)
        self.ready = header

    def alive(self) -> bool:
        return self.proc.poll() is None

    def request(self, message: dict[str, Any], *, deadline: float) -> tuple[dict[str, Any], bytes]:
        """Send one request; return the header and the payload (Arrow IPC bytes, possibly empty)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            _write_frame(self.proc.stdin, json.dumps(message).encode("utf-8"))
        except (BrokenPipeError, OSError):
            raise _WorkerDied(self._how_it_ended()) from None
        header = json.loads(self._read_frame(deadline))
        payload = self._read_frame(deadline) if header.get("ok") and header.get("payload") else b""
        return header, payload

    def _read_frame(self, deadline: float) -> bytes:
        size = struct.unpack(">Q", self._read_exact(8, deadline))[0]
        return self._read_exact(size, deadline)

    def _read_exact(self, size: int, deadline: float) -> bytes:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        chunks, left = [], size
        while left:
            remaining = deadline - time.perf_counter()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                raise _Deadline
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                raise _WorkerDied(self._how_it_ended())
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def _how_it_ended(self) -> str:
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return "it closed its pipe"
        if code < 0:
            return f"killed by signal {signal.Signals(-code).name}"
        return f"exit status {code}"

    def stop(self) -> None:
        """Kill the process (it holds nothing worth a graceful shutdown) and reap it."""
        self._finalizer()


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    for pipe in (proc.stdin, proc.stdout):
        if pipe is not None:
            pipe.close()


def _write_frame(pipe: BinaryIO, data: bytes) -> None:
    pipe.write(struct.pack(">Q", len(data)) + data)
    pipe.flush()


def _import_path() -> str:
    """PYTHONPATH for the worker: this checkout first, so it imports the same ``explorer`` as the app."""
    here = str(Path(__file__).resolve().parent.parent)
    rest = os.environ.get("PYTHONPATH", "")
    return here + (os.pathsep + rest if rest else "")


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
