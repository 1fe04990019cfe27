"""State shared by the explorer's pages: which store is open, the time range, the service filter, caches.

Store choice, first match wins: ``streamlit run explorer -- --store DIR``, ``$LANGSWARM_TELEMETRY_DIR``,
``./telemetry`` if it exists, then the committed sample store ``sample_data/``. The sidebar shows it and
opens another. The Store lives in ``st.cache_resource`` (one DuckDB connection per store per process);
query results live in ``st.cache_data`` keyed by store, reload generation and arguments, so moving between
pages or re-running a page does not re-scan the files. Every rerun compares the store's directory mtimes
with the last run's; a change (new files) re-reads the file list and drops cached results on its own, so a
browser refresh shows new data ("Reload store" does the same by hand).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pandas as pd
import streamlit as st

from explorer import queries
from explorer.errors import ExplorerError, PricesError
from explorer.sql_guard import GuardedSQL
from explorer.store import Store
from ingest.store import objectstore
from ingest.store.writer import DEFAULT_STORE, STORE_ENV

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_STORE = REPO_ROOT / "sample_data"
PRESETS: dict[str, timedelta | None] = {
    "All data": None,
    "Last 15 minutes": timedelta(minutes=15),
    "Last hour": timedelta(hours=1),
    "Last 6 hours": timedelta(hours=6),
    "Last 24 hours": timedelta(hours=24),
    "Last 7 days": timedelta(days=7),
    "Custom": None,
}
#: Query results are kept this long at most (the store is append-only; "Reload store" clears them too).
CACHE_TTL_S = 600

PAGES = {
    "overview": "app_pages/overview.py",
    "traces": "app_pages/traces.py",
    "trace": "app_pages/trace_view.py",
    "latency": "app_pages/latency.py",
    "why_slow": "app_pages/why_slow.py",
    "profiles": "app_pages/profiles.py",
    "alerts": "app_pages/alerts.py",
    "logs": "app_pages/logs.py",
    "metrics": "app_pages/metrics.py",
    "sql": "app_pages/sql.py",
    "llm": "app_pages/llm.py",
    "sessions": "app_pages/sessions.py",
    "graph": "app_pages/graph.py",
}


def store_argument(argv: list[str] | None = None) -> str | None:
    """The ``--store DIR`` given after ``--`` on the ``streamlit run`` command line, if any."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--store", default=None)
    known, _ = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    return known.store


def default_store(argv: list[str] | None = None) -> tuple[Path | str, str]:
    """The store to open first and why: argument > environment > ./telemetry > sample store."""
    argument = store_argument(argv)
    if argument:
        return _location(argument), "--store"
    env = os.environ.get(STORE_ENV)
    if env:
        return _location(env), f"${STORE_ENV}"
    if Path(DEFAULT_STORE).is_dir():
        return Path(DEFAULT_STORE), "./telemetry"
    return SAMPLE_STORE, "sample store"


def _location(path: str) -> Path | str:
    """A store given by the user: ``s3://bucket/prefix`` as it is, a directory with ``~`` expanded."""
    return objectstore.normalise(path) if objectstore.is_object_store(path) else Path(path).expanduser()


def _key(path: str) -> str:
    """One cache key per store: the absolute directory, or the normalised ``s3://`` URL."""
    return objectstore.normalise(path) if objectstore.is_object_store(path) else str(Path(path).resolve())


