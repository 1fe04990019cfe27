"""The statement check of the guarded path: one ``SELECT`` (or ``EXPLAIN`` of one), checked on DuckDB's parse
tree against allow-lists of table functions, with settings readers denied. Pure checks, no connection state."""

from __future__ import annotations

import json
import threading
from typing import Any

import duckdb

from explorer.errors import QueryError

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
    "ATTACH": "ATTACH opens another database; guarded SQL only reads the store's views",
    "DETACH": "DETACH changes the attached databases; guarded SQL only reads the store's views",
    "LOAD": "INSTALL/LOAD bring in DuckDB extensions, which are disabled on the guarded connection",
    "EXTENSION": "INSTALL/LOAD of DuckDB extensions is disabled on the guarded connection",
    "SET": "SET/RESET/USE change settings; the guarded connection's configuration is locked",
    "VARIABLE_SET": "SET changes settings; the guarded connection's configuration is locked",
    "PRAGMA": "PRAGMA changes or inspects settings or imports a database; guarded SQL reads the views only",
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


_PARSER_LOCK = threading.Lock()
# A private connection for :func:`check_statement` outside a worker (json_serialize_sql needs one).
_PARSER: duckdb.DuckDBPyConnection | None = None


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
    msg = f"{kind} refused: {why}. Guarded SQL runs read-only SELECT (or EXPLAIN) queries only."
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
            f"refused: {tree.get('error_message')}; guarded SQL runs read-only SELECT (or EXPLAIN) "
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
                f"table function {name or '?'}() refused: guarded SQL allows the store's views and the "
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
                f"EXPLAIN option {text(i)!r} refused: guarded SQL accepts EXPLAIN, EXPLAIN ANALYZE and "
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
