"""State shared by the explorer's pages: which store is open, the time range, the service filter, caches.

Store choice, first match wins: ``streamlit run explorer -- --store DIR``, ``$LANGSWARM_TELEMETRY_DIR``,
``./telemetry`` if it exists, then the committed sample store ``sample_data/``. The sidebar shows it and
opens another. The Store lives in ``st.cache_resource`` (one DuckDB connection per store per process);
query results live in ``st.cache_data`` keyed by store, reload generation and arguments, so moving between
pages or re-running a page does not re-scan the files. "Reload store" re-reads the file list.
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


def default_store(argv: list[str] | None = None) -> tuple[Path, str]:
    """The store to open first and why: argument > environment > ./telemetry > sample store."""
    argument = store_argument(argv)
    if argument:
        return Path(argument).expanduser(), "--store"
    env = os.environ.get(STORE_ENV)
    if env:
        return Path(env).expanduser(), f"${STORE_ENV}"
    if Path(DEFAULT_STORE).is_dir():
        return Path(DEFAULT_STORE), "./telemetry"
    return SAMPLE_STORE, "sample store"


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


def get_store() -> Store | None:
    """The open Store, or None when the directory is missing (the sidebar then says what to do)."""
    path = store_path()
    if not Path(path).is_dir():
        return None
    try:
        return _open(str(Path(path).resolve()))
    except PricesError as exc:  # --prices / LANGSWARM_PRICES: say which file and line, not "no store"
        st.error(f"Cannot read the LLM prices: {exc}")
        st.stop()
    except ExplorerError:
        return None


def get_guard() -> GuardedSQL | None:
    """The guarded SQL runner over the open store (None when no store is open)."""
    if get_store() is None:
        return None
    return _guard(str(Path(store_path()).resolve()))


def reload_store() -> None:
    """Re-read the store's file list (new tables, new files) and drop cached results."""
    store = get_store()
    if store is None:
        return
    key = str(Path(store_path()).resolve())
    store.refresh()
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
    key = str(Path(store_path()).resolve())
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
        if last is not None:
            if preset == "Custom":
                start = st.datetime_input("From (UTC)", value=first.replace(tzinfo=None), key="time_from")
                end = st.datetime_input(
                    "To (UTC)", value=(last + timedelta(seconds=1)).replace(tzinfo=None), key="time_to"
                )
            elif PRESETS[preset] is not None:
                end = last + timedelta(microseconds=1)
                start = end - PRESETS[preset]
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
