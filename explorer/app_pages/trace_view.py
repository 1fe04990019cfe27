"""Trace view: the waterfall is the navigator (click a row to select its span), span detail, logs, OTLP export."""

import functools

import pandas as pd
import streamlit as st

from explorer import app_chat, app_state, figures, queries
from explorer.components import waterfall
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
        r.trace_id: f"{r.root_name} · {figures.format_ms(r.duration_ms)} · {r.span_count} spans · {r.trace_id[:12]}…"
        for r in recent.itertuples()
    }
    choice = st.selectbox(
        "Recent traces", list(labels), format_func=lambda k: labels.get(k, ""), key="recent_trace"
    )
    st.button("Open trace", key="open_recent", on_click=lambda: st.session_state.update(trace_id=choice))
    st.stop()

try:
    tree = app_state.query(queries.trace_tree, trace_id)
except TraceNotFoundError as exc:
    st.warning(f"{exc}. Check the id, or search on the Traces page.")
    st.stop()
trace_id = str(tree["trace_id"].iloc[0])  # a short id (prefix) typed above resolves to the full one

if "_last_search" in st.session_state:
    st.page_link(
        app_state.PAGES["traces"],
        label="← Back to the search",
        query_params=st.session_state["_last_search"],
        icon=":material/arrow_back:",
    )
header = queries.trace_header(tree)
st.markdown(
    f"**{app_state.plain(header['root_name'])}** · {app_state.plain(header['root_service'])} · "
    f"{header['start'].strftime('%Y-%m-%d %H:%M:%S.%f')[:-3]} UTC · **{figures.format_ms(header['duration_ms'])}** · "
    f"{header['spans']:,} spans · "
    + (f":red[**{header['errors']:,} errors**]" if header["errors"] else "no errors")
    + f" · {header['services']} services · depth {header['depth']}"
)
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
                "span",
                "kind",
                "model",
                "input_tokens",
                "output_tokens",
                "cached_input_tokens",
                "total_tokens",
                "cost_usd",
                "ttft_ms",
                "agent_name",
                "tool_name",
                "error_type",
                "nested",
                "convention",
                "span_id",
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
    show_critical = o1.toggle("Mark the critical path", value=True, key="show_critical")
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
        "Collapse subtrees",
        list(parent_labels),
        format_func=lambda k: parent_labels.get(k, ""),
        key="collapsed",
    )

view = queries.collapse_subtrees(tree, collapsed)
view = view[view["depth"] < max_depth]
if only_critical:
    view = view[view["critical"]]
view = view.reset_index(drop=True)
span_ids = view["span_id"].tolist()

# One selection for the waterfall, the table, the dropdown and the URL: st.session_state["span_pick"].
# Clicks on the chart or the table land in callbacks that set it before anything is drawn; the URL's
# &span_id= is read when it changes (a deep link) and written back at the end of every run.
app_state.sync_span_pick(span_ids)
picked = st.session_state["span_pick"]

logs = app_state.query(queries.trace_logs, trace_id)
marks = queries.trace_marks(view, logs)
waterfall(
    figures.waterfall_data(view, marks=marks, selected=picked, show_critical=show_critical),
    key="waterfall",
    on_pick=app_state.pick_from_waterfall,
)
st.caption(
    "Click a row to select its span. Colour = service, ✕ = error, black line = critical path, "
    "◆ = span event, ▼ = log record; scroll for more rows, drag across the bars to zoom into a time range, "
    "double-click to zoom out."
)

left, right = st.columns([3, 2], gap="medium")
with left:
    # A window of TABLE_ROWS rows around the selection: the waterfall reaches every span, and a 10,000-row
    # table cost the browser more than the chart. Clicking the chart moves the window.
    first, last = app_state.table_window(span_ids.index(picked), len(view))
    shown = view.iloc[first:last]
    table = pd.DataFrame(
        {
            "span": [
                "\u2002" * min(int(d), 30) + str(n)
                for d, n in zip(shown["depth"], shown["name"], strict=True)
            ],
            "service": shown["service_name"],
            "start_ms": shown["offset_ms"],
            "duration": [figures.format_ms(v) for v in shown["duration_ms"]],
            "status": shown["status_code"],
            "critical": shown["critical"],
            "hidden": shown["hidden"],
            "span_id": shown["span_id"],
        }
    )
    st.dataframe(
        table,
        hide_index=True,
        # Keyed by the selection, so a pick made on the chart or in the dropdown re-ticks the right row.
        key=f"span_table_{picked}",
        on_select=functools.partial(app_state.pick_from_table, f"span_table_{picked}", first),
        selection_mode="single-row",
        selection_default={"selection": {"rows": [span_ids.index(picked) - first], "columns": []}},
        height=min(35 * (len(table) + 1) + 3, 420),
        row_height=28,
        column_config={
            "start_ms": st.column_config.NumberColumn("start ms", format="%.3f"),
            "hidden": st.column_config.NumberColumn("hidden", help="descendants hidden by collapsing"),
            "span_id": st.column_config.TextColumn("span id"),
        },
    )
    if last - first < len(view):
        st.caption(
            f"Rows {first + 1:,}–{last:,} of {len(view):,}, around the selected span; click the waterfall to move."
        )
