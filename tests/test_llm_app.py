"""The LLM parts of the app under AppTest: the LLM calls page, Overview's LLM totals, the trace view's
per-span tokens and cost, and the Traces page's cost order, on the sample store, a store of recorded
GenAI fixtures and an empty store."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from explorer import llm_totals, llm_usage, open_store
from ingest.sources.importer import Importer
from tests import genai_fixtures
from tests.storegen import build_empty_store

APP = str(Path(__file__).resolve().parent.parent / "explorer" / "streamlit_app.py")
SAMPLE = Path(__file__).resolve().parent.parent / "sample_data"


def _app(monkeypatch: pytest.MonkeyPatch, root: Path, page: str, **query_params: str) -> AppTest:
    monkeypatch.setenv("LANGSWARM_TELEMETRY_DIR", str(root))
    at = AppTest.from_file(APP, default_timeout=90)
    at.run()
    assert not at.exception, at.exception
    at.switch_page(f"app_pages/{page}.py")
    for key, value in query_params.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


@pytest.fixture(scope="module")
def mixed_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("llm-app-mixed")
    for name in ("mixed-openinference-openllmetry", "otel-openai-v2-2.4b0"):
        Importer(root, progress=False, durable=False, log=io.StringIO()).import_paths(
            genai_fixtures.payload_files(name)
        )
    return root


TABLES = {  # dataframes carry no key in AppTest: found by columns only they have
    "llm_usage": {"group", "unpriced_calls", "p95_ms"},
    "expensive_traces": {"group", "open", "llm_time_ms"},
    "llm_call_rows": {"span_id", "convention", "ttft_ms", "open"},
    "llm_spans": {"span", "nested", "convention"},
    "trace_results": {"root_name", "open"},
}


def _table(at: AppTest, key: str):
    return next(d.value for d in at.dataframe if TABLES[key] <= set(d.value.columns))


def _metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_llm_page_on_the_sample_store(monkeypatch: pytest.MonkeyPatch) -> None:
    """Totals equal llm_totals, the by-model table equals llm_usage, the chart and trace tables are drawn."""
    at = _app(monkeypatch, SAMPLE, "llm")
    totals = llm_totals(open_store(SAMPLE))
    assert _metric(at, "Calls") == f"{totals['calls']:,}"
    assert _metric(at, "Cost") == f"${totals['cost_usd']:,.4f}"
    table = _table(at, "llm_usage")
    expected = llm_usage(open_store(SAMPLE), by="model")
    assert table["group"].tolist() == expected["group"].tolist()
    assert at.get("plotly_chart"), "no tokens/cost chart"
    expensive = _table(at, "expensive_traces")
    assert len(expensive) == 10 and expensive["open"].str.startswith("trace?trace_id=").all()
    assert any("unknown usage" in w.value for w in at.warning)  # the sample's timed-out calls


def test_llm_page_group_by_agent(monkeypatch: pytest.MonkeyPatch) -> None:
    at = _app(monkeypatch, SAMPLE, "llm")
    at.segmented_control(key="llm_by").set_value("agent").run()
    assert not at.exception
    groups = set(_table(at, "llm_usage")["group"])
    assert groups == set(llm_usage(open_store(SAMPLE), by="agent")["group"])


def test_llm_page_on_recorded_fixtures_names_conventions(
    monkeypatch: pytest.MonkeyPatch, mixed_store: Path
) -> None:
    at = _app(monkeypatch, mixed_store, "llm")
    at.segmented_control(key="llm_by").set_value("convention").run()
    assert set(_table(at, "llm_usage")["group"]) == {"openllmetry", "otel-genai"}
    calls = _table(at, "llm_call_rows")
    assert not calls.empty and calls["input_tokens"].isna().any()  # unknown usage shown as empty, not 0


def test_llm_page_on_an_empty_store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    at = _app(monkeypatch, build_empty_store(tmp_path / "empty"), "llm")
    assert any("No LLM calls" in i.value for i in at.info)


def test_overview_shows_llm_totals_only_with_genai_spans(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    at = _app(monkeypatch, SAMPLE, "overview")
    assert _metric(at, "LLM calls") == f"{llm_totals(open_store(SAMPLE))['calls']:,}"
    empty = _app(monkeypatch, build_empty_store(tmp_path / "empty"), "overview")
    assert not [m for m in empty.metric if m.label.startswith("LLM")]


def test_trace_view_lists_model_tokens_and_cost(monkeypatch: pytest.MonkeyPatch, mixed_store: Path) -> None:
    """The mixed trace: two spans per call in the table, the totals count the call once."""
    traces = genai_fixtures.manifest("mixed-openinference-openllmetry")["traces"]
    trace = next(t for t in traces if t["label"] == "chat-turn-2")
    at = _app(monkeypatch, mixed_store, "trace_view", trace_id=trace["trace_id"])
    table = _table(at, "llm_spans")
    call = trace["calls"][0]
    assert sorted(table["input_tokens"].tolist()) == [call["input_tokens"]] * 2
    assert table["nested"].sum() == 1
    label = at.expander[0].label
    assert label.startswith("LLM: 1 model calls")
    assert f"{call['input_tokens'] + call['output_tokens']:,} tokens" in label


def test_traces_page_orders_by_cost(monkeypatch: pytest.MonkeyPatch) -> None:
    at = _app(monkeypatch, SAMPLE, "traces")
    at.selectbox(key="order").set_value("cost").run()
    assert not at.exception
    costs = _table(at, "trace_results")["cost_usd"].tolist()
    assert costs == sorted(costs, reverse=True) and costs[0] > 0
    at.number_input(key="min_tokens").set_value(20000).run()
    tokens = _table(at, "trace_results")["total_tokens"]
    assert (tokens >= 20000).all() and len(tokens) > 0


def test_a_malformed_prices_file_is_an_error_naming_the_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`LANGSWARM_PRICES` naming a bad file: the app says which file and line, not "no store"."""
    bad = tmp_path / "prices.csv"
    bad.write_text("model,input,output\ngpt-4o,two,1\n", encoding="utf-8")
    monkeypatch.setenv("LANGSWARM_PRICES", str(bad))
    monkeypatch.setenv("LANGSWARM_TELEMETRY_DIR", str(build_empty_store(tmp_path / "store")))
    at = AppTest.from_file(APP, default_timeout=90)
    at.run()
    assert not at.exception
    assert any(f"{bad}:2:" in e.value for e in at.error), [e.value for e in at.error]
