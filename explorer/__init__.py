"""LangSwarm Observability — the explorer: DuckDB over the Parquet telemetry store.

    from explorer import open_store, search_traces, trace_tree, waterfall
    store = open_store("sample_data")
    store.sql("SELECT name, count(*) FROM spans GROUP BY name")
    hits = search_traces(store, service="frontend", status="error", limit=20)
    waterfall(trace_tree(store, hits.trace_id[0])).show()

Query functions (``explorer.queries``) return pandas DataFrames and never import Streamlit; figure
functions (``explorer.figures``, imported lazily because plotly is heavy) turn them into plotly
figures. Notebooks, the CLI (``python -m explorer``) and the app (``streamlit run explorer``) share them.
"""

from __future__ import annotations

import importlib
from typing import Any

from explorer.alert_history import alert_history
from explorer.errors import ExplorerError, PricesError, QueryError, StoreNotFoundError, TraceNotFoundError
from explorer.genai import Prices, load_prices
from explorer.otlp_export import trace_to_otlp, trace_to_otlp_json
from explorer.queries import (
    alert_events,
    alert_summary,
    alert_windows,
    call_tree,
    collapse_subtrees,
    compare_attributes,
    compare_structure,
    critical_path,
    critical_path_spans,
    critical_path_summary,
    failing_operations,
    histogram_buckets,
    histogram_quantiles,
    latency_histogram,
    latency_outliers,
    latency_percentiles,
    list_loggers,
    list_operations,
    list_services,
    metric_catalog,
    metric_label_keys,
    metric_series,
    percentiles_over_time,
    profile_edges,
    profile_hotspots,
    profile_operations,
    profile_spans,
    red_summary,
    search_logs,
    search_traces,
    service_versions,
    slowest_operations,
    span_detail,
    span_profile,
    store_overview,
    telemetry_health,
    time_bounds,
    trace_duration_histogram,
    trace_logs,
    trace_timeline,
    trace_tree,
)
from explorer.queries.content import search_content
from explorer.queries.graph import service_graph
from explorer.queries.llm import (
    llm_calls,
    llm_totals,
    llm_usage,
    llm_usage_over_time,
    trace_llm_spans,
    trace_llm_totals,
    unpriced_models,
)
from explorer.queries.messages import conversation, messages, tool_call
from explorer.queries.sessions import session_traces, sessions
from explorer.sql_guard import GuardedSQL
from explorer.store import Store, open_store
from explorer.tree import order_tree

# Figure functions: imported on first use so `import explorer` does not load plotly.
_FIGURES = (
    "alert_timeline",
    "attribute_shares",
    "duration_histogram",
    "fired_chart",
    "histogram_heatmap",
    "hotspot_bars",
    "icicle",
    "log_volume",
    "metric_lines",
    "percentile_lines",
    "red_chart",
    "waterfall",
)

__all__ = sorted(
    [
        "ExplorerError",
        "GuardedSQL",
        "QueryError",
        "Store",
        "StoreNotFoundError",
        "TraceNotFoundError",
        "alert_events",
        "alert_history",
        "alert_summary",
        "alert_windows",
        "call_tree",
        "collapse_subtrees",
        "compare_attributes",
        "compare_structure",
        "critical_path",
        "critical_path_spans",
        "critical_path_summary",
        "failing_operations",
        "histogram_buckets",
        "histogram_quantiles",
        "latency_histogram",
        "latency_outliers",
        "latency_percentiles",
        "list_loggers",
        "list_operations",
        "list_services",
        "metric_catalog",
        "metric_label_keys",
        "metric_series",
        "open_store",
        "order_tree",
        "percentiles_over_time",
        "profile_edges",
        "profile_hotspots",
        "profile_operations",
        "profile_spans",
        "red_summary",
        "search_logs",
        "search_traces",
        "service_versions",
        "slowest_operations",
        "span_detail",
        "span_profile",
        "store_overview",
        "telemetry_health",
        "time_bounds",
        "trace_duration_histogram",
        "trace_logs",
        "trace_timeline",
        "trace_to_otlp",
        "trace_to_otlp_json",
        "trace_tree",
        *_FIGURES,
    ]
)

# LLM calls (explorer/queries/llm.py, explorer/genai.py), appended so other names merge cleanly.
__all__ = sorted(
    [
        *__all__,
        "Prices",
        "PricesError",
        "llm_calls",
        "llm_totals",
        "llm_usage",
        "llm_usage_over_time",
        "load_prices",
        "trace_llm_spans",
        "trace_llm_totals",
        "unpriced_models",
        "llm_usage_chart",
        "llm_usage_bars",
        "call_graph",
        "conversation",
        "messages",
        "search_content",
        "service_graph",
        "session_traces",
        "sessions",
        "tool_call",
    ]
)


def __getattr__(name: str) -> Any:
    if name in (*_FIGURES, "call_graph", "llm_usage_bars", "llm_usage_chart"):
        value = getattr(importlib.import_module("explorer.figures"), name)
        globals()[name] = value
        return value
    msg = f"module 'explorer' has no attribute {name!r}"
    raise AttributeError(msg)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
