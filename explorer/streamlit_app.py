"""The explorer app: ``streamlit run explorer [-- --store DIR]``.

The entry point draws the shared sidebar (store, time range, services) and hands over to the page
chosen in the navigation; each page in ``app_pages/`` is a thin layer over ``explorer.queries`` and
``explorer.figures``.
"""

import sys
from pathlib import Path

# `streamlit run explorer` puts explorer/ (the script's folder) on sys.path, not the repository root;
# without an editable install `import explorer` would fail, so add the root once.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import streamlit as st  # noqa: E402

from explorer import app_state  # noqa: E402

st.set_page_config(page_title="LangSwarm Explorer", page_icon="🔭", layout="wide")

pages = {
    "Explore": [
        st.Page(app_state.PAGES["overview"], title="Overview", icon="🏠", url_path="overview", default=True),
        st.Page(app_state.PAGES["traces"], title="Traces", icon="🔎", url_path="traces"),
        st.Page(app_state.PAGES["trace"], title="Trace view", icon="🌊", url_path="trace"),
        st.Page(app_state.PAGES["latency"], title="Latency", icon="⏱️", url_path="latency"),
        st.Page(app_state.PAGES["profiles"], title="Profile hotspots", icon="🔥", url_path="profiles"),
    ],
    "Signals": [
        st.Page(app_state.PAGES["alerts"], title="Alerts", icon="🚨", url_path="alerts"),
        st.Page(app_state.PAGES["logs"], title="Logs", icon="📜", url_path="logs"),
        st.Page(app_state.PAGES["metrics"], title="Metrics", icon="📈", url_path="metrics"),
        st.Page(app_state.PAGES["sql"], title="SQL", icon="🧮", url_path="sql"),
    ],
}
page = st.navigation(pages)
st.session_state["_filters"] = app_state.sidebar()
page.run()
