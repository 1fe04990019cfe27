"""Profile hotspots: top functions by self/cumulative time for an operation or one span, and the call tree."""

from typing import Any

import streamlit as st

from explorer import app_state, figures, queries

st.title("Profile hotspots")
store = app_state.require_store()
f = app_state.filters()

operations = app_state.query(queries.profile_operations, service=f.service, **f.window())
trace_id = st.query_params.get("trace_id")
span_id = st.query_params.get("span_id")
if operations.empty and not span_id:
    st.info(
        "No profiles in this store for the chosen time range and services. Profiles are written by "
        "`PerformanceProfiler` (ingest) into the `profiles` table."
    )
    st.stop()

c1, c2 = st.columns([3, 1])
if span_id:
    c1.markdown(f"Profile of span `{span_id}` in trace `{trace_id}`")
    if c1.button("Show all profiles of an operation instead", key="clear_span"):
        st.query_params.clear()
        st.rerun()
    scope: dict[str, Any] = {"trace_id": trace_id, "span_id": span_id}
else:
    names = operations["operation"].dropna().astype(str).tolist()
    operation = c1.selectbox(
        "Operation",
        names,
        key="prof_op",
        format_func=lambda o: f"{o} ({int(operations.set_index('operation').at[o, 'profiles'])} profiles)",
    )
    scope = {"operation": operation, "service": f.service, **f.window()}
order = (
    c2.segmented_control("Rank by", ["self", "cumulative", "calls"], default="self", key="prof_order")
    or "self"
)

hotspots = app_state.query(queries.profile_hotspots, order=order, **scope)
edges = app_state.query(queries.profile_edges, **scope)
st.plotly_chart(figures.hotspot_bars(hotspots), key="prof_bars")
# Full width: at half width the icicle's labels were ~6 px and its columns cut off.
st.plotly_chart(
    figures.icicle(
        queries.call_tree(hotspots, edges),
        files=dict(zip(hotspots["function"].astype(str), hotspots["file"].astype(str), strict=True)),
    ),
    key="prof_icicle",
)
st.subheader("Functions")
st.dataframe(
    hotspots,
    hide_index=True,
    key="prof_table",
    column_order=[
        "function",
        "file",
        "line",
        "calls",
        "primitive_calls",
        "self_s",
        "cumulative_s",
        "self_share",
        "profiles",
    ],
    column_config={
        "self_share": st.column_config.ProgressColumn(
            "self share", format="percent", min_value=0.0, max_value=1.0
        ),
        "self_s": st.column_config.NumberColumn("self s", format="%.6f"),
        "cumulative_s": st.column_config.NumberColumn("cumulative s", format="%.6f"),
    },
)
with st.expander("Call edges (caller → callee)"):
    st.dataframe(edges, hide_index=True, key="prof_edges")

st.subheader("Profiled spans")
if span_id:
    st.page_link(
        app_state.PAGES["trace"],
        label="Back to the span in the trace view →",
        # trace_id may be absent from the URL; Streamlit writes str(value) of any value (its hint says str).
        query_params={"trace_id": trace_id, "span_id": span_id},  # type: ignore[arg-type]
    )
else:
    spans = app_state.query(
        queries.profile_spans, operation=scope["operation"], service=f.service, **f.window()
    )
    st.dataframe(
        spans.assign(
            open=[
                app_state.trace_link(t, s) for t, s in zip(spans["trace_id"], spans["span_id"], strict=True)
            ]
        ),
        hide_index=True,
        key="prof_spans",
        column_order=["open", "operation", "timestamp", "profiled_s", "trace_id", "span_id"],
        column_config={"open": app_state.TRACE_LINK},
    )
