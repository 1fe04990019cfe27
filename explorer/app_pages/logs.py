"""Logs: search by level, logger, text (body, event name, attributes), event name, correlation id and trace;
content search across logs and span prompts/responses; jump to the trace."""

import json

import streamlit as st

from explorer import app_state, figures, queries

st.title("Logs")
store = app_state.require_store()
f = app_state.filters()

loggers = app_state.query(queries.list_loggers, service=f.service)
c1, c2, c3 = st.columns([1, 2, 3])
level = c1.selectbox(
    "Minimum level", ["ALL", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"], key="level", bind="query-params"
)
logger = c2.selectbox(
    "Logger",
    ["", *loggers["logger_name"].astype(str).tolist()],
    key="logger",
    format_func=lambda name: name or "any",
)
text = c3.text_input("Text in the body, event name or attributes", key="log_q", bind="query-params")
c4, c5, c6, c7 = st.columns([2, 2, 2, 1])
correlation = c4.text_input("Correlation id", key="correlation_id", bind="query-params")
trace_id = c5.text_input("Trace id", key="log_trace", bind="query-params")
event_name = c6.text_input(
    "Event name", key="log_event", help="e.g. gen_ai.client.inference.operation.details"
)
limit = c7.number_input("Max rows", min_value=10, max_value=20_000, value=500, step=100, key="log_limit")

criteria = {
    "service": f.service,
    "min_level": level,
    "logger": logger or None,
    "text": text or None,
    "correlation_id": correlation or None,
    "trace_id": trace_id or None,
    "event_name": event_name.strip() or None,
    **f.window(),
}
logs = app_state.query(queries.search_logs, limit=int(limit), **criteria)
volume = app_state.query(queries.log_volume, **criteria)
total = int(volume["records"].sum()) if not volume.empty else 0
st.markdown(
    f"**{total:,} records**"
    + (
        f" (the newest {len(logs):,} are listed: raise Max rows or narrow the search)"
        if total > len(logs)
        else ""
    )
)
st.plotly_chart(figures.log_volume(volume), key="log_volume")
picked = st.dataframe(
    app_state.with_trace_links(logs).assign(
        attributes=[
            json.dumps(m, ensure_ascii=False) if (m := app_state.as_mapping(a)) else ""
            for a in logs["attributes"]
        ]
    ),
    hide_index=True,
    key="log_table",
    height=480,
    on_select="rerun",
    selection_mode="single-row",
    column_order=[
        "timestamp",
        "severity_text",
        "service_name",
        "logger_name",
        "event_name",
        "body",
        "attributes",
        "correlation_id",
        "open",
        "trace_id",
    ],
    column_config={
        "open": app_state.TRACE_LINK,
        "timestamp": st.column_config.DatetimeColumn("time (UTC)", format="YYYY-MM-DD HH:mm:ss.SSS"),
        "severity_text": st.column_config.TextColumn("level"),
        "service_name": st.column_config.TextColumn("service"),
        "logger_name": st.column_config.TextColumn("logger"),
        "correlation_id": st.column_config.TextColumn("correlation id"),
        "trace_id": st.column_config.TextColumn("trace id"),
    },
)
rows = picked.selection.rows if picked is not None else []
if rows:
    record = logs.iloc[rows[0]]
    st.markdown("**Selected record**")
    st.text(str(record["body"]))
    st.dataframe(
        queries.kv_table(app_state.as_mapping(record["attributes"])),
        hide_index=True,
        key="log_attributes",
        column_config=app_state.KV_COLUMNS,
    )
else:
    st.caption("Tick a row to see the whole record with all its attributes.")

if text.strip() and st.toggle(
    "Also search prompts, responses and tool arguments in spans", key="log_content"
):
    hits = app_state.query(
        queries.search_content, text, service=f.service, logs=False, limit=200, **f.window()
    )
    st.markdown(f"**{len(hits):,} spans** with the text in their content attributes")
    st.dataframe(
        hits.assign(
            open=[app_state.trace_link(t, s) for t, s in zip(hits["trace_id"], hits["span_id"], strict=True)]
        ),
        hide_index=True,
        key="content_table",
        column_order=["time", "service_name", "name", "found_in", "snippet", "open"],
        column_config={"open": app_state.TRACE_LINK},
    )
