"""Overview: rate, errors and p95 over time, RED per service and operation, slowest and failing
operations, which alerts fire now and which fired and resolved."""

import pandas as pd
import streamlit as st

from explorer import app_state, figures, queries

st.title("Overview")
store = app_state.require_store()
f = app_state.filters()

red = app_state.query(queries.red_summary, service=f.service, **f.window())
if red.empty:
    st.info(
        "No spans in this store for the chosen time range and services. Widen the time range in the sidebar, "
        "or write telemetry with `ingest` (see docs/explorer.md)."
    )

spans = int(red["spans"].sum()) if not red.empty else 0
errors = int(red["errors"].sum()) if not red.empty else 0
windows = queries.alert_windows(
    app_state.query(queries.alert_events, service=f.service, **f.window()), until=f.end
)
firing_now = int((~windows["resolved"].astype(bool)).sum()) if not windows.empty else 0
resolved = int(windows["resolved"].astype(bool).sum()) if not windows.empty else 0
c1, c2, c3, c4 = st.columns(4)
c1.metric("Spans", f"{spans:,}")
c2.metric("Operations", f"{len(red):,}")
c3.metric("Error rate", f"{(errors / spans * 100 if spans else 0):.2f} %")
c4.metric(
    "Alerts firing now",
    f"{firing_now:,}",
    f"{resolved:,} fired and resolved" if resolved else None,
    delta_color="off",
    help="Firing now: fired and not resolved by the end of the window. Resolved ones are in the Alerts section.",
)

if not red.empty:
    st.plotly_chart(
        figures.red_over_time(app_state.query(queries.red_over_time, service=f.service, **f.window())),
        key="red_over_time",
    )

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
    """Trace-search links (same tab, filters in the URL) and human durations ("1.81 s") as text columns."""
    return frame.assign(
        traces=[
            app_state.page_url("traces", service=s, operation=o, **extra)
            for s, o in zip(frame["service_name"], frame["operation"], strict=True)
        ],
        **{
            f"{column}_text": [figures.format_ms(v) for v in frame[column]]
            for column in ("p50_ms", "p95_ms", "p99_ms", "max_ms")
            if column in frame
        },
    )


COLUMNS = {
    "service_name": st.column_config.TextColumn("service"),
    "operation": st.column_config.TextColumn("operation", width="medium"),
    "spans": st.column_config.NumberColumn("spans", format="localized"),
    "errors": st.column_config.NumberColumn("errors", format="localized"),
    "traces": st.column_config.LinkColumn("traces", display_text="find traces", width="small"),
    "error_rate": st.column_config.ProgressColumn(
        "error rate", format="percent", min_value=0.0, max_value=1.0
    ),
    "rate_per_s": st.column_config.NumberColumn("rate /s", format="%.2f"),
    "p50_ms_text": st.column_config.TextColumn("p50"),
    "p95_ms_text": st.column_config.TextColumn("p95"),
    "p99_ms_text": st.column_config.TextColumn("p99"),
    "max_ms_text": st.column_config.TextColumn("max"),
}
ORDER = [
    "service_name",
    "operation",
    "spans",
    "rate_per_s",
    "errors",
    "error_rate",
    "p50_ms_text",
    "p95_ms_text",
    "p99_ms_text",
    "max_ms_text",
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
        column_order=["service_name", "operation", "spans", "p95_ms_text", "p99_ms_text", "traces"],
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
if windows.empty:
    st.caption("No alerts in this window.")
else:
    st.caption(
        f"**{firing_now} firing now**, {resolved} fired and resolved in this window."
        if firing_now
        else f"Nothing is firing now: all {resolved} alert(s) in this window fired and resolved."
    )
    st.dataframe(
        windows.assign(
            state=["resolved" if r else "firing now" for r in windows["resolved"].astype(bool)],
            lasted=[
                figures.format_ms((e - s).total_seconds() * 1000)
                for s, e in zip(pd.to_datetime(windows["start"]), pd.to_datetime(windows["end"]), strict=True)
            ],
        ),
        hide_index=True,
        key="alert_counts",
        column_order=[
            "state",
            "title",
            "severity",
            "component",
            "start",
            "lasted",
            "peak_value",
            "threshold",
        ],
        column_config={
            "start": st.column_config.DatetimeColumn("fired (UTC)", format="YYYY-MM-DD HH:mm:ss"),
            "peak_value": st.column_config.NumberColumn("peak"),
        },
    )
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
