"""Streamlit rendering of conversations: the chat panel of an LLM span, a tool span's arguments and result.

Used by the trace view (one call, :func:`span_panel`) and the Sessions page. The data comes from
``explorer.queries.messages``; this module only draws it: one chat bubble per message with the role
distinct, tool calls with pretty-printed arguments, long content folded into an expander, every text in a
code block (its copy button copies it whole).
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import streamlit as st

from explorer import app_state, figures, queries

#: Content longer than this is shown cut, the whole text in an expander below.
FOLD_CHARS = 1200
_AVATARS = {
    "system": ":material/settings:",
    "user": "user",
    "assistant": "assistant",
    "tool": ":material/build:",
    "developer": ":material/code:",
}
#: Span attributes shown beside the chat (model, tokens, finish), whichever convention set them.
_SIDE_KEYS = (
    "gen_ai.request.model",
    "gen_ai.response.model",
    "llm.model_name",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.prompt_tokens",
    "gen_ai.usage.completion_tokens",
    "llm.token_count.prompt",
    "llm.token_count.completion",
    "gen_ai.response.finish_reasons",
    "llm.finish_reason",
    "gen_ai.provider.name",
    "gen_ai.system",
    "error.type",
)


def pretty_json(text: Any) -> tuple[str, str | None]:
    """(text, language): JSON pretty-printed when ``text`` parses as an object or list, else as it is."""
    if text is None:
        return "", None
    value = str(text)
    if value.strip()[:1] in ("{", "["):
        try:
            return json.dumps(json.loads(value), indent=2, ensure_ascii=False), "json"
        except ValueError:
            pass
    return value, None


def text_block(text: str, key: str) -> None:
    """A copyable block; long text cut with the whole of it in an expander."""
    body, language = pretty_json(text)
    if len(body) <= FOLD_CHARS:
        st.code(body, language=language, wrap_lines=True)
        return
    st.code(body[:FOLD_CHARS] + " …", language=language, wrap_lines=True)
    with st.expander(f"Show all {len(body):,} characters", key=f"{key}_all"):
        st.code(body, language=language, wrap_lines=True)


def show_conversation(frame: pd.DataFrame, key: str) -> None:
    """Draw message rows (:func:`explorer.queries.messages`) as a chat, input then output."""
    if frame.empty:
        st.caption("No conversation for this span.")
        return
    shown_output = False
    for row in frame.itertuples(index=False):
        if row.direction == "output" and not shown_output:
            st.caption("── answer ──")
            shown_output = True
        if not row.recorded:
            st.info(row.content, icon=":material/visibility_off:")
            continue
        role = str(row.role or "unknown")
        with st.chat_message(role, avatar=_AVATARS.get(role, ":material/chat:")):
            facts = [f"**{role}**"]
            if row.tool_call_id:
                facts.append(f"result of call `{row.tool_call_id}`")
            if row.finish_reason:
                facts.append(f"finish: `{row.finish_reason}`")
            others = [p for p in row.parts if p != "text"]
            if others:
                facts.append("parts: " + ", ".join(others))
            facts.append(f"from {row.source}")
            st.markdown(" · ".join(facts))
            if row.content:
                text_block(row.content, f"{key}_{row.index}")
            for n, call in enumerate(row.tool_calls):
                st.markdown(f":material/build: calls **{call.get('name')}** `{call.get('id') or ''}`")
                text_block(call.get("arguments") or "", f"{key}_{row.index}_call{n}")


def _side_attributes(attributes: dict[str, Any]) -> None:
    shown = {k: attributes[k] for k in _SIDE_KEYS if k in attributes}
    if shown:
        st.dataframe(
            pd.DataFrame({"key": list(shown), "value": [str(v) for v in shown.values()]}),
            hide_index=True,
            key="chat_side_attrs",
        )


def span_panel(trace_id: str, span_id: str, detail: queries.SpanDetail) -> None:
    """For an LLM span its conversation as a chat beside its model/token attributes; for a tool span its
    arguments and result; nothing for other spans."""
    attributes = detail.attributes
    if queries.is_llm_span(attributes):
        frame = app_state.query(queries.messages, trace_id, span_id)
        with st.container(border=True, key="chat_panel"):
            st.markdown("**Conversation**")
            left, right = st.columns([2, 1])
            with left:
                show_conversation(frame, f"chat_{span_id}")
            with right:
                _side_attributes(attributes)
                st.caption("All attributes in the tabs below.")
    elif queries.is_tool_span(attributes):
        call = app_state.query(queries.tool_call, trace_id, span_id)
        with st.container(border=True, key="tool_panel"):
            st.markdown(
                f"**Tool call** `{call.get('name')}`"
                + (f" · id `{call['call_id']}`" if call.get("call_id") else "")
            )
            if "llm span" in (call.get("source") or ""):
                st.caption(
                    "Not recorded on the tool span: read from the LLM calls that asked for it and got its result."
                )
            left, right = st.columns(2)
            with left:
                st.markdown("Arguments")
                text_block(call.get("arguments") or "(not recorded)", f"tool_args_{span_id}")
            with right:
                st.markdown("Result")
                text_block(call.get("result") or "(not recorded)", f"tool_result_{span_id}")


def trace_graph(trace_id: str) -> None:
    """The call graph of one trace (services, agents, tools, models), drawn when asked for: behind a toggle,
    not an expander, so opening a trace never loads plotly in the browser (~0.9 s of a fresh tab)."""
    if st.toggle("Show the call graph of this trace", key="show_call_graph"):
        nodes, edges = app_state.query(queries.service_graph, trace_id=trace_id)
        st.plotly_chart(figures.call_graph(nodes, edges, title="Calls in this trace"), key="trace_call_graph")