def prices_argument(argv: list[str] | None = None) -> str | None:
    """The ``--prices FILE`` given after ``--`` on the ``streamlit run`` command line (LLM cost), if any."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--prices", default=None)
    known, _ = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    return known.prices


@st.cache_resource(show_spinner=False)
def _open(path: str) -> Store:
    return Store(path, prices=prices_argument())


@st.cache_resource(show_spinner=False)
def _guard(path: str) -> GuardedSQL:
    return GuardedSQL(_open(path))


@st.cache_resource(show_spinner=False)
def _generations() -> dict[str, int]:
    """Reload counter per store path; part of every cache key so a reload invalidates old results."""
    return {}


def store_path() -> str:
    """The path of the store this session has open (initialised once from :func:`default_store`)."""
    if "store_path" not in st.session_state:
        path, reason = default_store()
        st.session_state["store_path"] = str(path)
        st.session_state["store_reason"] = reason
    return st.session_state["store_path"]


@st.cache_resource(show_spinner=False)
def _signatures() -> dict[str, tuple[tuple[str, int], ...]]:
    """Last seen :func:`store_signature` per store path (process-wide, like the Store itself)."""
    return {}


def store_signature(root: Path) -> tuple[tuple[str, int], ...]:
    """The modification times of the store's table and partition directories.

    Writing, renaming or deleting a file changes its directory's mtime, so comparing this (a few dozen
    ``stat`` calls, well under a millisecond) on every rerun tells whether the store changed."""
    entries: list[tuple[str, int]] = []
    try:
        for table in os.scandir(root):
            if not table.is_dir() or table.name.startswith("."):
                continue
            entries.append((table.name, table.stat().st_mtime_ns))
            for part in os.scandir(table.path):
                if part.is_dir():
                    entries.append((part.path, part.stat().st_mtime_ns))
    except OSError:
        return ()
    return tuple(sorted(entries))


def get_store() -> Store | None:
    """The open Store, or None when the directory is missing (the sidebar then says what to do).

    New files are noticed on their own: when the store's directories changed since the last run, the
    file list is re-read and cached results dropped, so a browser refresh shows the latest data."""
    path = store_path()
    if not objectstore.is_object_store(path) and not Path(path).is_dir():
        return None
    key = _key(path)
    try:
        store = _open(key)
    except PricesError as exc:  # --prices / LANGSWARM_PRICES: say which file and line, not "no store"
        st.error(f"Cannot read the LLM prices: {exc}")
        st.stop()
    except ExplorerError:
        return None
    if objectstore.is_object_store(path):
        return store  # an s3:// store has no directory mtimes to watch: "Reload store" picks up new objects
    signature = store_signature(Path(key))
    seen = _signatures()
    if seen.get(key) != signature:
        if key in seen:
            store.refresh()
            _guard(key).refresh()
            generations = _generations()
            generations[key] = generations.get(key, 0) + 1
        seen[key] = signature
    return store


def get_guard() -> GuardedSQL | None:
    """The guarded SQL runner over the open store (None when no store is open)."""
    if get_store() is None:
        return None
    return _guard(_key(store_path()))


def reload_store() -> None:
    """Re-read the store's file list (new tables, new files) and drop cached results."""
    store = get_store()
    if store is None:
        return
    key = _key(store_path())
    store.refresh()
    if not objectstore.is_object_store(key):  # no SQL page sandbox over object storage
        _guard(key).refresh()
    generations = _generations()
    generations[key] = generations.get(key, 0) + 1
    _cached.clear()


@st.cache_data(show_spinner=False, ttl=CACHE_TTL_S, max_entries=512)
def _cached(
    path: str, generation: int, name: str, args: tuple[Any, ...], kwargs: tuple[tuple[str, Any], ...]
) -> Any:
    module, _, function = name.partition(":")
    return getattr(importlib.import_module(module), function)(_open(path), *args, **dict(kwargs))


