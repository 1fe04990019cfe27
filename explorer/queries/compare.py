"""Attribute comparison (BubbleUp): which attribute values set a selection of spans apart from the rest."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import pandas as pd

from explorer.errors import QueryError
from explorer.queries._selection import Selection
from explorer.queries._sql import Services, TimeLike, _frame, _limit
from explorer.store import Store

CompareScope = Literal["trace", "span"]
#: Deciles: the bin edges of a numeric attribute, computed over both groups together.
_EDGES = [round(i / 10, 1) for i in range(1, 10)]
_COLUMNS = [
    "rank",
    "key",
    "kind",
    "score",
    "value",
    "selection_count",
    "selection_share",
    "baseline_count",
    "baseline_share",
    "diff",
    "example_trace_id",
]


def compare_attributes(
    store: Store,
    *,
    operation: str | Sequence[str],
    service: Services = None,
    start: TimeLike = None,
    end: TimeLike = None,
    slower_than_ms: float | None = None,
    percentile: float | None = None,
    errors: bool = False,
    selection_start: TimeLike = None,
    selection_end: TimeLike = None,
    predicate: str | None = None,
    scope: CompareScope = "trace",
    values: int = 5,
    limit: int = 50,
    max_categories: int = 20,
) -> pd.DataFrame:
    """Rank attribute keys by how differently their values are spread in the selection and the baseline.

    The selection is ``operation``'s spans in the window meeting every given condition (see
    :class:`~explorer.queries._selection.Selection`); the baseline is its other spans in the window.
    With ``scope="trace"`` a unit is a selected span *with every span of its trace* (so a slow root is
    compared on its children's models, tools and retries); with ``scope="span"`` only the span itself.

    Keys: span attributes, resource attributes (``resource.<key>``), ``service``, ``span.name``,
    ``span.kind``, ``span.status`` and ``model`` (``gen_ai.request.model``, else ``llm.model_name``).
    Measure: for each value, ``diff`` = its share of selection units minus its share of baseline units;
    a key's ``score`` is its largest positive ``diff`` (the value most over-represented in the selection:
    1.0 = in every selected unit and no baseline unit). Each key lists its values by ``|diff|``, so
    under-represented values show too. ``model`` folds ``gen_ai.request.model`` and ``llm.model_name``.
    Numeric keys with more than ``max_categories`` distinct values are compared by
    decile bins of both groups together (``kind="numeric"``); text keys with more than
    ``max_categories`` values that are mostly unique per unit (ids, timestamps) are listed last with
    ``kind="high-cardinality"`` and not ranked. Returns the top ``values`` values of the ``limit`` best
    keys; ``attrs`` holds ``selection``/``baseline`` unit counts, ``threshold_ms`` and ``message``
    (why the frame is empty, if it is).
    """
    if scope not in ("trace", "span"):
        msg = f"scope must be 'trace' or 'span', got {scope!r}"
        raise QueryError(msg)
    selection = Selection(
        operation=operation,
        service=service,
        start=start,
        end=end,
        slower_than_ms=slower_than_ms,
        percentile=percentile,
        errors=errors,
        selection_start=selection_start,
        selection_end=selection_end,
        predicate=predicate,
    )
    body, params, threshold_ms = selection.sql(store)
    sizes = _frame(
        store,
        f"SELECT coalesce(count_if(selected), 0) AS sel, coalesce(count_if(NOT selected), 0) AS base "
        f"FROM ({body})",
        params,
    )
    n_sel, n_base = int(sizes["sel"].iloc[0]), int(sizes["base"].iloc[0])
    described = selection.describe(threshold_ms)
    empty = pd.DataFrame({c: pd.Series(dtype=object) for c in _COLUMNS})
    empty.attrs.update(selection=n_sel, baseline=n_base, threshold_ms=threshold_ms, condition=described)
    if n_sel == 0:
        empty.attrs["message"] = f"no {operation!r} span in the window is {described}: nothing to compare"
        return empty
    if n_base == 0:
        empty.attrs["message"] = (
            f"every {operation!r} span in the window is {described}: there is no baseline to compare "
            f"with; widen the window or tighten the condition"
        )
        return empty
    if scope == "trace":
        source = f"""ops AS MATERIALIZED ({body}),
            src AS (SELECT hash(o.trace_id, o.span_id) AS unit, o.selected, s.trace_id, s.name, s.kind,
                           s.service_name, s.status_code, s.attributes, s.resource_attributes
                    FROM spans s JOIN ops o USING (trace_id)
                    WHERE s.trace_id IN (SELECT trace_id FROM ops))"""
    else:
        body = body.replace(
            "SELECT trace_id, span_id, duration_ns,",
            "SELECT trace_id, span_id, duration_ns, name, kind, service_name, status_code, attributes, "
            "resource_attributes,",
            1,
        )
        source = f"""ops AS ({body}),
            src AS (SELECT hash(trace_id, span_id) AS unit, selected, trace_id, name, kind, service_name,
                           status_code, attributes, resource_attributes FROM ops)"""
    status = "" if (scope == "span" and errors) else ", {'key': 'span.status', 'value': status_code}"
    sql = f"""WITH {source},
        entries AS (
            SELECT unit, selected, trace_id, unnest(list_concat(
                list_filter(map_entries(attributes),
                            lambda e: e.key NOT IN ('gen_ai.request.model', 'llm.model_name')),
                list_transform(
                    list_filter(map_entries(resource_attributes), lambda e: e.key <> 'service.name'),
                    lambda e: {{'key': 'resource.' || e.key, 'value': e.value}}
                ),
                [{{'key': 'service', 'value': service_name}}, {{'key': 'span.name', 'value': name}},
                 {{'key': 'span.kind', 'value': kind}} {status},
                 {{'key': 'model', 'value': coalesce(attributes['gen_ai.request.model'],
                                                    attributes['llm.model_name'])}}]
            )) AS e FROM src
        ),
        pairs AS MATERIALIZED (
            SELECT DISTINCT unit, selected, trace_id, e.key AS key, e.value AS value
            FROM entries WHERE e.value IS NOT NULL
        ),
        kstats AS (
            SELECT key, count(DISTINCT value) AS n_values, count(DISTINCT unit) AS n_units,
                   bool_and(TRY_CAST(value AS DOUBLE) IS NOT NULL) AS all_numeric
            FROM pairs GROUP BY key
        ),
        kinds AS (
            SELECT key, n_values, n_units,
                   CASE WHEN n_values <= $max_categories THEN 'categorical'
                        WHEN all_numeric THEN 'numeric'
                        WHEN n_values > 0.5 * n_units THEN 'high-cardinality'
                        ELSE 'categorical' END AS kind
            FROM kstats
        ),
        edges AS (
            SELECT key, list_sort(list_distinct(quantile_disc(TRY_CAST(value AS DOUBLE), {_EDGES}))) AS e
            FROM pairs WHERE key IN (SELECT key FROM kinds WHERE kind = 'numeric') GROUP BY key
        ),
        binned AS (
            SELECT DISTINCT unit, selected, trace_id, key,
                   CASE WHEN k.kind = 'numeric' THEN
                       CASE WHEN b.i = 0 THEN '< ' || printf('%g', b.e[1])
                            WHEN b.i = len(b.e) THEN '≥ ' || printf('%g', b.e[len(b.e)])
                            ELSE printf('%g', b.e[b.i]) || ' – ' || printf('%g', b.e[b.i + 1]) END
                   ELSE value END AS value,
                   coalesce(b.i, 0) AS bin
            FROM pairs p JOIN kinds k USING (key)
            LEFT JOIN LATERAL (
                SELECT ed.e, len(list_filter(ed.e, lambda x: x <= TRY_CAST(p.value AS DOUBLE))) AS i
                FROM edges ed WHERE ed.key = p.key
            ) b ON TRUE
            WHERE k.kind <> 'high-cardinality'
        ),
        counts AS (
            SELECT key, value, min(bin) AS bin, count_if(selected) AS selection_count,
                   count_if(NOT selected) AS baseline_count,
                   min(trace_id) FILTER (WHERE selected) AS example_trace_id
            FROM binned GROUP BY key, value
        ),
        shares AS (
            SELECT *, selection_count / $n_sel AS selection_share, baseline_count / $n_base AS baseline_share,
                   selection_count / $n_sel - baseline_count / $n_base AS diff
            FROM counts
        ),
        scored AS (
            SELECT *, greatest(max(diff) OVER (PARTITION BY key), 0) AS score,
                   sum(abs(diff)) OVER (PARTITION BY key) AS spread,
                   row_number() OVER (PARTITION BY key ORDER BY abs(diff) DESC, value) AS nth
            FROM shares
        ),
        ranked AS (
            SELECT *, dense_rank() OVER (ORDER BY score DESC, spread DESC, key) AS rank FROM scored
        )
        SELECT r.rank, r.key, k.kind, r.score, r.value, r.selection_count, r.selection_share,
               r.baseline_count, r.baseline_share, r.diff, r.example_trace_id, abs(r.diff) AS _order
        FROM ranked r JOIN kinds k USING (key)
        WHERE r.nth <= $values AND r.rank <= $limit
        UNION ALL
        SELECT NULL, key, kind, NULL, '(' || format('{{:,}}', n_values) || ' distinct values)', NULL, NULL,
               NULL, NULL, NULL, NULL, NULL
        FROM kinds WHERE kind = 'high-cardinality'
        ORDER BY rank NULLS LAST, _order DESC, value, key"""
    frame = _frame(
        store,
        sql,
        {
            **params,
            "n_sel": float(n_sel),
            "n_base": float(n_base),
            "values": _limit(values, "values", 1000),
            "limit": _limit(limit, "limit", 10_000),
            "max_categories": _limit(max_categories, "max_categories", 100_000),
        },
    ).drop(columns="_order")
    frame.attrs.update(
        selection=n_sel, baseline=n_base, threshold_ms=threshold_ms, condition=described, message=""
    )
    return frame
