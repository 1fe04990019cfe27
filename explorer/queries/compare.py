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
    sample: int | None = 10_000,
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
    keys. A group of more than ``sample`` units is compared on a fixed pseudo-random ``sample`` of them
    (counts are then the sample's; ``sample=None`` uses every unit). ``attrs`` holds ``selection``/
    ``baseline`` unit counts (and ``*_sampled``, the units compared), ``threshold_ms`` and ``message``
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
    if n_sel + n_base == 0:
        empty.attrs["message"] = f"no {operation!r} span in the window: nothing to compare"
        return empty
    if n_sel == 0:
        empty.attrs["message"] = f"no {operation!r} span in the window is {described}: nothing to compare"
        return empty
    if n_base == 0:
        empty.attrs["message"] = (
            f"every {operation!r} span in the window is {described}: there is no baseline to compare "
            f"with; widen the window or tighten the condition"
        )
        return empty
    # Past `sample` units a group is represented by a fixed pseudo-random subset (by span id hash): shares
    # stay within about a percent, and the cost stops growing with the store.
    cap = None if sample is None else _limit(sample, "sample", 100_000_000)
    sampled = (
        "QUALIFY row_number() OVER (PARTITION BY selected ORDER BY hash(trace_id, span_id)) <= $sample"
        if cap is not None and max(n_sel, n_base) > cap
        else ""
    )
    used_sel, used_base = (min(n_sel, cap), min(n_base, cap)) if sampled and cap else (n_sel, n_base)
    if scope == "trace":
        source = f"""ops AS MATERIALIZED (SELECT row_number() OVER () AS unit, trace_id, selected
                                  FROM ({body}) {sampled}),
            src AS MATERIALIZED (
                SELECT o.unit, o.selected, s.name, s.kind, s.service_name, s.status_code, s.attributes,
                       s.resource_attributes
                FROM spans s JOIN ops o USING (trace_id))"""
        distinct = "DISTINCT"
    else:
        columns = "name, kind, service_name, status_code, attributes, resource_attributes"
        body = body.replace(
            "SELECT trace_id, span_id, duration_ns,", f"SELECT trace_id, span_id, {columns},", 1
        )
        source = f"""ops AS MATERIALIZED (SELECT row_number() OVER () AS unit, * FROM ({body}) {sampled}),
            src AS (SELECT unit, selected, {columns} FROM ops)"""
        distinct = ""  # a span's keys are unique: no pair repeats
    pseudo = ["service", "span.name", "span.kind", "span.status", "model"]
    pseudo_values = [
        "service_name",
        "name",
        "kind",
        "status_code",
        "coalesce(attributes['gen_ai.request.model'], attributes['llm.model_name'])",
    ]
    if scope == "span" and errors:  # the condition itself: no news
        pseudo, pseudo_values = pseudo[:3] + pseudo[4:], pseudo_values[:3] + pseudo_values[4:]
    sql = f"""WITH {source},
        entries AS (
            SELECT unit, selected, unnest(map_keys(attributes)) AS key, unnest(map_values(attributes)) AS value
            FROM src
            UNION ALL
            SELECT unit, selected, 'resource.' || unnest(map_keys(resource_attributes)),
                   unnest(map_values(resource_attributes))
            FROM src
            UNION ALL
            SELECT unit, selected, unnest({pseudo}), unnest([{", ".join(pseudo_values)}]) FROM src
        ),
        pairs AS MATERIALIZED (
            SELECT {distinct} unit, selected, key, value FROM entries
            WHERE value IS NOT NULL
              AND key NOT IN ('gen_ai.request.model', 'llm.model_name', 'resource.service.name')
        ),
        kv AS MATERIALIZED (
            SELECT key, value, count_if(selected) AS selection_count, count_if(NOT selected) AS baseline_count,
                   min(unit) FILTER (WHERE selected) AS example_unit
            FROM pairs GROUP BY key, value
        ),
        kinds AS MATERIALIZED (
            SELECT key, count(*) AS n_values,
                   CASE WHEN count(*) <= $max_categories THEN 'categorical'
                        WHEN bool_and(TRY_CAST(value AS DOUBLE) IS NOT NULL) THEN 'numeric'
                        WHEN count(*) > 0.5 * sum(selection_count + baseline_count) THEN 'high-cardinality'
                        ELSE 'categorical' END AS kind
            FROM kv GROUP BY key
        ),
        numeric_pairs AS MATERIALIZED (
            SELECT unit, selected, key, TRY_CAST(value AS DOUBLE) AS x
            FROM pairs WHERE key IN (SELECT key FROM kinds WHERE kind = 'numeric')
        ),
        edges AS MATERIALIZED (
            SELECT key, list_sort(list_distinct(quantile_disc(x, {_EDGES}))) AS e FROM numeric_pairs GROUP BY key
        ),
        bins AS (
            SELECT {distinct} n.unit, n.selected, n.key, d.e,
                   len(list_filter(d.e, lambda b: b <= n.x)) AS i
            FROM numeric_pairs n JOIN edges d USING (key)
        ),
        counts AS (
            SELECT key, value, 0 AS bin, selection_count, baseline_count, example_unit
            FROM kv WHERE key IN (SELECT key FROM kinds WHERE kind = 'categorical')
            UNION ALL
            SELECT key,
                   CASE WHEN i = 0 THEN '< ' || printf('%g', any_value(e)[1])
                        WHEN i = len(any_value(e)) THEN '≥ ' || printf('%g', any_value(e)[i])
                        ELSE printf('%g', any_value(e)[i]) || ' – ' || printf('%g', any_value(e)[i + 1]) END,
                   i, count_if(selected), count_if(NOT selected), min(unit) FILTER (WHERE selected)
            FROM bins GROUP BY key, i
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
               r.baseline_count, r.baseline_share, r.diff, o.trace_id AS example_trace_id, abs(r.diff) AS _order
        FROM ranked r JOIN kinds k USING (key) LEFT JOIN ops o ON o.unit = r.example_unit
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
            "n_sel": float(used_sel),
            "n_base": float(used_base),
            **({"sample": cap} if sampled else {}),
            "values": _limit(values, "values", 1000),
            "limit": _limit(limit, "limit", 10_000),
            "max_categories": _limit(max_categories, "max_categories", 100_000),
        },
    ).drop(columns="_order")
    for column in ("rank", "selection_count", "baseline_count"):
        frame[column] = frame[column].astype("Int64")
    frame.attrs.update(
        selection=n_sel,
        baseline=n_base,
        selection_sampled=used_sel,
        baseline_sampled=used_base,
        threshold_ms=threshold_ms,
        condition=described,
        message="",
    )
    return frame
