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

st.set_page_config(page_title="LangSwarm Explorer", page_icon=":material/travel_explore:", layout="wide")

overview = st.Page(
    app_state.PAGES["overview"], title="Overview", icon=":material/dashboard:", url_path="overview"
)


def _home() -> None:
    """``/`` opens the Overview at ``/overview`` (a default page has no path of its own in Streamlit)."""
    st.switch_page(overview)


pages = {
    "Explore": [
        st.Page(_home, title="Home", url_path="home", default=True, visibility="hidden"),
        overview,
        st.Page(app_state.PAGES["traces"], title="Traces", icon=":material/search:", url_path="traces"),
        st.Page(
            app_state.PAGES["trace"], title="Trace view", icon=":material/waterfall_chart:", url_path="trace"
        ),
        st.Page(app_state.PAGES["latency"], title="Latency", icon=":material/timer:", url_path="latency"),
        st.Page(app_state.PAGES["llm"], title="LLM calls", icon=":material/smart_toy:", url_path="llm"),
        st.Page(
            app_state.PAGES["why_slow"],
            title="Why slow?",
            icon=":material/psychology_alt:",
            url_path="why-slow",
        ),
        st.Page(
            app_state.PAGES["profiles"],
            title="Profile hotspots",
            icon=":material/local_fire_department:",
            url_path="profiles",
        ),
        st.Page(app_state.PAGES["sessions"], title="Sessions", icon=":material/forum:", url_path="sessions"),
        st.Page(app_state.PAGES["graph"], title="Graph", icon=":material/hub:", url_path="graph"),
    ],
    "Signals": [
        st.Page(
            app_state.PAGES["alerts"],
            title="Alerts",
            icon=":material/notifications_active:",
            url_path="alerts",
        ),
        st.Page(app_state.PAGES["logs"], title="Logs", icon=":material/article:", url_path="logs"),
        st.Page(
            app_state.PAGES["metrics"], title="Metrics", icon=":material/monitoring:", url_path="metrics"
        ),
        st.Page(app_state.PAGES["sql"], title="SQL", icon=":material/database:", url_path="sql"),
    ],
}
page = st.navigation(pages)
st.session_state["_filters"] = app_state.sidebar()
page.run()
