"""The "which spans are bad?" selection shared by the why-slow queries: one operation's spans in a
window, split into a selection (slower than a threshold or a percentile, status ERROR, a time window,
or a checked SQL predicate) and its baseline (the operation's other spans in the window)."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import pandas as pd

from explorer.errors import QueryError
from explorer.queries._sql import Services, TimeLike, _frame, _ts, _Where
from explorer.sql_guard.statements import DENIED_FUNCTIONS
from explorer.store import Store

#: Columns of ``spans`` a predicate may name.
PREDICATE_COLUMNS = frozenset(
    {
        "trace_id",
        "span_id",
        "parent_span_id",
        "trace_state",
        "name",
        "kind",
        "service_name",
        "start_time",
        "end_time",
        "duration_ns",
        "status_code",
        "status_message",
        "attributes",
        "resource_attributes",
        "events",
        "links",
        "scope_name",
        "scope_version",
        "date",
    }
)
#: Expression node classes a predicate may contain: no subquery, no window, no table, no parameter.
_EXPRESSION_CLASSES = frozenset(
    {
        "COLUMN_REF",
        "CONSTANT",
        "COMPARISON",
        "CONJUNCTION",
        "OPERATOR",
        "FUNCTION",
        "CAST",
        "CASE",
        "BETWEEN",
        "LAMBDA",
        "COLLATE",
    }
)
_DENIED = {**DENIED_FUNCTIONS, "getenv": "it reads the process environment, which is not part of the store"}
_PREFIX = "SELECT * FROM spans WHERE "
_PARSER: duckdb.DuckDBPyConnection | None = None
_PARSER_LOCK = threading.Lock()


def check_predicate(predicate: str) -> str:
    """A boolean SQL expression over ``spans`` columns, re-written by DuckDB from its parse tree.

    The text is parsed as ``SELECT * FROM spans WHERE (<predicate>)``; the tree must be exactly that
    (one statement, no CTE, no GROUP BY, LIMIT or other clause) and the WHERE expression may hold only
    columns of ``spans``, constants, operators and scalar functions (no subquery, so no other table
    or file). The SQL that runs is DuckDB's own rendering of the checked tree (``json_deserialize_sql``),
    not the user's text, so a comment or an unbalanced parenthesis cannot change the query around it.
    """
    text = (predicate or "").strip()
    if not text:
        msg = "the predicate is empty; write a condition over spans, e.g. attributes['user.tier'] = 'free'"
        raise QueryError(msg)
    global _PARSER
    with _PARSER_LOCK:
        if _PARSER is None:
            _PARSER = duckdb.connect(":memory:")
        try:
            wrapped = f"{_PREFIX}({text}\n)"  # the newline ends a trailing -- comment before the parenthesis
            tree = json.loads(_PARSER.execute("SELECT json_serialize_sql(?)", [wrapped]).fetchall()[0][0])
        except duckdb.Error as exc:
            msg = f"the predicate {text!r} does not parse: {exc}"
            raise QueryError(msg) from None
        if tree.get("error"):
            msg = f"the predicate {text!r} does not parse: {tree.get('error_message')}"
            raise QueryError(msg)
        statements = tree.get("statements") or []
        node = statements[0].get("node", {}) if len(statements) == 1 else {}
        source = node.get("from_table") or {}
        plain = (
            node.get("type") == "SELECT_NODE"
            and not node.get("modifiers")
            and not (node.get("cte_map") or {}).get("map")
            and not node.get("group_expressions")
            and not node.get("group_sets")
            and node.get("having") is None
            and node.get("qualify") is None
            and node.get("sample") is None
            and [item.get("class") for item in node.get("select_list", [])] == ["STAR"]
            and source.get("type") == "BASE_TABLE"
            and source.get("table_name") == "spans"
            and not source.get("alias")
            and node.get("where_clause") is not None
        )
        if not plain:
            msg = (
                f"the predicate {text!r} is not a single condition; write one boolean expression over "
                f"spans columns (no ';', no SELECT, no clause after it)"
            )
            raise QueryError(msg)
        _check_expression(node["where_clause"], text)
        rendered = _PARSER.execute("SELECT json_deserialize_sql(?)", [json.dumps(tree)]).fetchall()[0][0]
    if not rendered.startswith(_PREFIX):
        msg = f"the predicate {text!r} could not be checked; write a plain condition over spans columns"
        raise QueryError(msg)
    return f"({rendered[len(_PREFIX) :]})"


def _check_expression(node: Any, text: str) -> None:
    if isinstance(node, list):
        for item in node:
            _check_expression(item, text)
        return
    if not isinstance(node, dict):
        return
    kind = node.get("class")
    if kind is not None:
        if kind not in _EXPRESSION_CLASSES:
            what = "a subquery" if kind == "SUBQUERY" else kind.lower().replace("_", " ")
            msg = (
                f"the predicate {text!r} holds {what}; only columns of spans, constants, operators and "
                f"scalar functions are allowed"
            )
            raise QueryError(msg)
        if kind == "COLUMN_REF":
            names = node.get("column_names") or []
            column = str(names[0]).lower() if names else ""
            if len(names) != 1 or column not in PREDICATE_COLUMNS:
                msg = (
                    f"the predicate {text!r} names {'.'.join(map(str, names))!r}; use the spans columns "
                    f"{', '.join(sorted(PREDICATE_COLUMNS))}"
                )
                raise QueryError(msg)
        if kind == "FUNCTION":
            name = str(node.get("function_name", "")).lower()
            if name in _DENIED:
                msg = f"function {name}() refused in a predicate: {_DENIED[name]}"
                raise QueryError(msg)
    for value in node.values():
        if isinstance(value, (dict, list)):
            _check_expression(value, text)


@dataclass(frozen=True)
class Selection:
    """One operation's spans (``operation``: a span name or a list of them; optional ``service``; window
    ``start``–``end``) split by a condition; every given condition must hold (AND). A span is selected when it is slower than
    ``slower_than_ms`` or than the operation's ``percentile`` (0–1, e.g. 0.95), has status ERROR
    (``errors``), starts in ``selection_start``–``selection_end``, and/or matches ``predicate``."""

    operation: str | Sequence[str]
    service: Services = None
    start: TimeLike = None
    end: TimeLike = None
    slower_than_ms: float | None = None
    percentile: float | None = None
    errors: bool = False
    selection_start: TimeLike = None
    selection_end: TimeLike = None
    predicate: str | None = None

    def describe(self, threshold_ms: float | None) -> str:
        """The condition in words, for titles and messages."""
        parts = []
        if threshold_ms is not None:
            above = f" (p{self.percentile * 100:g})" if self.percentile is not None else ""
            parts.append(f"slower than {threshold_ms:,.1f} ms{above}")
        if self.errors:
            parts.append("status ERROR")
        if self.selection_start is not None or self.selection_end is not None:
            parts.append(f"starting in {self.selection_start or '…'} – {self.selection_end or '…'}")
        if self.predicate:
            parts.append(f"matching {self.predicate}")
        return " and ".join(parts)

    def sql(self, store: Store) -> tuple[str, dict[str, Any], float | None]:
        """``(CTE body, params, threshold_ms)``: a SELECT of the operation's finished spans in the window with
        ``trace_id, span_id, duration_ns, selected``. The percentile threshold is computed here (one scan)."""
        if not self.operation:
            msg = "pick an operation (a span name), e.g. 'POST /v1/chat'"
            raise QueryError(msg)
        if self.percentile is not None and not 0 < float(self.percentile) < 1:
            msg = f"percentile must be between 0 and 1 (0.95 for p95), got {self.percentile!r}"
            raise QueryError(msg)
        if self.slower_than_ms is not None and float(self.slower_than_ms) < 0:
            msg = f"slower_than_ms must be zero or more, got {self.slower_than_ms!r}"
            raise QueryError(msg)
        where = _Where()
        names = [self.operation] if isinstance(self.operation, str) else [str(o) for o in self.operation]
        where.add("list_contains($operations, name) AND duration_ns IS NOT NULL", operations=names)
        where.services(self.service)
        where.time("start_time", self.start, self.end)
        threshold_ms: float | None = None
        if self.slower_than_ms is not None:
            threshold_ms = float(self.slower_than_ms)
        if self.percentile is not None:
            found = _frame(
                store,
                f"SELECT quantile_cont(duration_ns, $pct) AS q FROM spans WHERE {where.sql()}",
                {**where.params, "pct": float(self.percentile)},
            )
            q = found["q"].iloc[0] if not found.empty else None
            q_ms = None if q is None or pd.isna(q) else float(q) / 1e6
            if q_ms is not None:
                threshold_ms = q_ms if threshold_ms is None else max(threshold_ms, q_ms)
        conditions = []
        params = dict(where.params)
        if threshold_ms is not None:
            conditions.append("duration_ns > $threshold_ns")
            params["threshold_ns"] = int(threshold_ms * 1e6)
        elif self.percentile is not None:
            conditions.append("FALSE")  # no spans: no percentile, nothing is selected
        if self.errors:
            conditions.append("status_code = 'ERROR'")
        lo, hi = _ts(self.selection_start, "selection_start"), _ts(self.selection_end, "selection_end")
        if lo is not None:
            conditions.append("start_time >= $sel_lo")
            params["sel_lo"] = lo
        if hi is not None:
            conditions.append("start_time < $sel_hi")
            params["sel_hi"] = hi
        if self.predicate:
            conditions.append(check_predicate(self.predicate))
        if not conditions:
            msg = (
                "give a condition for the selection: slower_than_ms, percentile, errors, a selection "
                "window or a predicate"
            )
            raise QueryError(msg)
        body = (
            f"SELECT trace_id, span_id, duration_ns, coalesce({' AND '.join(conditions)}, FALSE) AS selected "
            f"FROM spans WHERE {where.sql()}"
        )
        return body, params, threshold_ms


def root_traces_sql(
    operation: str, service: Services, start: TimeLike, end: TimeLike
) -> tuple[str, dict[str, Any]]:
    """A SELECT of the traces whose root span (no parent) is ``operation``: ``trace_id, duration_ns``."""
    if not operation:
        msg = "pick a root operation (the name of a trace's first span), e.g. 'POST /v1/chat'"
        raise QueryError(msg)
    where = _Where()
    where.add(
        "parent_span_id IS NULL AND name = $root_operation AND duration_ns IS NOT NULL",
        root_operation=operation,
    )
    where.services(service)
    where.time("start_time", start, end)
    return (
        f"SELECT trace_id, max(duration_ns) AS duration_ns FROM spans WHERE {where.sql()} GROUP BY trace_id",
        where.params,
    )


#: The finished spans of the traces in ``picked`` (which numbers its traces ``t``), with integer nanosecond
#: bounds and integer keys for joins and sorts: ``t`` for the trace, ``sid``/``pid`` hashes of the span and
#: parent ids (64-bit: a collision inside one trace is out of reach). A snapshot of a span taken while it
#: was open has no end time, so only the finished row of each span is kept.
TRACE_SPANS = """SELECT p.t, s.trace_id, s.span_id, s.parent_span_id, hash(s.span_id) AS sid,
           hash(s.parent_span_id) AS pid, s.name, s.service_name,
           s.start_time_unix_nano AS start_ns, s.end_time_unix_nano AS end_ns, s.duration_ns
    FROM spans s JOIN picked p USING (trace_id) WHERE s.end_time IS NOT NULL"""
