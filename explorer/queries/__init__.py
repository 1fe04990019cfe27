"""Query functions over a :class:`~explorer.store.Store`: keyword-only filters in, pandas DataFrames out.

Shared by the Streamlit pages, the notebooks and the CLI. Every function bounds its result
(``limit``), passes values as bound parameters (``$name``), and takes identifiers only from fixed
lists. Time filters also prune on the store's ``date`` partition, so a narrow window reads few files.
No Streamlit import here (a test checks it). One module per page concept; shared SQL helpers in ``_sql``.
"""

from __future__ import annotations

from explorer.queries._sql import LEVELS, PERCENTILES, Services, TimeLike, now_utc
from explorer.queries.alerts import alert_events, alert_windows
from explorer.queries.compare import CompareScope, compare_attributes
from explorer.queries.content import search_content
from explorer.queries.critical import CriticalGroup, critical_path_spans, critical_path_summary
from explorer.queries.facts import (
    list_operations,
    list_services,
    service_versions,
    store_overview,
    telemetry_health,
    time_bounds,
)
from explorer.queries.graph import service_graph
from explorer.queries.latency import (
    LatencyGroup,
    latency_histogram,
    latency_outliers,
    latency_percentiles,
    percentiles_over_time,
)
from explorer.queries.llm import (
    llm_calls,
    llm_totals,
    llm_usage,
    llm_usage_over_time,
    trace_llm_spans,
    trace_llm_totals,
    unpriced_models,
)
from explorer.queries.logs import list_loggers, log_volume, search_logs
from explorer.queries.messages import conversation, is_llm_span, is_tool_span, messages, tool_call, tool_io
from explorer.queries.metrics import (
    histogram_buckets,
    histogram_quantiles,
    metric_catalog,
    metric_label_keys,
    metric_series,
)
from explorer.queries.overview import (
    alert_summary,
    failing_operations,
    red_over_time,
    red_summary,
    slowest_operations,
)
from explorer.queries.profiles import (
    call_tree,
    profile_edges,
    profile_hotspots,
    profile_operations,
    profile_spans,
)
from explorer.queries.sessions import session_traces, sessions
from explorer.queries.structure import StructureOrder, compare_structure
from explorer.queries.trace import (
    SpanDetail,
    kv_table,
    log_summary,
    span_detail,
    span_profile,
    trace_header,
    trace_logs,
    trace_marks,
    trace_timeline,
    trace_tree,
    typed_value,
)
from explorer.queries.traces import TraceFilter, TraceOrder, search_traces, trace_duration_histogram
from explorer.tree import collapse_subtrees, critical_path

__all__ = [
    "LEVELS",
    "PERCENTILES",
    "CompareScope",
    "CriticalGroup",
    "LatencyGroup",
    "Services",
    "SpanDetail",
    "StructureOrder",
    "TimeLike",
    "TraceFilter",
    "TraceOrder",
    "alert_events",
    "alert_summary",
    "alert_windows",
    "call_tree",
    "collapse_subtrees",
    "compare_attributes",
    "compare_structure",
    "conversation",
    "critical_path",
    "critical_path_spans",
    "critical_path_summary",
    "failing_operations",
    "histogram_buckets",
    "histogram_quantiles",
    "is_llm_span",
    "is_tool_span",
    "kv_table",
    "latency_histogram",
    "latency_outliers",
    "latency_percentiles",
    "list_loggers",
    "list_operations",
    "list_services",
    "log_summary",
    "log_volume",
    "messages",
    "metric_catalog",
    "metric_label_keys",
    "metric_series",
    "now_utc",
    "percentiles_over_time",
    "profile_edges",
    "profile_hotspots",
    "profile_operations",
    "profile_spans",
    "red_over_time",
    "red_summary",
    "search_content",
    "search_logs",
    "search_traces",
    "service_graph",
    "service_versions",
    "session_traces",
    "sessions",
    "slowest_operations",
    "span_detail",
    "span_profile",
    "store_overview",
    "telemetry_health",
    "time_bounds",
    "tool_call",
    "tool_io",
    "trace_duration_histogram",
    "trace_header",
    "trace_logs",
    "trace_marks",
    "trace_timeline",
    "trace_tree",
    "typed_value",
]

#: The LLM-call queries (explorer/queries/llm.py), kept apart so other modules' names merge cleanly.
_LLM = (
    "llm_calls",
    "llm_totals",
    "llm_usage",
    "llm_usage_over_time",
    "trace_llm_spans",
    "trace_llm_totals",
    "unpriced_models",
)
__all__ = sorted([*__all__, *_LLM])
