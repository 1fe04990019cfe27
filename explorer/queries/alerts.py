"""Alert events and the firing windows they form."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from explorer.queries._sql import Services, TimeLike, _frame, _limit, _services, _ts, _Where
from explorer.store import Store


def alert_events(
    store: Store,
    *,
    service: Services = None,
    severity: str | Sequence[str] | None = None,
    state: str | None = None,
    start: TimeLike = None,
    end: TimeLike = None,
    limit: int = 2000,
) -> pd.DataFrame:
    """Alert rows (firing and resolved) in time order."""
    where = _Where()
    names = _services(service)
    if names is not None:
        where.add(
            "(list_contains($services, service_name) OR list_contains($services, component))", services=names
        )
    where.time("timestamp", start, end)
    if severity:
        where.add(
            "list_contains($severities, severity)",
            severities=[severity] if isinstance(severity, str) else list(severity),
        )
    if state:
        where.add("state = $state", state=state)
    sql = f"""SELECT * EXCLUDE (date) FROM alerts WHERE {where.sql()} ORDER BY timestamp LIMIT $limit"""
    return _frame(store, sql, {**where.params, "limit": _limit(limit)})


def alert_windows(events: pd.DataFrame, *, until: TimeLike = None) -> pd.DataFrame:
    """Pair each firing row with the next resolved row of the same alert (``alert_id``, else title+component).

    ``end`` is the resolution time, or ``until`` (default: the last event) for alerts still firing.
    """
    columns = [
        "alert",
        "title",
        "severity",
        "component",
        "metric_name",
        "threshold",
        "peak_value",
        "start",
        "end",
        "resolved",
        "trace_id",
        "correlation_id",
    ]
    if events.empty:
        return pd.DataFrame(columns=columns)
    frame = events.sort_values("timestamp", kind="stable")
    stop = _ts(until, "until") or _ts(frame["timestamp"].max(), "until")
    open_: dict[str, dict[str, Any]] = {}
    windows: list[dict[str, Any]] = []
    for row in frame.itertuples(index=False):
        key = (
            row.alert_id if isinstance(row.alert_id, str) and row.alert_id else f"{row.title}|{row.component}"
        )
        stamp = _ts(row.timestamp, "timestamp")
        if row.state == "resolved":
            window = open_.pop(key, None)
            if window is not None:
                window.update(end=stamp, resolved=True)
                windows.append(window)
            continue
        if key in open_:
            window = open_[key]
            if row.current_value is not None and not pd.isna(row.current_value):
                window["peak_value"] = np.nanmax([window["peak_value"], row.current_value])
            continue
        open_[key] = {
            "alert": key,
            "title": row.title,
            "severity": row.severity,
            "component": row.component,
            "metric_name": row.metric_name,
            "threshold": row.threshold,
            "peak_value": row.current_value,
            "start": stamp,
            "end": stop,
            "resolved": False,
            "trace_id": row.trace_id,
            "correlation_id": row.correlation_id,
        }
    windows.extend(open_.values())
    result = pd.DataFrame(windows, columns=columns).sort_values("start", kind="stable").reset_index(drop=True)
    return result
