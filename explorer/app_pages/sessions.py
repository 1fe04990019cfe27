"""Sessions: traces grouped by session.id / gen_ai.conversation.id; a session opens as its turns (user input,
final answer, tokens) linking to each trace, and one turn's conversation as a chat."""

import pandas as pd
import streamlit as st

from explorer import app_chat, app_state, queries

st.title("Sessions")
store = app_state.require_store()
f = app_state.filters()

c1, c2 = st.columns([2, 1])
user_id = c1.text_input(
    "User id", key="session_user", bind="query-params", help="user.id, enduser.id or the Traceloop user id"
)
limit = c2.number_input("Max sessions", min_value=10, max_value=5000, value=200, step=50, key="session_limit")
listed = app_state.query(
    queries.sessions, user_id=user_id.strip() or None, service=f.service, limit=int(limit), **f.window()
)
if listed.empty:
    st.info(
        "No sessions in this window. A trace joins a session when one of its spans has `session.id` or "
        "`gen_ai.conversation.id` (OpenInference `using_attributes`, Traceloop `association_properties`)."
    )
    st.stop()
st.markdown(f"**{len(listed):,} sessions**" + (" (limit reached)" if len(listed) >= limit else ""))
picked = st.dataframe(
    listed,
    hide_index=True,
    key="session_table",
    on_select="rerun",
    selection_mode="single-row",
    height=min(36 * (len(listed) + 1) + 3, 360),
    column_config={
        "first_time": st.column_config.DatetimeColumn("first (UTC)", format="YYYY-MM-DD HH:mm:ss"),
        "last_time": st.column_config.DatetimeColumn("last (UTC)", format="YYYY-MM-DD HH:mm:ss"),
        "duration_ms": st.column_config.NumberColumn("duration ms", format="%.1f"),
        "cost": st.column_config.NumberColumn(
            "cost", format="%.4f", help="summed where the spans carry a cost"
        ),
    },
)
rows = picked.selection.rows if picked is not None else []
ids = listed["session_id"].tolist()
if rows:
    st.session_state["session_id"] = ids[rows[0]]
session_id = st.selectbox("Session", ids, key="session_id")

row = listed.set_index("session_id").loc[session_id]
# the session's own time span (a second of margin) lets the query read only those days' files
turns = app_state.query(
    queries.session_traces,
    session_id,
    start=row["first_time"] - pd.Timedelta(seconds=1),
    end=row["last_time"] + pd.Timedelta(seconds=1),
)
st.subheader(f"{len(turns)} turns")
st.dataframe(
    turns.assign(open=[app_state.trace_link(t) for t in turns["trace_id"]]),
    hide_index=True,
    key="turn_table",
    column_order=[
        "turn",
        "start_time",
        "duration_ms",
        "input",
        "answer",
        "llm_calls",
        "input_tokens",
        "output_tokens",
        "errors",
        "open",
    ],
    column_config={
        "open": app_state.TRACE_LINK,
        "start_time": st.column_config.DatetimeColumn("start (UTC)", format="YYYY-MM-DD HH:mm:ss.SSS"),
        "duration_ms": st.column_config.NumberColumn("duration ms", format="%.1f"),
    },
)
with st.expander("Turns as a chat", expanded=True):
    for turn in turns.itertuples():
        st.caption(f"Turn {turn.turn} · trace `{turn.trace_id[:12]}…` · {turn.start_time:%Y-%m-%d %H:%M:%S}")
        with st.chat_message("user"):
            st.markdown(turn.input if isinstance(turn.input, str) else "_input not recorded_")
        with st.chat_message("assistant"):
            if isinstance(turn.answer, str):
                app_chat.text_block(turn.answer, f"turn_{turn.turn}")
            else:
                st.markdown("_answer not recorded_" + (" (the turn had errors)" if turn.errors else ""))
