"""Why slow?: what sets an operation's slow or failing spans apart (attributes, structure, critical path)."""

import streamlit as st

from explorer import app_state, figures, queries
from explorer.errors import QueryError

CONDITIONS = ["slower than percentile", "slower than (ms)", "errors", "SQL predicate"]

st.title("Why slow?")
st.caption(
    "Pick an operation and what makes a span bad. **Attributes** ranks every attribute by how much more "
    "often a value occurs in the selection than in the baseline (the operation's other spans); "
    "**Structure** compares the slowest traces with typical ones span path by span path; **Critical path** "
    "shows where the traces' time goes. The page's URL keeps the choices."
)
store = app_state.require_store()
f = app_state.filters()

operations = app_state.query(queries.list_operations, service=f.service, **f.window())
names = sorted(set(operations["operation"].dropna().astype(str)))
if not names:
    st.info("No spans in this store and time range: nothing to explain.")
    st.stop()
c1, c2, c3, c4 = st.columns([3, 2, 2, 3])
operation = c1.selectbox("Operation", names, key="why_operation", bind="query-params")
condition = c2.selectbox("Selection", CONDITIONS, key="why_condition", bind="query-params")
scope = c4.segmented_control(
    "Compare",
    ["whole traces", "the spans only"],
    default="whole traces",
    key="why_scope",
    bind="query-params",
    help="Whole traces: a selected span counts with the attributes of every span in its trace "
    "(models, tools, retries below it)",
)
selection: dict[str, object] = {}
if condition == "slower than percentile":
    pct = c3.number_input(
        "Percentile", min_value=50.0, max_value=99.9, value=95.0, step=1.0, key="why_pct", bind="query-params"
    )
    selection["percentile"] = pct / 100
elif condition == "slower than (ms)":
    selection["slower_than_ms"] = c3.number_input(
        "Slower than (ms)", min_value=0.0, value=1000.0, step=100.0, key="why_ms", bind="query-params"
    )
elif condition == "errors":
    selection["errors"] = True
else:
    selection["predicate"] = c3.text_input(
        "Condition over spans (SQL expression)",
        value="duration_ns > 1e9",
        key="why_predicate",
        bind="query-params",
        help="One boolean expression over the spans columns, e.g. attributes['user.tier'] = 'free'; checked "
        "by DuckDB's parser (no subquery, no other table)",
    )
common = {"operation": operation, "service": f.service, **f.window()}

attributes_tab, structure_tab, critical_tab = st.tabs(["Attributes", "Structure", "Critical path"])

with attributes_tab:
    try:
        compared = app_state.query(
            queries.compare_attributes,
            scope="trace" if scope != "the spans only" else "span",
            **selection,
            **common,
        )
    except QueryError as exc:
        st.error(str(exc))
        compared = None
    if compared is not None:
        threshold_ms = compared.attrs.get("threshold_ms")
        if compared.attrs.get("message"):
            st.info(compared.attrs["message"])
        else:
            st.markdown(
                f"**{compared.attrs['selection']:,}** selected ({compared.attrs['condition']}) vs "
                f"**{compared.attrs['baseline']:,}** baseline `{operation}` spans"
            )
            ranked = compared[compared["rank"].notna()]
            keys = list(dict.fromkeys(ranked["key"]))
            if keys:
                key = st.selectbox("Key to chart", keys, key="why_key")
                st.plotly_chart(figures.attribute_shares(compared, key), key="why_shares")
            # The Traces page filters on span attributes: link the values of real attribute keys only.
            keys = compared["key"]
            pseudo = keys.isin(["service", "model"]) | keys.str.startswith(("resource.", "span."))
            table = compared.assign(
                trace=[app_state.trace_link(t) for t in compared["example_trace_id"]],
                traces=[
                    app_state.page_url("traces", operation=operation, attribute=f"{k}={v}")
                    if kind == "categorical" and not fake
                    else None
                    for k, v, kind, fake in zip(
                        compared["key"], compared["value"], compared["kind"], pseudo, strict=True
                    )
                ],
            )
            st.dataframe(
                table,
                hide_index=True,
                key="why_attributes",
                column_order=[
                    "rank",
                    "key",
                    "value",
                    "selection_share",
                    "baseline_share",
                    "diff",
                    "selection_count",
                    "baseline_count",
                    "kind",
                    "trace",
                    "traces",
                ],
                column_config={
                    "selection_share": st.column_config.ProgressColumn("selection", format="percent"),
                    "baseline_share": st.column_config.ProgressColumn("baseline", format="percent"),
                    "diff": st.column_config.NumberColumn("difference", format="percent"),
                    "trace": app_state.TRACE_LINK,
                    "traces": st.column_config.LinkColumn("matching", display_text="traces →", width="small"),
                },
            )

