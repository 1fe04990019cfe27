"""Traces: search by service, operation, status, whole-trace duration, attribute, correlation id, log text,
text in prompts/responses."""

import streamlit as st

from explorer import app_state, figures, queries
from explorer.errors import QueryError

st.title("Traces")
store = app_state.require_store()
f = app_state.filters()

operations = app_state.query(queries.list_operations, service=f.service, **f.window())
names = sorted(set(operations["operation"].dropna().astype(str)))
services_seen = app_state.query(queries.list_services)["service_name"].astype(str).tolist()
c1, c2, c3, c4 = st.columns([2, 2, 1, 1])
service = c1.selectbox(
    "Service",
    ["any", *services_seen],
    key="service",
    bind="query-params",
    help="Of one span of the trace; the sidebar's service filter applies too",
)
service = "" if service == "any" else service
# Bound selectboxes show plain values: the URL carries the shown text (?operation=db.query&status=error).
operation = c2.selectbox("Operation", ["any", *names], key="operation", bind="query-params")
status = c3.selectbox(
    "Status",
    ["any", "error", "ok"],
    key="status",
    bind="query-params",
    help="error: the span matching service/operation/attribute failed (without those: any span failed); "
    "ok: the trace has no error span",
)
has_llm = bool(app_state.query(queries.llm_totals, service=f.service, **f.window())["calls"])
order = c4.selectbox(
    "Order", ["recent", "slowest", "errors", *(["cost", "tokens"] if has_llm else [])], key="order"
)
c5, c6, c7, c8 = st.columns(4)
min_ms = c5.number_input(
    "Min duration (ms)",
    min_value=0.0,
    value=None,
    key="min_ms",
    help="Of the whole trace: first span start to last span end",
)
max_ms = c6.number_input("Max duration (ms)", min_value=0.0, value=None, key="max_ms")
attribute = c7.text_input(
    "Attribute key=value", key="attribute", bind="query-params", placeholder="http.route=/checkout"
)
correlation = c8.text_input("Correlation id", key="correlation_id", bind="query-params")
c9, c12, c10, c11 = st.columns([2, 2, 2, 1])
log_text = c9.text_input("Text in the trace's logs", key="log_text", bind="query-params")
content_text = c12.text_input(
    "Text in prompts / responses",
    key="content_text",
    bind="query-params",
    help="Prompts, answers and tool arguments recorded by any GenAI instrumentation (spans and log events)",
)
trace_prefix = c10.text_input("Trace id (or prefix)", key="trace_prefix")
limit = c11.number_input("Max results", min_value=10, max_value=5000, value=200, step=50, key="limit")
min_cost = min_tokens = None
if has_llm:
    l1, l2, _ = st.columns([1, 1, 2])
    min_cost = l1.number_input("Min LLM cost (USD)", min_value=0.0, value=None, format="%.4f", key="min_cost")
    min_tokens = l2.number_input("Min LLM tokens", min_value=0, value=None, step=1000, key="min_tokens")

services = f.services + ((service.strip(),) if service and service.strip() else ())
search = {
    "service": services or None,
    "operation": None if operation == "any" else operation,
    "status": None if status == "any" else status,
    "min_duration_ms": min_ms,
    "max_duration_ms": max_ms,
    "attribute": attribute or None,
    "correlation_id": correlation or None,
    "log_text": log_text or None,
    "content_text": content_text or None,
    "trace_id": trace_prefix or None,
    "min_cost_usd": min_cost,
    "min_tokens": None if min_tokens is None else int(min_tokens),
    **f.window(),
}
if service and f.services and service.strip() not in f.services:
    st.caption("The service typed here is combined with the sidebar's services (either may match).")
try:
    results = app_state.query(
        queries.search_traces, order=order, limit=int(limit), with_llm=has_llm, **search
    )
    histogram = app_state.query(queries.trace_duration_histogram, **search)
except QueryError as exc:
    st.error(str(exc))
    st.stop()

matches = int(results["matches"].iloc[0]) if not results.empty else 0
st.markdown(
    f"**{matches:,} matching traces**" + (f" (showing {len(results):,})" if matches > len(results) else "")
)
if results.empty:
    st.caption("No trace matches. Loosen a filter or widen the sidebar's time range.")
else:
    picked = st.plotly_chart(
        figures.trace_scatter(results),
        key="trace_scatter",
        on_select="rerun",
        selection_mode="points",
    )
    table = results.drop(columns=["matches"]).assign(
        open=[app_state.trace_link(t) for t in results["trace_id"]],
        duration=[figures.format_ms(v) for v in results["duration_ms"]],
    )
    chosen = st.dataframe(
        table.style.apply(app_state.error_rows, axis=1),
        hide_index=True,
        key="trace_results",
        on_select="rerun",
        selection_mode="single-row",
        column_order=[
            "root_name",
            "root_service",
            "start_time",
            "duration",
            "span_count",
            "error_count",
            *(["total_tokens", "cost_usd"] if has_llm else []),
            "services",
            "open",
        ],
        column_config={
            "root_name": st.column_config.TextColumn("root operation"),
            "root_service": st.column_config.TextColumn("root service"),
            "open": st.column_config.LinkColumn(
                "new tab", display_text=r"trace_id=([0-9a-f]{8})", width="small"
            ),
            "span_count": st.column_config.NumberColumn("spans"),
            "error_count": st.column_config.NumberColumn("errors"),
            "total_tokens": st.column_config.NumberColumn("LLM tokens"),
            "cost_usd": st.column_config.NumberColumn("LLM cost USD", format="%.4f"),
            "start_time": st.column_config.DatetimeColumn("start (UTC)", format="YYYY-MM-DD HH:mm:ss.SSS"),
        },
    )
    st.caption(
        "Click a row or a point to open its trace here (the filters stay in this page's URL, so Back returns "
        "to them); the last column opens a new tab. Rows with error spans are tinted red."
    )
    target = app_state.picked_trace(picked, chosen, results["trace_id"].tolist())
    if target is not None:
        # Streamlit rewrites this page's history entry on a page switch, so Back would lose the filters:
        # the trace view offers "← Back to the search" with them instead.
        st.session_state["_last_search"] = {k: v for k, v in st.query_params.items() if k != "trace_id"}
        st.switch_page(app_state.PAGES["trace"], query_params={"trace_id": target})
    st.plotly_chart(
        figures.duration_histogram(histogram, log_x=True, title="Whole-trace duration of the matches"),
        key="trace_histogram",
    )
