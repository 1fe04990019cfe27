"""Metrics: any metric over time by labels; counters as rates; histograms as heatmaps or percentiles."""

import streamlit as st

from explorer import app_state, figures, queries

st.title("Metrics")
store = app_state.require_store()
f = app_state.filters()

catalog = app_state.query(queries.metric_catalog, service=f.service)
if catalog.empty:
    st.info("No metrics in this store for these services.")
    st.stop()
c1, c2 = st.columns([2, 3])
show_sdk = st.toggle("Show the SDK's own metrics (langswarm.telemetry.*)", value=False, key="metric_sdk")
name = c1.selectbox(
    "Metric", app_state.metric_names(catalog["name"], show_sdk=show_sdk), key="metric", bind="query-params"
)
keys = app_state.query(queries.metric_label_keys, name=name)
group_by = c2.multiselect("Split by label", ["service_name", *keys["key"].tolist()], key="metric_group")
row = catalog.set_index("name").loc[name]
st.caption(
    f"type **{row['type']}**, unit `{row['unit'] if isinstance(row['unit'], str) else '–'}`, "
    f"temporality {row['temporality'] if isinstance(row['temporality'], str) else '–'}, "
    f"{int(row['series'])} series, {int(row['points']):,} points"
)

if row["type"] == "histogram":
    view = st.segmented_control("Show", ["percentiles", "heatmap"], default="percentiles", key="hist_view")
    buckets = app_state.query(queries.histogram_buckets, name=name, service=f.service, **f.window())
    if view == "heatmap":
        st.plotly_chart(
            figures.histogram_heatmap(buckets, title=f"{name}: observations per bucket"), key="metric_chart"
        )
    else:
        quantiles = queries.histogram_quantiles(buckets)
        st.plotly_chart(
            figures.percentile_lines(
                quantiles,
                title=f"{name}: p50 / p95 / p99 (bucket interpolation)",
                time_column="timestamp",
                columns=("p50", "p95", "p99"),
                unit=row["unit"] if isinstance(row["unit"], str) else "",
            ),
            key="metric_chart",
        )
    st.dataframe(buckets, hide_index=True, key="metric_table")
else:
    as_rate = row["type"] == "counter" and st.toggle(
        "Show as rate per second",
        value=True,
        key="metric_rate",
        help="Counters are stored cumulatively; the rate is the increase between points (a drop is a reset)",
    )
    series = app_state.query(
        queries.metric_series,
        name=name,
        service=f.service,
        group_by=list(group_by),
        rate=as_rate,
        **f.window(),
    )
    if as_rate and series.empty:
        raw = app_state.query(queries.metric_series, name=name, service=f.service, rate=False, **f.window())
        if not raw.empty:
            st.info(
                "A rate needs two points of a series, and this counter has only one per series in the time "
                "range: widen the range, or turn off “Show as rate per second” to see its stored value."
            )
    unit = (row["unit"] if isinstance(row["unit"], str) else "") + ("/s" if as_rate else "")
    st.plotly_chart(
        figures.metric_lines(series, title=name + (" (rate)" if as_rate else ""), unit=unit),
        key="metric_chart",
    )
    st.dataframe(series, hide_index=True, key="metric_table")
