"""Figure functions: DataFrames from :mod:`explorer.queries` in, plotly ``go.Figure`` out.

No I/O and no Streamlit here, so notebooks draw the same charts as the app. One module per concept;
``from explorer import figures; figures.waterfall(...)`` keeps working for every function.
"""

from explorer.figures.charts import (
    LEVEL_COLORS,
    SEVERITY_COLORS,
    STATUS_COLORS,
    alert_timeline,
    attribute_shares,
    duration_histogram,
    fired_chart,
    format_ms,
    histogram_heatmap,
    hotspot_bars,
    icicle,
    log_volume,
    metric_lines,
    percentile_lines,
    red_chart,
)
from explorer.figures.graph import call_graph
from explorer.figures.llm import llm_usage_bars, llm_usage_chart
from explorer.figures.overview import red_over_time
from explorer.figures.trace import SERVICE_PALETTE, WATERFALL_ROWS, service_colors, waterfall, waterfall_data
from explorer.figures.traces import trace_scatter

__all__ = [
    "LEVEL_COLORS",
    "SERVICE_PALETTE",
    "SEVERITY_COLORS",
    "STATUS_COLORS",
    "WATERFALL_ROWS",
    "alert_timeline",
    "attribute_shares",
    "call_graph",
    "duration_histogram",
    "fired_chart",
    "format_ms",
    "histogram_heatmap",
    "hotspot_bars",
    "icicle",
    "llm_usage_bars",
    "llm_usage_chart",
    "log_volume",
    "metric_lines",
    "percentile_lines",
    "red_chart",
    "red_over_time",
    "service_colors",
    "trace_scatter",
    "waterfall",
    "waterfall_data",
]
