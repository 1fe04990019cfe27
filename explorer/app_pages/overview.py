"""Overview: RED per service and operation, the slowest and failing operations, alert counts."""

import streamlit as st

from explorer import app_state, figures, queries

st.title("Overview")
store = app_state.require_store()
f = app_state.filters()

red = app_state.query(queries.red_summary, service=f.service, **f.window())
alerts = app_state.query(queries.alert_summary, service=f.service, **f.window())
if red.empty:
    st.info(
        "No spans in this store for the chosen time range and services. Widen the time range in the sidebar, "
        "or write telemetry with `ingest` (see docs/explorer.md)."
    )

spans = int(red["spans"].sum()) if not red.empty else 0
errors = int(red["errors"].sum()) if not red.empty else 0
firing = int(alerts.loc[alerts["state"] == "firing", "alerts"].sum()) if not alerts.empty else 0
c1, c2, c3, c4 = st.columns(4)
c1.metric("Spans", f"{spans:,}")
c2.metric("Operations", f"{len(red):,}")
c3.metric("Error rate", f"{(errors / spans * 100 if spans else 0):.2f} %")
c4.metric("Alerts fired", f"{firing:,}")

llm = app_state.query(queries.llm_totals, service=f.service, **f.window())
if llm["calls"]:
    l1, l2, l3, l4 = st.columns(4)
    l1.metric("LLM calls", f"{llm['calls']:,}", help=f"{llm['models']} models, {llm['traces']:,} traces")
    l2.metric("LLM tokens", "unknown" if llm["total_tokens"] is None else f"{int(llm['total_tokens']):,}")
    l3.metric("LLM cost", "unknown" if llm["cost_usd"] is None else f"${llm['cost_usd']:,.2f}")
    l4.metric("LLM error rate", f"{(llm['error_rate'] or 0) * 100:.2f} %")
    unknown = [
        f"{llm['unknown_usage']:,} calls without usage" if llm["unknown_usage"] else "",
        f"{llm['unpriced_calls']:,} unpriced calls" if llm["unpriced_calls"] else "",
    ]
    if any(unknown):
        st.caption("Not in the token and cost sums: " + ", ".join(u for u in unknown if u) + ".")
    st.page_link(app_state.PAGES["llm"], label="LLM calls: per model, agent, trace →")


def _with_links(frame, **extra):
    return frame.assign(
        traces=[
            app_state.page_url("traces", service=s, operation=o, **extra)
            for s, o in zip(frame["service_name"], frame["operation"], strict=True)
        ]
    )


COLUMNS = {
    "traces": st.column_config.LinkColumn("traces", display_text="open →", width="small"),
    "error_rate": st.column_config.ProgressColumn(
        "error rate", format="percent", min_value=0.0, max_value=1.0
    ),
    "rate_per_s": st.column_config.NumberColumn("rate /s", format="%.3f"),
    "p50_ms": st.column_config.NumberColumn("p50 ms", format="%.3f"),
    "p95_ms": st.column_config.NumberColumn("p95 ms", format="%.3f"),
    "p99_ms": st.column_config.NumberColumn("p99 ms", format="%.3f"),
    "max_ms": st.column_config.NumberColumn("max ms", format="%.3f"),
}
ORDER = [
    "service_name",
    "operation",
    "spans",
    "rate_per_s",
    "errors",
    "error_rate",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "max_ms",
    "traces",
]

st.subheader("Rate, errors, duration per operation")
st.dataframe(_with_links(red), hide_index=True, column_config=COLUMNS, column_order=ORDER, key="red_table")
if not red.empty:
    st.plotly_chart(figures.red_chart(red), key="red_chart")

left, right = st.columns(2)
with left:
    st.subheader("Slowest operations (p95)")
    st.dataframe(
        _with_links(queries.slowest_operations(red)),
        hide_index=True,
        column_config=COLUMNS,
        column_order=["service_name", "operation", "spans", "p95_ms", "p99_ms", "traces"],
        key="slowest",
    )
with right:
    st.subheader("Failing operations")
    failing = _with_links(queries.failing_operations(red), status="error")
    st.dataframe(
        failing,
        hide_index=True,
        column_config=COLUMNS,
        column_order=["service_name", "operation", "errors", "error_rate", "traces"],
        key="failing",
    )
    if failing.empty:
        st.caption("No operation has error spans in this window.")

st.subheader("Alerts")
if alerts.empty:
    st.caption("No alerts in this window.")
else:
    st.dataframe(alerts, hide_index=True, key="alert_counts")
    st.page_link(app_state.PAGES["alerts"], label="Alert timeline →")

health = app_state.query(queries.telemetry_health, service=f.service)
st.subheader("Telemetry health")
if health.empty:
    st.caption("Nothing was dropped, truncated or rejected: every span, log record and metric point arrived.")
else:
    st.caption(
        "What never reached the store (or reached it cut): the SDK's `langswarm.telemetry.*` counters and "
        "input the importers and the receiver rejected (kept in `_rejected/`)."
    )
    st.dataframe(health, hide_index=True, key="telemetry_health")
