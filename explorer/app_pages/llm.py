"""LLM calls: totals, tokens and cost over time, usage per model / provider / agent / service, the most
expensive and slowest traces, unpriced models and calls without usage. Reads the ``llm_calls`` view."""

from typing import Any

import pandas as pd
import streamlit as st

from explorer import app_state, figures, queries

st.title("LLM calls")
store = app_state.require_store()
f = app_state.filters()

totals = app_state.query(queries.llm_totals, service=f.service, **f.window())
if not totals["calls"]:
    st.info(
        "No LLM calls in this store for the chosen time range and services. The page reads GenAI spans "
        "of the OpenTelemetry GenAI conventions, OpenInference and OpenLLMetry (docs/store-schema.md, "
        "`llm_calls`)."
    )
    st.stop()


def _n(value: Any) -> str:
    if value is None or pd.isna(value):
        return "unknown"
    number = int(value)
    return f"{number / 1e6:,.2f} M" if number >= 10_000_000 else f"{number:,}"


def _usd(value: Any) -> str:
    return "unknown" if value is None or pd.isna(value) else f"${float(value):,.4f}"


c1, c2, c3, c4, c5, c6 = st.columns(6)
c1.metric("Calls", f"{totals['calls']:,}")
c2.metric("Input tokens", _n(totals["input_tokens"]))
c3.metric("Output tokens", _n(totals["output_tokens"]))
c4.metric("Cost", _usd(totals["cost_usd"]))
c5.metric("Error rate", f"{(totals['error_rate'] or 0) * 100:.2f} %")
c6.metric("p95 latency", "–" if totals["p95_ms"] is None else f"{totals['p95_ms']:,.0f} ms")
notes = []
if totals["unknown_usage"]:
    notes.append(
        f"**{totals['unknown_usage']:,} calls have unknown usage** (failed, or streamed without usage): "
        "their tokens and cost are not in the sums above."
    )
if totals["unpriced_calls"]:
    notes.append(
        f"**{totals['unpriced_calls']:,} calls are unpriced** (model not in the price list): their cost is "
        "unknown, not 0. Add the model to a prices file (`--prices FILE` or `LANGSWARM_PRICES`)."
    )
for note in notes:
    st.warning(note)

GROUPS = {
    "model": "Model",
    "provider": "Provider",
    "agent": "Agent",
    "service": "Service",
    "operation": "Operation",
    "session": "Session",
    "convention": "Convention",
}
by = (
    st.segmented_control(
        "Group by", list(GROUPS), format_func=lambda k: GROUPS.get(k, ""), default="model", key="llm_by"
    )
    or "model"
)
usage = app_state.query(queries.llm_usage, by=by, service=f.service, **f.window())
series = app_state.query(queries.llm_usage_over_time, by=by, service=f.service, buckets=60, **f.window())
st.plotly_chart(figures.llm_usage_chart(series), key="llm_over_time")

USAGE_COLUMNS = {
    "group": st.column_config.TextColumn(GROUPS[by].lower()),
    "error_rate": st.column_config.ProgressColumn(
        "error rate", format="percent", min_value=0.0, max_value=1.0
    ),
    "cost_usd": st.column_config.NumberColumn("cost USD", format="%.4f"),
    "unknown_usage": st.column_config.NumberColumn("unknown usage", help="calls without reported usage"),
    "unpriced_calls": st.column_config.NumberColumn("unpriced", help="calls of a model with no price"),
    "p50_ms": st.column_config.NumberColumn("p50 ms", format="%.1f"),
    "p95_ms": st.column_config.NumberColumn("p95 ms", format="%.1f"),
    "p99_ms": st.column_config.NumberColumn("p99 ms", format="%.1f"),
    "llm_time_ms": st.column_config.NumberColumn("time in calls ms", format="%.0f"),
}
st.subheader(f"Usage by {GROUPS[by].lower()}")
st.dataframe(
    usage,
    hide_index=True,
    key="llm_usage",
    column_config=USAGE_COLUMNS,
    column_order=[
        "group",
        "calls",
        "errors",
        "error_rate",
        "input_tokens",
        "output_tokens",
        "cached_input_tokens",
        "total_tokens",
        "unknown_usage",
        "cost_usd",
        "unpriced_calls",
        "p50_ms",
        "p95_ms",
        "p99_ms",
    ],
)

TRACE_COLUMNS = {
    "open": app_state.TRACE_LINK,
    "cost_usd": st.column_config.NumberColumn("cost USD", format="%.4f"),
    "llm_time_ms": st.column_config.NumberColumn("time in calls ms", format="%.0f"),
    "first_call": st.column_config.DatetimeColumn("first call (UTC)", format="YYYY-MM-DD HH:mm:ss"),
}
TRACE_ORDER = [
    "open",
    "calls",
    "total_tokens",
    "cost_usd",
    "llm_time_ms",
    "errors",
    "unknown_usage",
    "first_call",
]
left, right = st.columns(2)
for column, order, title, key in (
    (left, "cost", "Most expensive traces", "expensive_traces"),
    (right, "llm_time", "Traces waiting longest on models", "slow_traces"),
):
    traces = app_state.query(
        queries.llm_usage, by="trace", order=order, limit=10, service=f.service, **f.window()
    )
    traces = traces.assign(open=[app_state.trace_link(t) for t in traces["group"]])
    with column:
        st.subheader(title)
        st.dataframe(traces, hide_index=True, key=key, column_config=TRACE_COLUMNS, column_order=TRACE_ORDER)

unpriced = app_state.query(queries.unpriced_models, service=f.service, **f.window())
if not unpriced.empty:
    st.subheader("Unpriced models")
    st.caption("Calls with known usage whose model has no price: cost is unknown (NULL), never counted as 0.")
    st.dataframe(unpriced, hide_index=True, key="unpriced_models")

st.subheader("Calls")
o1, o2 = st.columns([1, 3])
call_order = o1.selectbox("Order", ["recent", "cost", "tokens", "slowest"], key="llm_call_order")
calls = app_state.query(
    queries.llm_calls, service=f.service, order=call_order, limit=200, include_nested=False, **f.window()
)
calls = calls.assign(
    open=[app_state.trace_link(t, s) for t, s in zip(calls["trace_id"], calls["span_id"], strict=True)]
)
o2.caption(
    "Model calls, tools and agent steps as the `llm_calls` view reads them (a call seen by two "
    "instrumentations is shown once). Empty tokens mean unknown usage."
)
st.dataframe(
    calls,
    hide_index=True,
    key="llm_call_rows",
    column_order=[
        "open",
        "start_time",
        "kind",
        "name",
        "model",
        "provider",
        "agent_name",
        "input_tokens",
        "output_tokens",
        "cost_usd",
        "duration_ms",
        "ttft_ms",
        "error_type",
        "convention",
        "service_name",
    ],
    column_config={
        "open": app_state.TRACE_LINK,
        "start_time": st.column_config.DatetimeColumn("start (UTC)", format="YYYY-MM-DD HH:mm:ss.SSS"),
        "cost_usd": st.column_config.NumberColumn("cost USD", format="%.5f"),
        "duration_ms": st.column_config.NumberColumn("duration ms", format="%.1f"),
        "ttft_ms": st.column_config.NumberColumn("first token ms", format="%.1f"),
    },
)
prices = store.prices
st.caption(
    f"Cost from {len(prices):,} list prices ({', '.join(prices.files)}); override with `--prices FILE` or "
    f"`LANGSWARM_PRICES`."
)
