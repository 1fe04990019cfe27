"""Trace view: waterfall at true offsets, critical path, collapsible subtrees, span detail, logs, OTLP export."""

import pandas as pd
import streamlit as st

from explorer import app_chat, app_state, figures, queries
from explorer.errors import TraceNotFoundError
from explorer.otlp_export import trace_to_otlp_json

st.title("Trace view")
store = app_state.require_store()
f = app_state.filters()

trace_id = (
    st.text_input(
        "Trace id",
        key="trace_id",
        bind="query-params",
        placeholder="32 hex digits — or pick a recent trace below",
    )
    .strip()
    .lower()
)
if not trace_id:
    recent = app_state.query(queries.search_traces, service=f.service, limit=50, **f.window())
    if recent.empty:
        st.info("No traces in this store for the chosen time range and services.")
        st.stop()
    labels = {
        r.trace_id: f"{r.root_name} · {r.duration_ms:.2f} ms · {r.span_count} spans · {r.trace_id[:12]}…"
        for r in recent.itertuples()
    }
    choice = st.selectbox("Recent traces", list(labels), format_func=labels.get, key="recent_trace")
    st.button("Open trace", key="open_recent", on_click=lambda: st.session_state.update(trace_id=choice))
    st.stop()

try:
    tree = app_state.query(queries.trace_tree, trace_id)
except TraceNotFoundError as exc:
    st.warning(f"{exc}. Check the id, or search on the Traces page.")
    st.stop()

duration_ms = float((tree["end_ns"].max() - tree["start_ns"].min()) / 1e6)
c1, c2, c3, c4, c5 = st.columns(5)
c1.metric("Spans", f"{len(tree):,}")
c2.metric("Duration", figures.format_ms(duration_ms))
c3.metric("Errors", int((tree["status_code"] == "ERROR").sum()))
c4.metric("Services", tree["service_name"].nunique())
c5.metric("Depth", int(tree["depth"].max()) + 1)
if tree["orphan"].any():
    st.caption(
        f"{int(tree['orphan'].sum())} span(s) have a parent that is not in the store; they are shown as roots."
    )

llm_spans = app_state.query(queries.trace_llm_spans, trace_id)
if not llm_spans.empty:
    llm_total = queries.trace_llm_totals(llm_spans)
    llm_tokens = llm_total["total_tokens"]
    with st.expander(
        f"LLM: {llm_total['calls']} model calls · "
        + ("tokens unknown" if llm_tokens is None else f"{int(llm_tokens):,} tokens")
        + " · "
        + ("cost unknown" if llm_total["cost_usd"] is None else f"${llm_total['cost_usd']:,.4f}")
        + (f" · {llm_total['unknown_usage']} without usage" if llm_total["unknown_usage"] else ""),
        expanded=True,
    ):
        names = tree.set_index("span_id")["name"]
        st.dataframe(
            llm_spans.assign(span=[names.get(s, s) for s in llm_spans["span_id"]]),
            hide_index=True,
            key="llm_spans",
            column_order=[
                "span", "kind", "model", "input_tokens", "output_tokens", "cached_input_tokens",
                "total_tokens", "cost_usd", "ttft_ms", "agent_name", "tool_name", "error_type", "nested",
                "convention", "span_id",
            ],
            column_config={
                "cost_usd": st.column_config.NumberColumn("cost USD", format="%.5f"),
                "ttft_ms": st.column_config.NumberColumn("first token ms", format="%.1f"),
                "nested": st.column_config.CheckboxColumn(
                    "nested", help="wrapped by another model call span (the same call): counted once"
                ),
            },
        )

with st.expander("View options", expanded=False):
    o1, o2, o3 = st.columns(3)
    show_critical = o1.toggle("Outline the critical path", value=True, key="show_critical")
    max_depth = o2.number_input(
        "Max depth",
        min_value=1,
        max_value=int(tree["depth"].max()) + 1,
        value=int(tree["depth"].max()) + 1,
        key="max_depth",
    )
    only_critical = o3.toggle("Only the critical path", value=False, key="only_critical")
    parents = tree[tree["children"] > 0]
    parent_labels = {
        s: f"{'· ' * int(d)}{n} ({c} children) {s[:8]}"
        for s, n, d, c in zip(
            parents["span_id"], parents["name"], parents["depth"], parents["children"], strict=True
        )
    }
    collapsed = st.multiselect(
        "Collapse subtrees", list(parent_labels), format_func=parent_labels.get, key="collapsed"
    )

view = queries.collapse_subtrees(tree, collapsed)
view = view[view["depth"] < max_depth]
if only_critical:
    view = view[view["critical"]]
view = view.reset_index(drop=True)

span_ids = view["span_id"].tolist()
span_labels = {
    s: f"{'· ' * int(d)}{n} [{sv}] {figures.format_ms(ms)}"
    for s, n, d, sv, ms in zip(
        view["span_id"], view["name"], view["depth"], view["service_name"], view["duration_ms"], strict=True
    )
}
wanted = st.query_params.get("span_id")
if wanted in span_labels and "span_pick" not in st.session_state:
    st.session_state["span_pick"] = wanted