with right:
    span_labels = {
        s: f"{'· ' * int(d)}{n} [{sv}] {figures.format_ms(ms)}"
        for s, n, d, sv, ms in zip(
            view["span_id"],
            view["name"],
            view["depth"],
            view["service_name"],
            view["duration_ms"],
            strict=True,
        )
    }
    st.selectbox(
        "Span",
        app_state.span_options(span_ids, picked),
        key="span_pick",
        format_func=lambda k: span_labels.get(k, ""),
    )
    detail = queries.span_detail(tree, picked)
    span = detail.span
    st.markdown(
        f"**{app_state.plain(span['name'])}** · {app_state.plain(span['service_name'])} · {span.get('kind')} · "
        f"{figures.format_ms(span['duration_ns'] / 1e6)} · status **{span['status_code']}**"
    )
    if isinstance(span.get("status_message"), str) and span["status_message"]:
        st.text(f"Status message: {span['status_message']}")
    app_chat.span_panel(trace_id, picked, detail)
    tabs = st.tabs(["Attributes", "Events", "Exception", "Links", "Resource", "Profile"])
    with tabs[0]:
        if detail.attributes:
            st.dataframe(
                queries.kv_table(detail.attributes),
                hide_index=True,
                key="attrs",
                column_config=app_state.KV_COLUMNS,
            )
        else:
            st.caption("No attributes.")
    with tabs[1]:
        if detail.event_attributes.empty:
            st.caption("No events.")
        else:
            st.dataframe(
                detail.event_attributes,
                hide_index=True,
                key="events",
                column_config={
                    "event": st.column_config.NumberColumn("#", width="small"),
                    "offset_ms": st.column_config.NumberColumn("at ms", format="%.3f"),
                },
            )
    with tabs[2]:
        if detail.exceptions:
            for exception in detail.exceptions:
                st.text(f"{exception['type']}: {exception['message']}")
                st.code(exception["stacktrace"] or "(no stack trace recorded)", language="python")
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
        st.dataframe(
            queries.kv_table(detail.resource),
            hide_index=True,
            key="resource",
            column_config=app_state.KV_COLUMNS,
        )
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
st.query_params["span_id"] = picked
st.session_state["_span_synced"] = picked

app_chat.trace_graph(trace_id)
st.subheader("Timeline: spans and logs")
timeline = queries.trace_timeline(tree, logs)
st.dataframe(
    timeline.head(app_state.TABLE_ROWS * 2),
    hide_index=True,
    key="timeline",
    height=min(36 * (len(timeline) + 1) + 3, 360),
    column_config={
        "offset_ms": st.column_config.NumberColumn("at ms", format="%.3f"),
        "status": st.column_config.TextColumn("span status"),
        "level": st.column_config.TextColumn("log level"),
    },
)
st.caption(
    f"{len(logs):,} log records in this trace."
    + (
        f" The first {app_state.TABLE_ROWS * 2:,} of {len(timeline):,} entries are listed; "
        "the SQL page (or `trace_timeline` in a notebook) gives them all."
        if len(timeline) > app_state.TABLE_ROWS * 2
        else ""
    )
)

st.download_button(
    "Download as OTLP JSON",
    lambda: trace_to_otlp_json(tree.drop(columns=["depth", "orphan"], errors="ignore")).encode("utf-8"),
    file_name=f"trace-{trace_id}.otlp.json",
    mime="application/json",
    key="otlp_download",
    on_click="ignore",
)
st.caption("OTLP/JSON (ExportTraceServiceRequest): importable by Jaeger, Tempo, Phoenix or any OTLP reader.")
