"""Alerts: firing/resolved windows by severity over the metric and its threshold, the traces and logs of an
alert's window, and what typed thresholds would have fired over the stored metrics."""

from datetime import timedelta

import pandas as pd
import streamlit as st

from explorer import app_state, figures, queries
from explorer.errors import ExplorerError

st.title("Alerts")
store = app_state.require_store()
f = app_state.filters()

events = app_state.query(queries.alert_events, service=f.service, **f.window())
first, last = app_state.query(queries.time_bounds)
windows = queries.alert_windows(events, until=f.end or last)

if events.empty:
    st.caption(
        "No alerts in this window. The `alerts` table is written by `AlertManager` (ingest); "
        "use “What would have fired” below to try thresholds over the stored metrics."
    )
else:
    severities = sorted(windows["severity"].dropna().unique())
    chosen = st.multiselect("Severity", severities, default=severities, key="alert_sev")
    shown = windows[windows["severity"].isin(chosen)].reset_index(drop=True)
    labels = {
        i: f"{r.title} · {r.severity} · {pd.Timestamp(r.start):%H:%M:%S}"
        + ("" if r.resolved else " (firing)")
        for i, r in shown.iterrows()
    }
    pick = (
        st.selectbox("Alert", list(labels), format_func=lambda k: labels.get(k, ""), key="alert_pick")
        if labels
        else None
    )
    alert = shown.loc[pick] if pick is not None else None
    metric = alert["metric_name"] if alert is not None and isinstance(alert["metric_name"], str) else None
    series = (
        app_state.query(queries.metric_series, name=metric, service=None, **f.window())
        if metric
        else pd.DataFrame(columns=["timestamp", "series", "value"])
    )
    threshold = float(alert["threshold"]) if alert is not None and pd.notna(alert["threshold"]) else None
    st.plotly_chart(
        figures.alert_timeline(shown, series, threshold=threshold, metric=metric), key="alert_timeline"
    )
    st.dataframe(
        app_state.with_trace_links(shown.drop(columns=["span_id"], errors="ignore")),
        hide_index=True,
        key="alert_table",
        column_config={"open": app_state.TRACE_LINK},
        column_order=[
            "open",
            "start",
            "end",
            "resolved",
            "severity",
            "title",
            "component",
            "metric_name",
            "peak_value",
            "threshold",
            "correlation_id",
        ],
    )
    if alert is not None:
        start = pd.Timestamp(alert["start"]).to_pydatetime() - timedelta(minutes=1)
        end = pd.Timestamp(alert["end"]).to_pydatetime() + timedelta(minutes=1)
        st.subheader(f"In the window of “{alert['title']}” ({start:%H:%M:%S} → {end:%H:%M:%S} UTC, ±1 min)")
        t_col, l_col = st.columns(2)
        traces = app_state.query(
            queries.search_traces, start=start, end=end, service=f.service, order="errors", limit=50
        )
        t_col.markdown(f"**Traces** ({int(traces['matches'].iloc[0]) if not traces.empty else 0:,})")
        t_col.dataframe(
            app_state.with_trace_links(traces),
            hide_index=True,
            key="alert_traces",
            column_config={"open": app_state.TRACE_LINK},
            column_order=["open", "root_name", "duration_ms", "error_count", "start_time"],
        )
        logs = app_state.query(
            queries.search_logs, start=start, end=end, service=f.service, min_level="WARN", limit=200
        )
        l_col.markdown(f"**Warning and error logs** ({len(logs):,})")
        l_col.dataframe(
            app_state.with_trace_links(logs.drop(columns="attributes")),
            hide_index=True,
            key="alert_logs",
            column_config={"open": app_state.TRACE_LINK},
            column_order=["open", "timestamp", "severity_text", "service_name", "body"],
        )

st.subheader("What would have fired")
catalog = app_state.query(queries.metric_catalog)
if catalog.empty:
    st.caption("No metrics in this store.")
    st.stop()


def _p95(name: str) -> float:
    """The metric's p95 over the time range (3 significant digits): a threshold that fires on the worst 5 %,
    where 0 would fire on nearly every point."""
    values = app_state.query(queries.metric_series, name=name, rate=False, **f.window())["value"].dropna()
    return float(f"{values.quantile(0.95):.3g}") if len(values) else 0.0


def _reset_threshold() -> None:
    st.session_state["wf_threshold"] = _p95(st.session_state["wf_metric"])


w1, w2, w3, w4 = st.columns([3, 1, 1, 1])
metric_name = w1.selectbox(
    "Metric", app_state.metric_names(catalog["name"]), key="wf_metric", on_change=_reset_threshold
)
comparison = w2.selectbox("Fires when value is", ["greater", "less", "equal"], key="wf_cmp")
if "wf_threshold" not in st.session_state:
    st.session_state["wf_threshold"] = _p95(metric_name)
threshold_value = w3.number_input(
    "Threshold", format="%g", key="wf_threshold", help="Starts at the metric's p95 over the time range"
)
severity = w4.selectbox("Severity", ["warning", "critical", "error", "info"], key="wf_severity")
try:
    # Integration point: explorer.alert_history replays ingest's AlertManager state machine over stored metrics.
    from explorer.alert_history import alert_history

    fired = app_state.query(
        alert_history,
        (
            {
                "metric_name": metric_name,
                "threshold": float(threshold_value),
                "severity": severity,
                "comparison": comparison,
            },
        ),
        service=None,
        since=f.start,
        until=f.end,
    )
except (ExplorerError, ValueError) as exc:
    st.error(f"Cannot evaluate that threshold: {exc}")
    st.stop()
firing = fired[fired["state"] == "firing"] if not fired.empty else fired
st.markdown(
    f"**{len(firing):,} alert(s) would have fired**, {int((fired['state'] == 'resolved').sum()) if not fired.empty else 0:,} resolved."
)
series = app_state.query(queries.metric_series, name=metric_name, rate=False, **f.window())
st.plotly_chart(
    figures.fired_chart(
        series,
        firing.rename(columns={"current_value": "value"}),
        threshold=float(threshold_value),
        title=f"{metric_name} (stored values)",
    ),
    key="wf_chart",
)
st.dataframe(fired, hide_index=True, key="wf_table")
