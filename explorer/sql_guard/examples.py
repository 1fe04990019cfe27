"""Example queries the SQL page offers (each passes the guard; a test runs them)."""

from __future__ import annotations

#: Example queries shown on the SQL page (each also appears in docs/sql-cookbook.md).
EXAMPLES: dict[str, str] = {
    "Slowest operations (p95)": (
        "SELECT service_name, name, count(*) AS spans,\n"
        "       round(quantile_cont(duration_ns, 0.95) / 1e6, 3) AS p95_ms\n"
        "FROM spans GROUP BY ALL ORDER BY p95_ms DESC LIMIT 20"
    ),
    "Error spans with their message": (
        "SELECT start_time, service_name, name, status_message, trace_id\n"
        "FROM spans WHERE status_code = 'ERROR' ORDER BY start_time DESC LIMIT 50"
    ),
    "Spans by attribute": (
        "SELECT trace_id, name, attributes['correlation_id'] AS correlation_id\n"
        "FROM spans WHERE attributes['correlation_id'] IS NOT NULL LIMIT 50"
    ),
    "Exception stack traces": (
        "SELECT s.trace_id, s.name, e.name AS event, e.attributes['exception.stacktrace'] AS stacktrace\n"
        "FROM spans s, unnest(s.events) AS u(e) WHERE e.name = 'exception' LIMIT 20"
    ),
    "Error logs with their trace": (
        "SELECT timestamp, service_name, logger_name, body, trace_id\n"
        "FROM logs WHERE severity_number >= 17 ORDER BY timestamp DESC LIMIT 50"
    ),
    "Top functions by self time": (
        "SELECT function, sum(calls) AS calls, round(sum(self_time_s), 4) AS self_s\n"
        "FROM profiles WHERE caller IS NULL GROUP BY function ORDER BY self_s DESC LIMIT 20"
    ),
    "Alerts": "SELECT timestamp, severity, state, title, metric_name, current_value, threshold FROM alerts ORDER BY timestamp",
}
