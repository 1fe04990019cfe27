"""The call graph between services, agents, tools and models, from parent/child spans.

Each span is a node of one kind: ``model`` (an LLM call: its requested model), ``tool`` (a tool execution:
its tool name), ``agent`` (an agent invocation: its agent name) or ``service`` (any other span: its
service). A parent/child pair of spans is an edge between their nodes, counted with the child's errors
and latency. The parent may sit in another service (a remote parent: the client span of the caller),
which is what makes service-to-service edges. Edges inside one node, into a plain span of the parent's
own service, and out of a model are left out: they are a service's internals, not calls between parts.
"""

from __future__ import annotations

import pandas as pd

from explorer.queries._sql import Services, TimeLike, _frame, _limit, _Where
from explorer.queries.messages import AGENT_SPAN_SQL, LLM_SPAN_SQL, TOOL_SPAN_SQL
from explorer.store import Store

NODE_KINDS = ("service", "agent", "tool", "model")

_KIND_SQL = f"""CASE WHEN {LLM_SPAN_SQL} THEN 'model' WHEN {TOOL_SPAN_SQL} THEN 'tool'
    WHEN {AGENT_SPAN_SQL} THEN 'agent' ELSE 'service' END"""
_NAME_SQL = """CASE kind
    WHEN 'model' THEN coalesce(attributes['gen_ai.request.model'],
                               json_extract_string(attributes['llm.invocation_parameters'], '$.model'),
                               attributes['llm.model_name'], attributes['gen_ai.response.model'], name)
    WHEN 'tool' THEN coalesce(attributes['gen_ai.tool.name'], attributes['tool.name'],
                              attributes['traceloop.entity.name'], name)
    WHEN 'agent' THEN coalesce(attributes['gen_ai.agent.name'], attributes['traceloop.entity.name'], name)
    ELSE service_name END"""


def service_graph(
    store: Store,
    *,
    service: Services = None,
    start: TimeLike = None,
    end: TimeLike = None,
    trace_id: str | None = None,
    limit: int = 500,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(nodes, edges) over the spans in the window (or of one trace).

    nodes: ``node`` (``kind:name``), ``kind``, ``name``, ``services``, ``spans``, ``errors``, ``p95_ms``.
    edges: ``source``, ``target`` (node ids), ``calls``, ``errors``, ``p95_ms`` (of the child spans) —
    the ``limit`` busiest edges. ``service`` keeps the edges touching those services' spans.
    """
    where = _Where()
    where.time("start_time", start, end)
    if trace_id:
        where.add("trace_id = $trace_id", trace_id=trace_id.strip().lower())
    touch = _Where()
    touch.services(service, "c.service_name")
    touch_p = _Where()
    touch_p.services(service, "p.service_name")
    service_clause = f"({touch.sql()} OR {touch_p.sql()})" if touch.clauses else "TRUE"
    params = {**where.params, **touch.params, "limit": _limit(limit, maximum=100_000)}
    base = f"""
        k AS (
            SELECT trace_id, span_id, parent_span_id, service_name, duration_ns, status_code, name, attributes,
                   {_KIND_SQL} AS kind
            FROM spans WHERE {where.sql()}
        ),
        n AS MATERIALIZED (
            SELECT trace_id, span_id, parent_span_id, service_name, duration_ns, status_code, kind,
                   {_NAME_SQL} AS node_name
            FROM k
        )"""
    # One statement, so the spans (and their attribute maps) are read once for both frames.
    both = _frame(
        store,
        f"""WITH {base},
            e AS (
                SELECT p.kind || ':' || p.node_name AS source, c.kind || ':' || c.node_name AS target,
                       count(*) AS calls, count_if(c.status_code = 'ERROR')::BIGINT AS errors,
                       quantile_cont(c.duration_ns, 0.95) / 1e6 AS p95_ms
                FROM n AS c JOIN n AS p ON c.trace_id = p.trace_id AND c.parent_span_id = p.span_id
                WHERE (c.kind <> p.kind OR c.node_name <> p.node_name) AND p.kind <> 'model'
                  AND NOT (c.kind = 'service' AND c.service_name = p.service_name)
                  AND {service_clause}
                GROUP BY ALL ORDER BY calls DESC, source, target LIMIT $limit
            ),
            v AS (
                SELECT kind || ':' || node_name AS node, kind, node_name AS name,
                       string_agg(DISTINCT service_name, ', ' ORDER BY service_name) AS services,
                       count(*) AS spans, count_if(status_code = 'ERROR')::BIGINT AS errors,
                       quantile_cont(duration_ns, 0.95) / 1e6 AS p95_ms
                FROM n GROUP BY ALL
            )
            SELECT 'edge' AS part, source, target, calls, errors, p95_ms,
                   NULL AS node, NULL AS kind, NULL AS name, NULL AS services, NULL::BIGINT AS spans FROM e
            UNION ALL
            SELECT 'node', NULL, NULL, NULL, errors, p95_ms, node, kind, name, services, spans FROM v""",
        params,
    )
    edges = (
        both[both["part"] == "edge"][["source", "target", "calls", "errors", "p95_ms"]]
        .astype({"calls": "int64", "errors": "int64"})
        .sort_values(["calls", "source", "target"], ascending=[False, True, True], kind="stable")
        .reset_index(drop=True)
    )
    nodes = (
        both[both["part"] == "node"][["node", "kind", "name", "services", "spans", "errors", "p95_ms"]]
        .astype({"spans": "int64", "errors": "int64"})
        .sort_values(["kind", "name"], kind="stable")
        .reset_index(drop=True)
    )
    if touch.clauses:
        used = set(edges["source"]) | set(edges["target"])
        nodes = nodes[nodes["node"].isin(used)].reset_index(drop=True)
    return nodes, edges