def query(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a query function (``function(store, ...)`` of an ``explorer`` module) through ``st.cache_data``."""
    store = get_store()
    if store is None:
        msg = "no store is open"
        raise ExplorerError(msg)
    key = _key(store_path())
    frozen = tuple(sorted((k, _freeze(v)) for k, v in kwargs.items()))
    name = f"{function.__module__}:{function.__name__}"
    if not name.startswith("explorer."):
        msg = f"query() runs explorer query functions only, got {name}"
        raise ExplorerError(msg)
    return _cached(key, _generations().get(key, 0), name, tuple(_freeze(a) for a in args), frozen)


def _freeze(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return dict(value)
    return value


@dataclass(frozen=True)
class Filters:
    """The sidebar's shared filters: a time window (None = open) and services (empty = all)."""

    start: datetime | None
    end: datetime | None
    services: tuple[str, ...]

    @property
    def service(self) -> tuple[str, ...] | None:
        return self.services or None

    def window(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end}


def _bounds() -> tuple[datetime | None, datetime | None]:
    if get_store() is None:
        return None, None
    return query(queries.time_bounds)


def sidebar() -> Filters:
    """Draw the store box and the shared filters in the sidebar; return the filters."""
    path = store_path()
    with st.sidebar:
        st.markdown("**Store**")
        store = get_store()
        reason = st.session_state.get("store_reason", "")
        st.caption(f"`{path}` ({reason})")
        if store is None:
            st.warning(
                f"Store directory `{path}` does not exist. Give one with `streamlit run explorer -- --store DIR`, "
                f"set ${STORE_ENV}, or type a path below."
            )
        elif not any(store.has(table) for table in ("spans", "logs", "metrics")):
            st.warning(
                f"`{path}` holds no store tables yet (no `spans/`, `logs/` or `metrics/` Parquet files): "
                "the pages stay empty until telemetry is written there. Is this the right folder?"
            )
        with st.expander("Open another store"):
            typed = st.text_input("Store directory", value=path, key="store_input")
            if st.button("Open", key="store_open") and typed and typed != path:
                st.session_state["store_path"] = typed
                st.session_state["store_reason"] = "picked in the sidebar"
                st.rerun()
        if st.button(
            "Reload store", key="reload", help="Re-read the store's files (new data since it was opened)"
        ):
            reload_store()
        first, last = _bounds()
        preset = st.selectbox(
            "Time range",
            list(PRESETS),
            key="time_preset",
            help="Relative to the newest data in the store (post-mortem: not to now)",
        )
        start = end = None
        if first is not None and last is not None:
            if preset == "Custom":
                start = st.datetime_input("From (UTC)", value=first.replace(tzinfo=None), key="time_from")
                end = st.datetime_input(
                    "To (UTC)", value=(last + timedelta(seconds=1)).replace(tzinfo=None), key="time_to"
                )
            elif (delta := PRESETS[preset]) is not None:
                end = last + timedelta(microseconds=1)
                start = end - delta
            if start is not None:
                st.caption(f"{_fmt(start)} → {_fmt(end)} UTC")
            else:
                st.caption(f"Data from {_fmt(first)} to {_fmt(last)} UTC")
        services_frame = (
            query(queries.list_services) if store is not None else pd.DataFrame(columns=["service_name"])
        )
        services = st.multiselect(
            "Services", services_frame["service_name"].tolist(), key="services", placeholder="All services"
        )
    return Filters(start=_utc(start), end=_utc(end), services=tuple(services))


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    stamp = pd.Timestamp(value)
    return (stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")).to_pydatetime(
        warn=False
    )


def as_utc(value: datetime | None) -> datetime | None:
    """A naive datetime from a widget (read as UTC) as an aware UTC datetime."""
    return _utc(value)


def _fmt(value: datetime | None) -> str:
    return "–" if value is None else pd.Timestamp(value).strftime("%Y-%m-%d %H:%M:%S")


def filters() -> Filters:
    """The filters drawn by the entry point for this run (pages call this, never :func:`sidebar`)."""
    return st.session_state.get("_filters") or Filters(None, None, ())


def require_store() -> Store:
    """The open store, or stop the page with a message saying how to open one."""
    store = get_store()
    if store is None:
        st.info(
            f"No store is open: `{store_path()}` does not exist. Run `streamlit run explorer -- --store DIR`, "
            f"set `{STORE_ENV}`, or pick a directory in the sidebar."
        )
        st.stop()
    return store


def page_url(page: str, **params: Any) -> str:
    """Relative URL of a page with query parameters (URL-encoded), for ``st.column_config.LinkColumn``."""
    present = {k: v for k, v in params.items() if isinstance(v, str) and v}
    return f"{page}?{urlencode(present)}" if present else page


def trace_link(trace_id: str | None, span_id: str | None = None) -> str | None:
    """Relative URL of the trace view for ``trace_id`` (None when there is no trace id)."""
    if not isinstance(trace_id, str) or not trace_id:
        return None
    return page_url("trace", trace_id=trace_id, span_id=span_id)


TRACE_LINK = st.column_config.LinkColumn("trace", display_text=r"trace_id=([0-9a-f]{8})", width="small")
#: Column setup of a :func:`explorer.queries.kv_table` (attributes, event attributes, resource).
KV_COLUMNS = {
    "key": st.column_config.TextColumn("key"),
    "value": st.column_config.TextColumn("value", width="large"),
    "type": st.column_config.TextColumn("type", width="small"),
    "number": st.column_config.NumberColumn("as number", width="small"),
}
#: The span dropdown lists at most this many spans (plus the selected one); the chart and table reach all.
SPAN_OPTIONS = 200
#: The trace view's span table shows this many rows around the selected span.
TABLE_ROWS = 500

_MARKDOWN_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_{}[]()#+-.!|<>~:$"})


def plain(text: object) -> str:
    """``text`` escaped for ``st.markdown``: user data (span names, services) never becomes markup or links."""
    return str(text).translate(_MARKDOWN_SPECIAL)


def sync_span_pick(span_ids: list[str]) -> None:
    """Settle ``st.session_state["span_pick"]``, the trace view's one selected span, before drawing.

    A ``&span_id=`` in the URL that changed since this session last wrote it (a deep link, or the
    browser's back button) wins; a pick that is not among ``span_ids`` (another trace, a collapsed span)
    falls back to the first span."""
    known = set(span_ids)
    wanted = st.query_params.get("span_id")
    if wanted and wanted != st.session_state.get("_span_synced") and wanted in known:
        st.session_state["span_pick"] = wanted
    if st.session_state.get("span_pick") not in known:
        st.session_state["span_pick"] = span_ids[0]
    st.session_state["_view_span_ids"] = span_ids


def pick_from_waterfall() -> None:
    """``on_pick`` of the waterfall component: the clicked row's span id becomes the pick."""
    picked = (st.session_state.get("waterfall") or {}).get("picked")  # the component's ComponentResult
    if isinstance(picked, str) and picked in set(st.session_state.get("_view_span_ids", ())):
        st.session_state["span_pick"] = picked


def pick_from_table(key: str, first: int = 0) -> None:
    """``on_select`` of the span table (keyed ``key``, showing rows from ``first``): the ticked row's span
    becomes the pick."""
    state = st.session_state.get(key) or {}
    rows = (state.get("selection") or {}).get("rows") or []
    ids = st.session_state.get("_view_span_ids", [])
    if rows and first + rows[0] < len(ids):
        st.session_state["span_pick"] = ids[first + rows[0]]


def table_window(row: int, total: int, size: int | None = None) -> tuple[int, int]:
    """The ``[first, last)`` rows of a table of ``total`` rows to show around ``row`` (at most ``size``)."""
    size = size or TABLE_ROWS
    first = max(0, min(row - size // 2, total - size))
    return first, min(total, first + size)


def span_options(span_ids: list[str], picked: str, limit: int = SPAN_OPTIONS) -> list[str]:
    """The span dropdown's options: every span up to ``limit``, else the first ``limit`` plus the pick."""
    if len(span_ids) <= limit:
        return span_ids
    head = span_ids[:limit]
    return head if picked in set(head) else [*head, picked]


ERROR_ROW = "background-color: rgba(214, 39, 40, 0.12)"


def error_rows(row: pd.Series) -> list[str]:
    """Styler row function: tint rows whose ``error_count`` (or ``errors``) is above zero."""
    count = row.get("error_count", row.get("errors", 0))
    return [ERROR_ROW if isinstance(count, (int, float)) and count > 0 else ""] * len(row)


def with_trace_links(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with an ``open`` link to the trace view (span too when there is a ``span_id``), and empty
    text instead of None where a row has no trace, so the table shows a blank rather than "None"."""
    spans = frame["span_id"] if "span_id" in frame else [None] * len(frame)
    links = [trace_link(t, s) or "" for t, s in zip(frame["trace_id"], spans, strict=True)]
    return frame.assign(open=links, trace_id=frame["trace_id"].fillna(""))


def as_mapping(value: Any) -> dict[str, Any]:
    """A stored attribute map (dict, list of pairs as an Arrow-backed cell reads, or a NULL) as a dict."""
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return {}
    if isinstance(value, dict):
        return value
    return {str(k): v for k, v in value}


def picked_trace(chart: Any, table: Any, trace_ids: list[str]) -> str | None:
    """The trace id clicked in the traces scatter (``customdata[0]``) or ticked in the results table."""
    points = ((chart or {}).get("selection") or {}).get("points") or [] if chart is not None else []
    for point in points:
        data = point.get("customdata")
        if isinstance(data, (list, tuple)) and data and isinstance(data[0], str):
            return data[0]
    rows = ((table or {}).get("selection") or {}).get("rows") or [] if table is not None else []
    if rows and rows[0] < len(trace_ids):
        return trace_ids[rows[0]]
    return None


SDK_METRIC_PREFIX = "langswarm.telemetry."


def metric_names(names: pd.Series | list[str], *, show_sdk: bool = True) -> list[str]:
    """Metric names with the application's own first and the SDK's self-metrics (``langswarm.telemetry.*``)
    last, or left out when ``show_sdk`` is False (unless nothing else is there), so a page opens on a
    user metric rather than the alphabetically first SDK counter."""
    names = [str(n) for n in names]
    user = [n for n in names if not n.startswith(SDK_METRIC_PREFIX)]
    sdk = [n for n in names if n.startswith(SDK_METRIC_PREFIX)]
    return user + sdk if show_sdk or not user else user