st.plotly_chart(
    figures.waterfall(view, selected=st.session_state.get("span_pick"), show_critical=show_critical),
    key="waterfall",
    config={"scrollZoom": True},
)
st.caption(
    "Bars sit at their true start offset and width (ns precision); drag to pan, scroll to zoom. "
    "Outlined bars are the critical path; red bars are errors."
)

table = pd.DataFrame(
    {
        "span": [
            "\u2002" * min(int(d), 30) + str(n) for d, n in zip(view["depth"], view["name"], strict=True)
        ],
        "service": view["service_name"],
        "start_ms": view["offset_ms"],
        "duration_ms": view["duration_ms"],
        "status": view["status_code"],
        "critical": view["critical"],
        "hidden": view["hidden"],
        "span_id": view["span_id"],
    }
)
selection = st.dataframe(
    table,
    hide_index=True,
    key="span_table",
    on_select="rerun",
    selection_mode="single-row",
    height=min(36 * (len(table) + 1) + 3, 420),
    column_config={
        "start_ms": st.column_config.NumberColumn("start ms", format="%.3f"),
        "duration_ms": st.column_config.NumberColumn("duration ms", format="%.3f"),
        "hidden": st.column_config.NumberColumn("hidden", help="descendants hidden by collapsing"),
    },
)
rows = selection.selection.rows if selection is not None else []
if rows:
    st.session_state["span_pick"] = span_ids[rows[0]]

st.subheader("Span detail")
if st.session_state.get("span_pick") not in span_labels:
    st.session_state["span_pick"] = span_ids[0]
picked = st.selectbox("Span", span_ids, key="span_pick", format_func=span_labels.get)
detail = queries.span_detail(tree, picked)
span = detail.span
st.markdown(
    f"**{span['name']}** · `{span['service_name']}` · {span.get('kind')} · "
    f"{figures.format_ms(span['duration_ns'] / 1e6)} · status **{span['status_code']}**"
    + (f" — {span['status_message']}" if isinstance(span.get("status_message"), str) else "")
)
app_chat.span_panel(trace_id, picked, detail)
tabs = st.tabs(["Attributes", "Events", "Exception", "Links", "Resource", "Profile"])
with tabs[0]:
    if detail.attributes:
        st.dataframe(
            pd.DataFrame(
                {"key": list(detail.attributes), "value": [str(v)[:2000] for v in detail.attributes.values()]}
            ),
            hide_index=True,
            key="attrs",
        )
        long = {k: v for k, v in detail.attributes.items() if len(str(v)) > 2000}
        if long:
            st.caption(
                f"Values longer than 2,000 characters are cut here: {', '.join(long)} "
                f"({', '.join(f'{len(str(v)):,}' for v in long.values())} chars). The SQL page shows them whole."
            )
    else:
        st.caption("No attributes.")
with tabs[1]:
    if detail.events.empty:
        st.caption("No events.")
    else:
        st.dataframe(detail.events, hide_index=True, key="events")
with tabs[2]:
    if detail.exceptions:
        for exc in detail.exceptions:
            st.markdown(f"**{exc['type']}**: {exc['message']}")
            st.code(exc["stacktrace"] or "(no stack trace recorded)", language="python")
    else:
        st.caption("No exception recorded on this span.")
with tabs[3]:
    if detail.links.empty:
        st.caption("No links.")
    else:
        links = detail.links.assign(
            open=[
                app_state.trace_link(t, s)
                for t, s in zip(detail.links["trace_id"], detail.links["span_id"], strict=True)
            ]
        )
        st.dataframe(links, hide_index=True, key="links", column_config={"open": app_state.TRACE_LINK})
with tabs[4]:
    st.json(detail.resource, expanded=False)
with tabs[5]:
    profile = app_state.query(queries.span_profile, trace_id=trace_id, span_id=picked)
    if profile.empty:
        st.caption("No profile was recorded for this span.")
    else:
        totals = profile[profile["caller"].isna()]
        st.dataframe(
            totals[["function", "file", "line", "calls", "self_time_s", "cumulative_time_s"]].sort_values(
                "self_time_s", ascending=False
            ),
            hide_index=True,
            key="span_profile",
        )
        st.page_link(
            app_state.PAGES["profiles"],
            label="Open in profile hotspots →",
            query_params={"trace_id": trace_id, "span_id": picked},
        )

app_chat.trace_graph(trace_id)
st.subheader("Timeline: spans and logs")
logs = app_state.query(queries.trace_logs, trace_id)
timeline = queries.trace_timeline(tree, logs)
st.dataframe(
    timeline,
    hide_index=True,
    key="timeline",
    height=min(36 * (len(timeline) + 1) + 3, 360),
    column_config={"offset_ms": st.column_config.NumberColumn("at ms", format="%.3f")},
)
st.caption(f"{len(logs):,} log records in this trace.")

st.download_button(
    "Download as OTLP JSON",
    lambda: trace_to_otlp_json(tree.drop(columns=["depth", "orphan"], errors="ignore")).encode("utf-8"),
    file_name=f"trace-{trace_id}.otlp.json",
    mime="application/json",
    key="otlp_download",
    on_click="ignore",
)
st.caption("OTLP/JSON (ExportTraceServiceRequest): importable by Jaeger, Tempo, Phoenix or any OTLP reader.")
