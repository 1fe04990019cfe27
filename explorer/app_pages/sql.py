"""SQL: ad-hoc read-only DuckDB SQL over the store's views through the guarded path, with downloads."""

import io
from typing import Any

import pyarrow.parquet as pq
import streamlit as st

from explorer import app_state
from explorer.errors import QueryError
from explorer.sql_guard import EXAMPLES

st.title("SQL")
store = app_state.require_store()
try:
    guard = app_state.get_guard()
except QueryError as exc:
    st.error(str(exc))
    st.stop()
assert guard is not None  # require_store() above: a store is open
st.caption(
    f"Views: `spans`, `logs`, `metrics`, `profiles`, `alerts` (see docs/sql-cookbook.md). One read-only "
    f"SELECT or EXPLAIN at a time (docs/security.md); at most {guard.max_rows:,} rows, "
    f"{guard.timeout_s:g} s, {guard.memory_mb:,} MB and {guard.max_query_bytes:,} bytes of SQL per query."
)

example = st.selectbox("Example queries", list(EXAMPLES), key="sql_example")
if st.session_state.get("_sql_example_loaded") != example:
    st.session_state["sql_text"] = EXAMPLES[example]
    st.session_state["_sql_example_loaded"] = example
query = st.text_area("Query", key="sql_text", height=160)
run = st.button("Run", type="primary", key="sql_run")

if run or "sql_result" not in st.session_state or st.session_state.get("_sql_ran") != query:
    try:
        st.session_state["sql_result"] = guard.run(query)
        st.session_state["sql_error"] = None
    except QueryError as exc:
        st.session_state["sql_result"] = None
        st.session_state["sql_error"] = str(exc)
    st.session_state["_sql_ran"] = query

if st.session_state.get("sql_error"):
    st.error(st.session_state["sql_error"])
result: Any = st.session_state.get("sql_result")
if result is not None:
    frame = result.frame
    st.markdown(
        f"**{len(frame):,} rows** in {result.seconds * 1000:.0f} ms"
        + (f" — cut at {result.max_rows:,} rows; add a LIMIT or aggregate" if result.truncated else "")
    )
    st.dataframe(frame, hide_index=True, key="sql_table")
    d1, d2 = st.columns(2)
    d1.download_button(
        "Download CSV",
        frame.to_csv(index=False).encode("utf-8"),
        file_name="query.csv",
        mime="text/csv",
        key="sql_csv",
        on_click="ignore",
    )

    def _parquet() -> bytes:
        sink = io.BytesIO()
        pq.write_table(result.arrow, sink)
        return sink.getvalue()

    d2.download_button(
        "Download Parquet",
        _parquet,
        file_name="query.parquet",
        mime="application/vnd.apache.parquet",
        key="sql_parquet",
        on_click="ignore",
    )
