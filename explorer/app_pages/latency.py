"""Latency: histograms per operation (log axis), percentiles, percentiles over time, comparisons, outliers."""

from datetime import timedelta

import pandas as pd
import streamlit as st

from explorer import app_state, figures, queries

st.title("Latency")
store = app_state.require_store()
f = app_state.filters()

operations = app_state.query(queries.list_operations, service=f.service, **f.window())
names = list(dict.fromkeys(operations["operation"].dropna().astype(str)))
c1, c2, c3, c4 = st.columns([3, 2, 1, 1])
chosen = c1.multiselect("Operations", names, default=names[:3], key="lat_ops", placeholder="All operations")
mode = c2.segmented_control(
    "Compare", ["operations", "versions", "windows"], default="operations", key="lat_mode"
)
log_x = c3.toggle("Log axis", value=True, key="lat_log")
bins = c4.number_input("Bins", min_value=5, max_value=200, value=40, key="lat_bins")
common = {"service": f.service, "operation": chosen or None}

if mode == "versions":
    versions = app_state.query(queries.service_versions, service=f.service)
    options = sorted(set(versions["version"].dropna().astype(str)))
    picked = st.multiselect(
        "service.version values",
        options,
        default=options if len(options) <= 4 else options[-2:],
        key="lat_versions",
    )
    left_out = [v for v in options if v not in picked]
    if left_out:
        st.caption(f"Not compared (pick them above to add): {', '.join(left_out)}.")
    if versions["version"].isna().any():
        st.caption("Spans whose resource has no `service.version` are not part of this comparison.")
    hist = app_state.query(
        queries.latency_histogram,
        group_by="version",
        versions=picked or None,
        bins=int(bins),
        log_scale=log_x,
        **common,
        **f.window(),
    )
    table = app_state.query(
        queries.latency_percentiles, group_by="version", versions=picked or None, **common, **f.window()
    )
    st.plotly_chart(
        figures.duration_histogram(hist, log_x=log_x, side_by_side=True, title="Duration by service.version"),
        key="lat_hist",
    )
elif mode == "windows":
    first, last = app_state.query(queries.time_bounds)
    lo = f.start or first
    hi = f.end or last
    if lo is None or hi is None:
        st.info("No data to compare.")
        st.stop()
    middle = lo + (hi - lo) / 2
    # Range sliders to the second (a tenth of a second on short data): Streamlit's datetime pickers stop at
    # the minute, and the sample store's incident lasts 25 s.
    lo_n, hi_n = pd.Timestamp(lo).tz_convert(None), pd.Timestamp(hi).tz_convert(None) + timedelta(seconds=1)
    step = timedelta(seconds=1) if (hi_n - lo_n).total_seconds() >= 20 else timedelta(milliseconds=100)
    lo_n, hi_n = lo_n.floor(step).to_pydatetime(), hi_n.ceil(step).to_pydatetime()
    mid_n = pd.Timestamp(lo_n + (hi_n - lo_n) / 2).floor(step).to_pydatetime()
    slider = {
        "min_value": lo_n,
        "max_value": hi_n,
        "step": step,
        "format": "HH:mm:ss" if step >= timedelta(seconds=1) else "HH:mm:ss.S",
    }
    w1, w2 = st.columns(2)
    a_from, a_to = w1.slider("Window A (UTC)", value=(lo_n, mid_n), key="win_a", **slider)
    b_from, b_to = w2.slider("Window B (UTC)", value=(mid_n, hi_n), key="win_b", **slider)
    a_from, a_to, b_from, b_to = (app_state.as_utc(v) for v in (a_from, a_to, b_from, b_to))
    st.caption(
        f"Data from {lo:%Y-%m-%d %H:%M:%S} to {hi:%H:%M:%S} UTC ({(hi - lo).total_seconds():,.1f} s); "
        "the windows default to its two halves."
    )
    hists, tables = [], []
    for label, start, end in (("A", a_from, a_to), ("B", b_from, b_to)):
        part = app_state.query(
            queries.latency_histogram,
            group_by="all",
            bins=int(bins),
            log_scale=log_x,
            start=start,
            end=end,
            **common,
        )
        if part.empty:
            st.info(
                f"Window {label} ({start:%H:%M:%S} → {end:%H:%M:%S}) holds no spans for these operations: "
                f"move it inside {lo:%H:%M:%S} → {hi:%H:%M:%S}, or pick other operations."
            )
        hists.append(part.assign(group=f"window {label}"))
        pct = app_state.query(
            queries.latency_percentiles, group_by="operation_kind", start=start, end=end, **common
        )
        tables.append(pct.assign(window=label))
    hist = pd.concat(hists, ignore_index=True)
    table = pd.concat(tables, ignore_index=True)
    st.plotly_chart(
        figures.duration_histogram(hist, log_x=log_x, side_by_side=True, title="Window A vs window B"),
        key="lat_hist",
    )
else:
    hist = app_state.query(
        queries.latency_histogram,
        group_by="operation_kind",
        bins=int(bins),
        log_scale=log_x,
        **common,
        **f.window(),
    )
    table = app_state.query(queries.latency_percentiles, group_by="operation_kind", **common, **f.window())
    st.plotly_chart(
        figures.duration_histogram(
            hist, log_x=log_x, side_by_side=len(set(hist["group"])) <= 4, title="Span duration per operation"
        ),
        key="lat_hist",
    )

st.subheader("Percentiles")
st.dataframe(
    table,
    hide_index=True,
    key="lat_table",
    column_config={
        c: st.column_config.NumberColumn(c.replace("_ms", " ms"), format="%.3f")
        for c in ("mean_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms")
    },
)

over_time = app_state.query(queries.percentiles_over_time, **common, **f.window())
st.plotly_chart(figures.percentile_lines(over_time, title="p50 / p95 / p99 over time"), key="lat_time")

st.subheader("Outliers")
outliers = app_state.query(queries.latency_outliers, limit=25, **common, **f.window())
st.dataframe(
    app_state.with_trace_links(outliers).assign(
        duration=[figures.format_ms(v) for v in outliers["duration_ms"]]
    ),
    hide_index=True,
    key="lat_outliers",
    column_order=[
        "open",
        "operation",
        "service_name",
        "duration",
        "start_time",
        "status_code",
        "version",
        "trace_id",
    ],
    column_config={
        "open": app_state.TRACE_LINK,
        "duration_ms": st.column_config.NumberColumn("duration ms", format="%.3f"),
    },
)
