"""The one guarded path for SQL typed by a user (the SQL page, ``python -m explorer sql --guarded``).

Layered like datasette's, and as DuckDB's own security guide advises for untrusted SQL ("a separate
process with minimal privileges", "strict query timeouts at the application level"):

1. a **size cap** on the query text, checked before DuckDB sees it;
2. an **allow-list checked after DuckDB has parsed the statement**: one ``SELECT`` (or ``EXPLAIN``
   [``ANALYZE``] of one ``SELECT``, rebuilt by the guard around the checked ``SELECT``); inside it, table
   functions from an allow-list only and no function or view that reveals DuckDB's settings;
3. a **worker process** (:mod:`explorer.sql_guard.worker`) owning the DuckDB connection: sandboxed by DuckDB
   (external access off, only the store readable, configuration locked), unable to create, write or
   remove any file (Linux Landlock, where the kernel has it), with per-query memory, thread and time
   limits; its catalog is compared after every query and the worker rebuilt if anything changed;
4. a **time limit that covers parsing and planning**: DuckDB stops the query at the limit, and a
   worker still busy :data:`GRACE_S` later (DuckDB cannot interrupt its parser or planner) is killed
   and restarted, so no query holds the guard for much longer than the limit;
5. a **row cap** and a **result size cap** (the rows go on into the app's process, shared by every user).

Modules: ``statements`` (the parse-tree check, 1–2), ``guarded`` (:class:`GuardedSQL`, 3–5, the
parent side), ``worker`` (the sandboxed process), ``examples`` (the SQL page's examples).

Every refusal raises :class:`~explorer.errors.QueryError` saying why and what to change.
"""

from __future__ import annotations

from explorer.sql_guard.examples import EXAMPLES
from explorer.sql_guard.guarded import (
    GRACE_S,
    MAX_QUERY_BYTES,
    MAX_RESULT_MB,
    MAX_ROWS,
    MEMORY_MB,
    THREADS,
    TIMEOUT_S,
    GuardedResult,
    GuardedSQL,
)
from explorer.sql_guard.statements import check_statement, checked_sql

__all__ = [
    "EXAMPLES",
    "GRACE_S",
    "MAX_QUERY_BYTES",
    "MAX_RESULT_MB",
    "MAX_ROWS",
    "MEMORY_MB",
    "THREADS",
    "TIMEOUT_S",
    "GuardedResult",
    "GuardedSQL",
    "check_statement",
    "checked_sql",
]
