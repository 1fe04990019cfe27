"""The Why slow? page under AppTest: the sample incident, the fixture store, an empty store."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from tests.storegen import build_empty_store, shared_store

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "explorer" / "streamlit_app.py")
PAGE = "app_pages/why_slow.py"


def _page(monkeypatch, root) -> AppTest:
    monkeypatch.setenv("LANGSWARM_TELEMETRY_DIR", str(root))
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page(PAGE)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


class TestWhySlowPage:
    def test_sample_incident_slow_chats(self, monkeypatch):
        """POST /v1/chat slower than p90: retries rank in the attributes, the queue and gpt-4o lead the
        structure and the critical path, and every table links to traces."""
        at = _page(monkeypatch, ROOT / "sample_data")
        at.selectbox(key="why_operation").set_value("POST /v1/chat").run()
        at.number_input(key="why_pct").set_value(90.0).run()
        assert not at.exception and not at.error, [e.value for e in at.error]
        attributes, structure, critical = (at.dataframe[i].value for i in range(3))
        top = list(dict.fromkeys(attributes["key"]))[:3]
        assert {"langswarm.tool.attempt", "http.request.resend_count"} & set(top), top
        assert attributes["trace"].str.startswith("trace?trace_id=").any()
        assert {"agent.queue_wait", "chat gpt-4o"} <= set(structure["path"].str.split(" > ").str[-1].head(3))
        assert set(critical["name"].head(2)) == {"agent.queue_wait", "chat gpt-4o"}
        assert critical["trace"].str.startswith("trace?trace_id=").all()
        assert at.get("plotly_chart"), "no attribute chart"

    def test_errors_and_a_predicate(self, monkeypatch):
        """Errors point at the search outage's 502s; a bad predicate is an error box, not an exception."""
        at = _page(monkeypatch, ROOT / "sample_data")
        at.selectbox(key="why_operation").set_value("POST /v1/chat").run()
        at.selectbox(key="why_condition").set_value("errors").run()
        attributes = at.dataframe[0].value
        top = attributes[attributes["key"].isin(list(dict.fromkeys(attributes["key"]))[:3])]
        assert ((top["key"] == "http.response.status_code") & (top["value"] == "502")).any()
        at.selectbox(key="why_condition").set_value("SQL predicate").run()
        at.text_input(key="why_predicate").set_value("trace_id IN (SELECT trace_id FROM logs)").run()
        assert not at.exception
        assert any("subquery" in e.value for e in at.error)

    def test_fixture_store_and_non_root_operation(self, monkeypatch):
        """A span name that is never a root: the attributes still compare, structure says why it cannot."""
        facts = shared_store()
        at = _page(monkeypatch, facts.root)
        names = at.selectbox(key="why_operation").options
        at.selectbox(key="why_operation").set_value("db.query" if "db.query" in names else names[0]).run()
        assert not at.exception and not at.error
        assert at.title[0].value == "Why slow?"

    def test_empty_store(self, monkeypatch, tmp_path):
        at = _page(monkeypatch, build_empty_store(tmp_path / "empty"))
        assert not at.error
        assert any("nothing to explain" in i.value for i in at.info)
