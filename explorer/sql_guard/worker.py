"""The guarded SQL worker: a process that owns the sandboxed DuckDB connection of one :class:`GuardedSQL`.

Started as ``python -m explorer.sql_guard.worker`` by :mod:`explorer.sql_guard`, in the store directory, and
spoken to over its standard input and output (8-byte length, then the bytes): the first request
configures it, each later one runs a query and gets a JSON header plus the rows as Arrow IPC.

Why a process: DuckDB cannot interrupt its parser, binder or optimizer, and a planning bomb of two
kilobytes grows without bound; only a process can be killed at the time limit and held to a memory
limit as a whole. The process also lets the kernel forbid every file write (Landlock), which DuckDB's
own sandbox cannot: its ``allowed_directories`` are writable as well as readable.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import resource
import struct
import sys
import threading
import time
from pathlib import Path
from typing import Any, BinaryIO

import duckdb
import pyarrow as pa

from explorer.errors import QueryError
from explorer.genai import DEFAULT_PRICES, Prices, install_llm_view, load_prices
from explorer.sql_guard.statements import checked_sql
from explorer.store import create_empty_tables, point_views

#: Memory the process may use beyond DuckDB's own limit: Python, pyarrow, the parser, the result batches.
HEADROOM_MB = 512

#: Catalog and state a query must leave as it found it; compared after every query.
_STATE_QUERIES = (
    "SELECT database_name, schema_name, view_name, sql FROM duckdb_views() WHERE NOT internal",
    "SELECT database_name, schema_name, table_name, sql FROM duckdb_tables()",
    (
        "SELECT database_name, schema_name, function_name, function_type, macro_definition "
        "FROM duckdb_functions() WHERE NOT internal"
    ),
    "SELECT database_name, schema_name, type_name FROM duckdb_types() WHERE NOT internal",
    "SELECT database_name, schema_name FROM duckdb_schemas() WHERE NOT internal",
    "SELECT database_name, schema_name, sequence_name FROM duckdb_sequences()",
    "SELECT database_name, schema_name, index_name FROM duckdb_indexes()",
    "SELECT database_name, path, readonly FROM duckdb_databases()",
    "SELECT name, type FROM duckdb_secrets()",
    "SELECT name, value FROM duckdb_variables()",
    "SELECT name FROM duckdb_prepared_statements()",
    "SELECT name, value FROM duckdb_settings()",
)

# Linux Landlock (include/uapi/linux/landlock.h). Written with ctypes because the three system calls are
# all it takes and the only Python binding on PyPI is a pre-release.
_SYS_CREATE_RULESET, _SYS_RESTRICT_SELF = 444, 446  # the same number on every architecture
_PR_SET_NO_NEW_PRIVS = 38
_FS_WRITES_V1 = (
    (1 << 1)  # WRITE_FILE
    | (1 << 4)  # REMOVE_DIR
    | (1 << 5)  # REMOVE_FILE
    | (1 << 6)  # MAKE_CHAR
    | (1 << 7)  # MAKE_DIR
    | (1 << 8)  # MAKE_REG
    | (1 << 9)  # MAKE_SOCK
    | (1 << 10)  # MAKE_FIFO
    | (1 << 11)  # MAKE_BLOCK
    | (1 << 12)  # MAKE_SYM
)
_FS_REFER, _FS_TRUNCATE = 1 << 13, 1 << 14  # ABI 2, ABI 3
_NET_TCP = (1 << 0) | (1 << 1)  # BIND_TCP, CONNECT_TCP (ABI 4)


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64)]


def forbid_writes() -> str:
    """Forbid this process, for good, to create, write, truncate, rename or remove any file, and to open
    TCP connections; reading is left to DuckDB's sandbox. Returns how, or why the kernel could not.

    Landlock binds the calling thread and the threads it starts later, not threads already running: call
    it before DuckDB starts its thread pool (the guard also starts the worker with BLAS and jemalloc
    threads off, so the process has one thread here).
    """
    if not sys.platform.startswith("linux"):
        return f"not available on {sys.platform}: only DuckDB's sandbox and the statement check apply"
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    abi = libc.syscall(_SYS_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    if abi < 0:
        return _unavailable(os.strerror(ctypes.get_errno()))
    threads = len(os.listdir("/proc/self/task"))
    if threads != 1:
        return _unavailable(f"{threads} threads were running, and Landlock would bind only one")
    fs = _FS_WRITES_V1 | (_FS_REFER if abi >= 2 else 0) | (_FS_TRUNCATE if abi >= 3 else 0)
    attr = _RulesetAttr(fs, _NET_TCP if abi >= 4 else 0)
    size = ctypes.sizeof(attr) if abi >= 4 else ctypes.sizeof(ctypes.c_uint64)
    fd = libc.syscall(_SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if fd < 0:
        return _unavailable(os.strerror(ctypes.get_errno()))
    try:
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            return _unavailable(os.strerror(ctypes.get_errno()))
        if libc.syscall(_SYS_RESTRICT_SELF, ctypes.c_int(fd), ctypes.c_uint32(0)) != 0:
            return _unavailable(os.strerror(ctypes.get_errno()))
    finally:
        os.close(fd)
    return f"Landlock ABI {abi}: the worker can create, write or remove no file" + (
        " and open no TCP connection" if abi >= 4 else ""
    )


def _unavailable(reason: str) -> str:
    return f"Landlock not applied ({reason}): only DuckDB's sandbox and the statement check apply"


def open_sandbox(
    root: Path, *, timeout_s: float, memory_mb: int, threads: int, prices: Prices | None = None
) -> duckdb.DuckDBPyConnection:
    """The guarded connection over the store at ``root`` (the working directory must be ``root``:
    the views read ``spans/**/*.parquet``, so no view definition holds the store's absolute path).
    ``prices`` feeds the ``llm_calls`` view's cost, as in the app's Store (default: the shipped list)."""
    con = duckdb.connect(
        ":memory:",
        config={
            "temp_directory": "",  # no spilling: nothing to write, and no temp directory to read
            "max_temp_directory_size": "0B",
            "memory_limit": f"{memory_mb}MiB",
            "threads": threads,
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "allow_persistent_secrets": False,  # no secret directory to read or write
        },
    )
    # Empty typed tables for tables without files, made before the sandbox closes (they need Arrow scans).
    create_empty_tables(con)
    point_views(con, Path("."), {})
    install_llm_view(con, prices if prices is not None else load_prices([DEFAULT_PRICES]))
    con.execute("SET allowed_directories = ?", [[str(root) + os.sep]])
    con.execute("SET enable_external_access = false")
    con.execute("SET python_enable_replacements = false")
    con.execute("PRAGMA disable_progress_bar")
    con.execute("SET show_behavior = 'table'")  # SHOW <name> describes a table, never a setting
    con.execute(f"SET max_execution_time = {max(1, round(timeout_s * 1000))}")
    con.execute("SET lock_configuration = true")
    return con


def state(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """A digest per catalog listing: what a query must not change."""
    return {
        query.split(" FROM ")[1].split("(")[0]: hashlib.sha256(
            repr(con.execute(query).fetchall()).encode("utf-8")
        ).hexdigest()
        for query in _STATE_QUERIES
    }


class _ResultTooLarge(Exception):
    """The rows read so far already weigh more than the result limit."""


def run(con: duckdb.DuckDBPyConnection, sql: str, max_rows: int, max_bytes: int) -> tuple[pa.Table, bool]:
    """Check ``sql`` and run it; at most ``max_rows`` rows (and whether there were more), refused past
    ``max_bytes`` of Arrow data (the rows go on into the app's process, shared by every user)."""
    _, text = checked_sql(sql, con)
    reader = con.sql(text).to_arrow_reader(min(max_rows + 1, 100_000))
    batches, rows, size = [], 0, 0
    for batch in reader:
        batches.append(batch)
        rows += batch.num_rows
        size += batch.nbytes
        if size > max_bytes:
            raise _ResultTooLarge(f"{size / 2**20:,.0f} MB in the first {rows:,} rows")
        if rows > max_rows:
            break
    table = pa.Table.from_batches(batches, schema=reader.schema)
    return table.slice(0, max_rows), table.num_rows > max_rows


def _classify(exc: BaseException) -> tuple[str, str]:
    text = str(exc)
    if isinstance(exc, duckdb.InterruptException) or "INTERRUPT Error" in text:
        return "timeout", text
    if isinstance(exc, (duckdb.OutOfMemoryException, MemoryError)) or "Out of Memory" in text:
        return "memory", text or type(exc).__name__
    if isinstance(exc, duckdb.PermissionException) or "Permission Error" in text:
        return "permission", text
    return "failed", text


def serve(inp: BinaryIO, out: BinaryIO) -> None:
    """Answer requests until the guard closes the pipe (or the catalog changed)."""
    config = _read(inp)
    if config is None:
        return
    root = Path(config["root"])
    memory_mb = int(config["memory_mb"])
    prices = load_prices(config.get("prices") or [DEFAULT_PRICES])  # read before the sandbox closes
    # The cap counts from what the process has mapped already (the imported libraries reserve ~1 GB of
    # address space they may never touch), so it bounds what queries add: DuckDB's limit plus headroom.
    mapped = _data_size()
    if mapped:  # Linux; elsewhere DuckDB's memory_limit is the only memory limit
        limit = mapped + ((memory_mb + HEADROOM_MB) << 20)
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    protection = forbid_writes()  # before any other thread starts: DuckDB's pool, the watchdog
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    con = open_sandbox(
        root,
        timeout_s=float(config["timeout_s"]),
        memory_mb=memory_mb,
        threads=int(config["threads"]),
        prices=prices,
    )
    baseline = state(con)
    _send(out, {"ok": True, "write_protection": protection})
    while (request := _read(inp)) is not None:
        try:
            table, truncated = run(
                con, request["sql"], int(request["max_rows"]), int(request["max_result_bytes"])
            )
        except QueryError as exc:
            _send(out, {"ok": False, "kind": "refused", "message": str(exc)})
            continue
        except _ResultTooLarge as exc:
            _send(out, {"ok": False, "kind": "result", "message": str(exc)})
            continue
        except (duckdb.Error, pa.ArrowException, MemoryError, OSError) as exc:
            kind, message = _classify(exc)
            changed = _changed(con, baseline)
            if changed:
                kind, message = "catalog", changed
            _send(
                out,
                {"ok": False, "kind": kind, "message": message, "restart": bool(changed) or kind == "memory"},
            )
            if changed:
                return
            continue
        changed = _changed(con, baseline)
        if changed:
            _send(out, {"ok": False, "kind": "catalog", "message": changed, "restart": True})
            return
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        _send(out, {"ok": True, "truncated": truncated, "payload": True}, sink.getvalue().to_pybytes())


def _data_size() -> int:
    """This process's data segment size in bytes (what RLIMIT_DATA counts), 0 where /proc has none."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmData:"):
                    return int(line.split()[1]) << 10
    except OSError:
        pass
    return 0


def _changed(con: duckdb.DuckDBPyConnection, baseline: dict[str, str]) -> str:
    """Which catalog listings differ from the baseline ("" when none)."""
    try:
        now = state(con)
    except duckdb.Error as exc:
        return f"the catalog could not be read back: {exc}"
    return ", ".join(name for name, digest in now.items() if baseline.get(name) != digest)


def _read(inp: BinaryIO) -> dict[str, Any] | None:
    head = inp.read(8)
    if len(head) < 8:
        return None
    return json.loads(inp.read(struct.unpack(">Q", head)[0]))


def _send(out: BinaryIO, header: dict[str, Any], payload: bytes | None = None) -> None:
    data = json.dumps(header).encode("utf-8")
    out.write(struct.pack(">Q", len(data)) + data)
    if payload is not None:
        out.write(struct.pack(">Q", len(payload)) + payload)
    out.flush()


def _exit_with_parent(parent: int) -> None:
    """End this process when the guard's process is gone, even in the middle of a query (the closed pipe
    is only noticed between queries). PR_SET_PDEATHSIG would fire when the *thread* that started the
    worker ends, which in Streamlit is after every script run."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def main() -> None:
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything printed goes to standard error, never into the protocol
    try:
        serve(sys.stdin.buffer, out)
    except Exception as exc:  # tell the guard why the worker could not start or go on, then fail loudly
        _send(
            out, {"ok": False, "kind": "failed", "message": f"{type(exc).__name__}: {exc}", "restart": True}
        )
        raise


if __name__ == "__main__":
    main()