with structure_tab:
    s1, s2 = st.columns(2)
    n_slow = s1.number_input("Slowest traces", min_value=1, max_value=10_000, value=100, key="why_slow_n")
    n_fast = s2.number_input("Typical traces (at or below the median)", 1, 10_000, 100, key="why_fast_n")
    structure = app_state.query(queries.compare_structure, slow=int(n_slow), fast=int(n_fast), **common)
    if structure.attrs.get("message"):
        st.info(structure.attrs["message"] + " (structure and critical path need a root operation)")
    else:
        st.markdown(
            f"**{structure.attrs['slow']}** slowest vs **{structure.attrs['fast']}** typical `{operation}` "
            f"traces, per span path; per trace means, biggest extra self time first"
        )
        st.dataframe(
            structure.assign(trace=[app_state.trace_link(t) for t in structure["example_trace_id"]]),
            hide_index=True,
            key="why_structure",
            column_order=[
                "name",
                "self_diff_ms",
                "count_diff",
                "slow_count",
                "fast_count",
                "slow_self_ms",
                "fast_self_ms",
                "total_diff_ms",
                "slow_traces_pct",
                "fast_traces_pct",
                "trace",
                "path",
            ],
            column_config={
                "name": st.column_config.TextColumn("span", help="the last span of the path"),
                "path": st.column_config.TextColumn("path from the root", width="large"),
                "trace": app_state.TRACE_LINK,
                **{
                    c: st.column_config.NumberColumn(c.replace("_", " "), format="%.1f")
                    for c in ("self_diff_ms", "slow_self_ms", "fast_self_ms", "total_diff_ms")
                },
                **{
                    c: st.column_config.NumberColumn(c.replace("_", " "), format="%.2f")
                    for c in ("count_diff", "slow_count", "fast_count")
                },
                "slow_traces_pct": st.column_config.NumberColumn("in slow", format="percent"),
                "fast_traces_pct": st.column_config.NumberColumn("in typical", format="percent"),
            },
        )

with critical_tab:
    k1, k2 = st.columns(2)
    by = k1.segmented_control("Group by", ["operation", "path"], default="operation", key="why_by")
    only_selected = k2.toggle(
        "Only traces slower than the threshold",
        value=False,
        key="why_only_slow",
        disabled=compared is None or compared.attrs.get("threshold_ms") is None,
    )
    threshold = compared.attrs.get("threshold_ms") if compared is not None and only_selected else None
    critical = app_state.query(
        queries.critical_path_summary, by=by or "operation", min_duration_ms=threshold, **common
    )
    if critical.attrs.get("message"):
        st.info(critical.attrs["message"])
    else:
        st.markdown(f"Critical path of **{critical.attrs['traces']:,}** `{operation}` traces")
        st.dataframe(
            critical.assign(trace=[app_state.trace_link(t) for t in critical["example_trace_id"]]),
            hide_index=True,
            key="why_critical",
            column_order=[
                c
                for c in (
                    "service_name",
                    "name",
                    "path",
                    "share",
                    "on_path_pct",
                    "mean_ms",
                    "p95_ms",
                    "per_trace_ms",
                    "traces",
                    "trace",
                )
                if c in critical.columns or c == "trace"
            ],
            column_config={
                "share": st.column_config.ProgressColumn("share of critical time", format="percent"),
                "on_path_pct": st.column_config.NumberColumn("on path", format="percent"),
                "trace": app_state.TRACE_LINK,
                "mean_ms": st.column_config.NumberColumn("mean ms", format="%.1f", help="where on the path"),
                "p95_ms": st.column_config.NumberColumn("p95 ms", format="%.1f", help="where on the path"),
                "per_trace_ms": st.column_config.NumberColumn(
                    "ms per trace", format="%.1f", help="over all traces"
                ),
            },
        )
