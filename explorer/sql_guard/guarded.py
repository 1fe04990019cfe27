"""``GuardedSQL``: the guarded path's front — size cap, statement check, then the query in a sandboxed worker
process with time, row and result limits; the worker killed and rebuilt when it overruns or its catalog changed."""

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
from typing import IO, Any

import pandas as pd
import pyarrow as pa

from explorer.errors import QueryError
from explorer.store import Store
from ingest.store.lock import read_lock

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
WORKER_ARGS: tuple[str, ...] = ("-P", "-m", "explorer.sql_guard.worker")


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
                f"guarded SQL runs in a sandbox that reads local files only, and {store.root} is on object "
                "storage: query it from a notebook (open_store(...).sql) or DuckDB with s3fs (docs/deployment.md)"
            )
            raise QueryError(msg)
        self.root = store.root.resolve()
        #: The price files of ``store`` (shipped list first), so ``llm_calls`` costs the same on both paths.
        self.prices_files = [str(Path(f).resolve()) for f in store.prices.files]
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
                "prices": self.prices_files,
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
                f"changed was kept: the connection was rebuilt. Guarded SQL runs read-only queries only"
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
    """One ``python -m explorer.sql_guard.worker`` process and its length-prefixed pipe protocol."""

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


def _write_frame(pipe: IO[bytes], data: bytes) -> None:
    pipe.write(struct.pack(">Q", len(data)) + data)
    pipe.flush()


def _import_path() -> str:
    """PYTHONPATH for the worker: this checkout first, so it imports the same ``explorer`` as the app."""
    here = str(Path(__file__).resolve().parent.parent)
    rest = os.environ.get("PYTHONPATH", "")
    return here + (os.pathsep + rest if rest else "")
