"""The ``llm_calls`` view and the LLM queries against the recorded GenAI fixtures (tests/data/genai).

The ground truth is what the fake OpenAI server answered (each set's manifest). Where an instrumentation
does not record something the server sent, the test says so explicitly (``NOT_RECORDED``) and expects
"unknown" for it, never 0: that is the behaviour the view promises.
"""

from __future__ import annotations

import io
from collections import defaultdict
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from explorer import (
    PricesError,
    Store,
    llm_calls,
    llm_totals,
    llm_usage,
    llm_usage_over_time,
    load_prices,
    open_store,
    unpriced_models,
)
from explorer.errors import QueryError
from explorer.genai import DEFAULT_PRICES, PRICES_ENV
from explorer.sql_guard import GuardedSQL
from ingest import ParquetSpanExporter
from ingest.sources.importer import Importer
from tests import genai_fixtures

SETS = genai_fixtures.sets()

#: The price rows the answered models must match (exact or by prefix), written out to test the prefix rule.
PRICE_OF = {
    "gpt-4o-mini-2024-07-18": "gpt-4o-mini",
    "gpt-4o-mini": "gpt-4o-mini",
    "gpt-4.1-2025-04-14": "gpt-4.1",
    "gpt-4.1": "gpt-4.1",
    "text-embedding-3-small": "text-embedding-3-small",
}

#: What an instrumentation does not record although the server sent it (checked against the stored spans).
NOT_RECORDED: dict[str, dict[str, set[str]]] = {
    # OpenLLMetry 0.40.14 drops the usage chunk of a stream (stream_options.include_usage).
    "openllmetry-0.40.14": {"usage": {"stream-with-usage/1"}},
    # openai-v2 never reports cached tokens; 2.1b0 does not instrument embeddings at all.
    "otel-openai-v2-2.1b0": {"cached": {"*"}, "call": {"embeddings/1"}},
    "otel-openai-v2-2.4b0": {"cached": {"*"}},
    "otel-openai-v2-2.4b0-events": {"cached": {"*"}},
    "otel-openai-v2-2.4b0-json": {"cached": {"*"}},
}


def _gap(name: str, what: str, call: str) -> bool:
    gaps = NOT_RECORDED.get(name, {}).get(what, set())
    return "*" in gaps or call in gaps


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Store]:
    """Every set imported through the real importer into its own store."""
    opened = {}
    for name in SETS:
        root = tmp_path_factory.mktemp(f"llm-{name}")
        Importer(root, progress=False, durable=False, log=io.StringIO()).import_paths(
            genai_fixtures.payload_files(name)
        )
        opened[name] = open_store(root)
    return opened


def _expected_calls(name: str) -> list[dict[str, Any]]:
    """Per call the tokens and cost the store should show for this set (None = unknown)."""
    prices = load_prices([DEFAULT_PRICES]).frame.set_index("model")
    rows = []
    for trace, call in genai_fixtures.calls(name):
        if _gap(name, "call", call["call"]):
            continue
        known = call["input_tokens"] is not None and not _gap(name, "usage", call["call"])
        input_tokens = call["input_tokens"] if known else None
        output_tokens = call["output_tokens"] if known else None
        cached = call["cached_tokens"] if known and not _gap(name, "cached", call["call"]) else None
        model = call["model_answered"] or call["model_requested"]
        cost = None
        if known:
            price = prices.loc[PRICE_OF[model]]
            hit = cached or 0
            cached_price = price["cached_input"] if not pd.isna(price["cached_input"]) else price["input"]
            uncached = (input_tokens - hit) * price["input"] + hit * cached_price
            cost = (uncached + (output_tokens or 0) * price["output"]) / 1e6
        rows.append(
            {
                "trace_id": trace["trace_id"],
                "model": model,
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "cached": cached,
                "cost": cost,
                "unknown": not known,
                "error": call["status"] != 200,
                "kind": call["kind"],
            }
        )
    return rows


def _sum(values: list[Any]) -> Any:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def _none(value: Any) -> Any:
    return None if value is None or pd.isna(value) else value


def _expected_by(name: str, key: str) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in _expected_calls(name):
        groups[row[key]].append(row)
    return {
        group: {
            "calls": len(rows),
            "errors": sum(r["error"] for r in rows),
            "input_tokens": _sum([r["input_tokens"] for r in rows]),
            "output_tokens": _sum([r["output_tokens"] for r in rows]),
            "unknown_usage": sum(r["unknown"] for r in rows),
            "cost_usd": _sum([r["cost"] for r in rows]),
        }
        for group, rows in groups.items()
    }


def _actual_by(store: Store, by: str) -> dict[str, dict[str, Any]]:
    frame = llm_usage(store, by=by)
    return {
        row["group"]: {
            "calls": int(row["calls"]),
            "errors": int(row["errors"]),
            "input_tokens": _none(row["input_tokens"]),
            "output_tokens": _none(row["output_tokens"]),
            "unknown_usage": int(row["unknown_usage"]),
            "cost_usd": _none(row["cost_usd"]),
        }
        for row in frame.to_dict("records")
    }


def _close(actual: dict[str, dict[str, Any]], expected: dict[str, dict[str, Any]]) -> None:
    assert actual.keys() == expected.keys()
    for group, want in expected.items():
        got = dict(actual[group])
        cost = got.pop("cost_usd")
        if want["cost_usd"] is None:
            assert cost is None, group
        else:
            assert cost == pytest.approx(want["cost_usd"], rel=1e-9, abs=1e-15), group
        assert got == {k: v for k, v in want.items() if k != "cost_usd"}, group


@pytest.mark.parametrize("name", SETS)
def test_usage_by_trace_equals_ground_truth(stores: dict[str, Store], name: str) -> None:
    """Per trace: calls, errors, input/output tokens, unknown usage and cost as the server answered."""
    _close(_actual_by(stores[name], "trace"), _expected_by(name, "trace_id"))


@pytest.mark.parametrize("name", SETS)
def test_usage_by_model_equals_ground_truth(stores: dict[str, Store], name: str) -> None:
    """Per model (answered, else requested): the same numbers, each model priced by its list row."""
    _close(_actual_by(stores[name], "model"), _expected_by(name, "model"))


@pytest.mark.parametrize("name", SETS)
def test_cached_tokens_where_recorded(stores: dict[str, Store], name: str) -> None:
    """Cached input tokens per chat call as the server answered, NULL where the instrumentation drops them."""
    rows = llm_calls(stores[name], kinds=["llm"], include_nested=False, order="start")
    expected = sorted(
        (r["trace_id"], r["input_tokens"] or -1, r["cached"])
        for r in _expected_calls(name)
        if r["kind"] == "chat"
    )
    actual = sorted(
        (r["trace_id"], _none(r["input_tokens"]) or -1, _none(r["cached_input_tokens"]))
        for r in rows.to_dict("records")
    )
    assert actual == expected


@pytest.mark.parametrize("name", SETS)
def test_stream_without_usage_is_unknown_not_zero(stores: dict[str, Store], name: str) -> None:
    """The streamed call whose answer had no usage: tokens and cost NULL, counted as unknown usage."""
    trace = next(t for t in genai_fixtures.manifest(name)["traces"] if t["label"] == "stream-no-usage")
    row = llm_usage(stores[name], by="trace").set_index("group").loc[trace["trace_id"]]
    assert (row["calls"], row["unknown_usage"]) == (1, 1)
    assert all(_none(row[c]) is None for c in ("input_tokens", "output_tokens", "total_tokens", "cost_usd"))


@pytest.mark.parametrize("name", SETS)
def test_failed_and_rate_limited_calls(stores: dict[str, Store], name: str) -> None:
    """The 500 and 429 calls are errors with unknown usage and a readable error type."""
    labels = {t["trace_id"]: t["label"] for t in genai_fixtures.manifest(name)["traces"]}
    rows = llm_calls(stores[name], include_nested=False)
    failed = rows[rows["is_error"]]
    assert sorted(labels[t] for t in failed["trace_id"]) == ["rate-limited", "server-error"]
    assert failed["usage_unknown"].all() and failed["cost_usd"].isna().all()
    types = dict(zip((labels[t] for t in failed["trace_id"]), failed["error_type"], strict=True))
    if name != "openllmetry-0.40.14":  # records neither error.type nor an exception event
        assert types == {"server-error": "InternalServerError", "rate-limited": "RateLimitError"}
    else:
        assert set(types.values()) == {"error"}


def test_conventions_are_named(stores: dict[str, Store]) -> None:
    """Each set's calls carry the convention its instrumentation writes."""
    expected = {
        "openinference-0.1.30": {"openinference"},
        "openinference-0.1.66": {"openinference"},
        "openllmetry-0.40.14": {"openllmetry"},
        "openllmetry-0.62.4": {"openllmetry"},
        "openllmetry-0.62.4-events": {"openllmetry"},
        "traceloop-sdk-0.62.4": {"openllmetry"},
        "otel-openai-v2-2.1b0": {"otel-genai-legacy"},
        "otel-openai-v2-2.4b0": {"otel-genai"},
        "otel-openai-v2-2.4b0-events": {"otel-genai"},
        "otel-openai-v2-2.4b0-json": {"otel-genai"},
        "mixed-openinference-openllmetry": {"openinference", "openllmetry"},
    }
    actual = {name: set(llm_calls(store)["convention"]) for name, store in stores.items()}
    assert actual == expected


def test_mixed_trace_counts_each_call_once(stores: dict[str, Store]) -> None:
    """Two conventions wrap every call of the mixed set: a row each, the inner one nested, totals not doubled."""
    name = "mixed-openinference-openllmetry"
    store = stores[name]
    rows = llm_calls(store)
    calls = len(list(genai_fixtures.calls(name)))
    assert len(rows) == 2 * calls and int(rows["nested"].sum()) == calls
    assert set(rows[rows["nested"]]["convention"]) == {"openinference"}
    totals = llm_totals(store)
    expected = _expected_calls(name)
    assert totals["calls"] == calls
    assert totals["input_tokens"] == _sum([r["input_tokens"] for r in expected])
    assert totals["cost_usd"] == pytest.approx(_sum([r["cost"] for r in expected]))


def test_session_user_and_conversation_come_from_the_trace(stores: dict[str, Store]) -> None:
    """Calls whose own span has no session take the trace's (set on the agent.run root)."""
    for name in ("otel-openai-v2-2.4b0", "openllmetry-0.62.4"):
        frame = llm_usage(stores[name], by="session")
        expected: dict[str, int] = defaultdict(int)
        for trace, _call in genai_fixtures.calls(name):
            if not _gap(name, "call", _call["call"]):
                expected[trace["session_id"] or "(no session)"] += 1
        assert dict(zip(frame["group"], frame["calls"], strict=True)) == expected
    conversations = set(llm_calls(stores["otel-openai-v2-2.4b0"])["conversation_id"].dropna())
    traces = genai_fixtures.manifest("otel-openai-v2-2.4b0")["traces"]
    assert conversations == {t["conversation_id"] for t in traces if t["conversation_id"]}


def test_guarded_sql_page_has_the_same_view(stores: dict[str, Store]) -> None:
    """The SQL page's sandboxed worker defines llm_calls with the same prices: the same sums."""
    store = stores["openllmetry-0.62.4"]
    query = "SELECT sum(cost_usd) AS c, sum(total_tokens) AS t FROM llm_calls WHERE NOT nested"
    with GuardedSQL(store) as guard:
        guarded = guard.run(query).frame
    trusted = store.sql(query)
    assert guarded["c"][0] == pytest.approx(trusted["c"][0]) and guarded["t"][0] == trusted["t"][0]
    assert trusted["c"][0] > 0


def test_usage_over_time_adds_up(stores: dict[str, Store]) -> None:
    """The buckets of llm_usage_over_time add up to the totals."""
    store = stores["openinference-0.1.66"]
    series = llm_usage_over_time(store, by="model", buckets=10)
    totals = llm_totals(store)
    assert int(series["calls"].sum()) == totals["calls"]
    assert int(series["input_tokens"].sum()) == totals["input_tokens"]
    assert series["cost_usd"].sum() == pytest.approx(totals["cost_usd"])


def test_by_attribute_key_and_bad_keys(stores: dict[str, Store]) -> None:
    """``by`` takes an attribute key; a key that could break out of SQL is refused."""
    frame = llm_usage(stores["openllmetry-0.62.4"], by="gen_ai.is_streaming")
    assert dict(zip(frame["group"], frame["calls"], strict=True)) == {"false": 8, "true": 2}
    with pytest.raises(QueryError, match="attribute key"):
        llm_usage(stores["openllmetry-0.62.4"], by="x'] OR 1=1 --")


# --------------------------------------------------------------------------- prices


def _span_store(root: Path, model: str, **attributes: Any) -> Path:
    """One chat span of ``model`` with usage, through the real SDK and Parquet exporter."""
    provider = TracerProvider(resource=Resource({"service.name": "prices-test"}))
    exporter = ParquetSpanExporter(root)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("prices-test")
    with tracer.start_as_current_span(f"chat {model}") as span:
        span.set_attributes(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "acme",
                "gen_ai.request.model": model,
                "gen_ai.usage.input_tokens": 1000,
                "gen_ai.usage.output_tokens": 500,
                **attributes,
            }
        )
    provider.shutdown()
    return root


def test_unpriced_model_has_null_cost_and_is_listed(tmp_path: Path) -> None:
    """A model with no price: cost NULL (not 0), counted as unpriced and listed by unpriced_models."""
    store = open_store(_span_store(tmp_path, "acme-llm-7"))
    row = llm_calls(store).iloc[0]
    assert (row["input_tokens"], row["output_tokens"], _none(row["cost_usd"])) == (1000, 500, None)
    assert llm_totals(store)["unpriced_calls"] == 1 and llm_totals(store)["cost_usd"] is None
    assert unpriced_models(store).to_dict("records") == [
        {"model": "acme-llm-7", "provider": "acme", "calls": 1, "total_tokens": 1500}
    ]


def test_user_prices_override_by_argument_and_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user file prices a new model and replaces a shipped row; prefix matching uses it too."""
    root = _span_store(tmp_path / "store", "acme-llm-7-2025-01-01")
    prices = tmp_path / "prices.csv"
    rows = "# mine\nmodel,input,output,cached_input\nacme-llm-7,2,10,\ngpt-4o,1,1,1\n"
    prices.write_text(rows, encoding="utf-8")
    by_argument = llm_calls(Store(root, prices=prices)).iloc[0]
    assert (by_argument["price_model"], by_argument["cost_usd"]) == ("acme-llm-7", pytest.approx(0.007))
    monkeypatch.setenv(PRICES_ENV, str(prices))
    store = open_store(root)
    assert llm_calls(store)["cost_usd"].iloc[0] == pytest.approx(0.007)
    assert store.sql("SELECT input FROM _llm.prices WHERE model = 'gpt-4o'")["input"][0] == 1.0


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("model,input,output\ngpt-x,1,1\ngpt-y,cheap,1\n", 3, "must be a number"),
        ("model,input,output\ngpt-x,1\n", 2, "2 fields"),
        ("# c\n\nmodel,input\n", 3, "missing output"),
        ("model,input,output\ngpt-x,1,1\nGPT-X,2,2\n", 3, "listed twice"),
        ("model,input,output,checked\ngpt-x,1,1,yesterday\n", 2, "YYYY-MM-DD"),
        ("model,input,output\ngpt-x,-1,1\n", 2, "negative"),
    ],
)
def test_malformed_prices_file_names_file_and_line(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    """Each kind of mistake stops with PricesError '<file>:<line>: ...'."""
    bad = tmp_path / "bad.csv"
    bad.write_text(text, encoding="utf-8")
    with pytest.raises(PricesError, match=message) as caught:
        Store(_span_store(tmp_path / "s", "gpt-x"), prices=bad)
    assert str(caught.value).startswith(f"{bad}:{line}: ")


def test_missing_prices_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PricesError, match="cannot read the prices file"):
        load_prices([tmp_path / "nope.csv"])


def test_shipped_prices_have_a_checked_date_for_every_row() -> None:
    frame = load_prices([DEFAULT_PRICES]).frame
    assert len(frame) > 20 and frame["checked"].notna().all()
    assert (frame["input"] > 0).all()


def test_empty_store_has_an_empty_view(tmp_path: Path) -> None:
    """No spans at all: the view exists, totals are zero calls and unknown (None) tokens and cost."""
    store = open_store(tmp_path)
    assert llm_calls(store).empty and llm_usage(store, by="agent").empty
    totals = llm_totals(store)
    assert (totals["calls"], totals["total_tokens"], totals["cost_usd"]) == (0, None, None)
    assert llm_usage_over_time(store).empty


def test_latency_and_red_group_by_model(stores: dict[str, Store]) -> None:
    """OpenInference's ChatCompletion and OpenLLMetry's openai.chat spans split per model, not span name."""
    from explorer import latency_percentiles, red_summary

    store = stores["mixed-openinference-openllmetry"]
    red = red_summary(store, group_by="model")
    per_model = red.groupby("operation")["spans"].sum().to_dict()
    calls = llm_calls(store)
    assert per_model == calls.groupby("model").size().to_dict()
    latency = latency_percentiles(store, group_by="model").set_index("group")
    assert latency.loc["gpt-4.1-2025-04-14", "spans"] == per_model["gpt-4.1-2025-04-14"]
    by_attribute = latency_percentiles(store, group_by="attr:llm.system").set_index("group")
    assert by_attribute.loc["openai", "spans"] == (calls["convention"] == "openinference").sum()
    with pytest.raises(QueryError):
        red_summary(store, group_by="attr:x'y")


# --------------------------------------------------------------------------- CLI


def test_cli_llm_table_csv_json_and_empty(
    stores: dict[str, Store], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``python -m explorer llm``: totals and a table, CSV and JSON equal llm_usage; an empty store says so."""
    import json

    from explorer.cli import main

    store = stores["openllmetry-0.62.4"]
    assert main(["llm", "--store", str(store.root)]) == 0
    out = capsys.readouterr().out
    totals = llm_totals(store)
    assert out.splitlines()[0].startswith(f"{totals['calls']:,} LLM calls, {totals['errors']:,} errors")
    assert "calls with unknown usage" in out and "gpt-4.1-2025-04-14" in out
    assert main(["llm", "--store", str(store.root), "--by", "trace", "--format", "csv"]) == 0
    frame = pd.read_csv(io.StringIO(capsys.readouterr().out))
    expected = llm_usage(store, by="trace")
    assert frame["trace"].tolist() == expected["group"].tolist()
    assert frame["input_tokens"].fillna(-1).tolist() == expected["input_tokens"].fillna(-1).tolist()
    assert main(["llm", "--store", str(store.root), "--by", "session", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["session"] for r in rows} == set(llm_usage(store, by="session")["group"])
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["llm", "--store", str(empty)]) == 0
    assert capsys.readouterr().out.strip() == "no LLM calls in this store"


def test_cli_llm_since_and_prices(
    stores: dict[str, Store], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--since`` counts back from the newest span; ``--prices`` reprices; a bad file exits 2 naming the line."""
    from explorer.cli import main

    store = stores["openinference-0.1.66"]
    assert main(["llm", "--store", str(store.root), "--since", "1d", "--format", "csv"]) == 0
    assert pd.read_csv(io.StringIO(capsys.readouterr().out))["calls"].sum() == llm_totals(store)["calls"]
    middle = llm_calls(store, order="start")["start_time"].iloc[5].isoformat()
    assert main(["llm", "--store", str(store.root), "--since", middle, "--format", "csv"]) == 0
    recent = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert 0 < recent["calls"].sum() == llm_totals(store, start=middle)["calls"] < llm_totals(store)["calls"]
    prices = tmp_path / "p.csv"
    prices.write_text("model,input,output\ngpt-4.1,1000,1000\n", encoding="utf-8")
    assert main(["llm", "--store", str(store.root), "--prices", str(prices), "--format", "csv"]) == 0
    repriced = pd.read_csv(io.StringIO(capsys.readouterr().out)).set_index("model")
    assert repriced.loc["gpt-4.1-2025-04-14", "cost_usd"] == pytest.approx(
        repriced.loc["gpt-4.1-2025-04-14", "total_tokens"] * 1000 / 1e6
    )
    prices.write_text("model,input,output\ngpt-4.1,1000\n", encoding="utf-8")
    assert main(["llm", "--store", str(store.root), "--prices", str(prices)]) == 2
    assert f"{prices}:2: 2 fields" in capsys.readouterr().err


def test_cookbook_llm_recipes_return_rows_on_the_sample_store() -> None:
    """Every query of the cookbook's LLM section returns rows on sample_data/, trusted and guarded."""
    import re

    root = Path(__file__).resolve().parent.parent
    text = (root / "docs" / "sql-cookbook.md").read_text(encoding="utf-8")
    section = text[text.index("## LLM and agents") :]
    section = section[: section.index("\n## ", 5)]
    blocks = re.findall(r"```sql\n(.*?)```", section, flags=re.S)
    statements = [s.strip() for block in blocks for s in block.split(";") if s.strip()]
    assert len(statements) >= 6 and all("llm_calls" in s for s in statements)
    with open_store(root / "sample_data") as store, GuardedSQL(store) as guard:
        for statement in statements:
            assert len(store.sql(statement)) > 0, statement
            assert len(guard.run(statement).frame) > 0, statement


def test_store_cache_follows_new_and_compacted_files(tmp_path: Path) -> None:
    """The Store's cached llm_calls rows follow the files: a new file adds its calls, a compaction that
    replaces files neither loses nor doubles them, and the guarded worker agrees."""
    from ingest.store.compact import Compactor

    root = _span_store(tmp_path, "gpt-4o", **{"gen_ai.prompt.0.content": "x" * 300, "app.tier": "gold"})
    store = open_store(root)
    assert len(llm_calls(store)) == 1
    _span_store(root, "gpt-4o-mini", **{"app.tier": "free"})  # a second exporter run: a second file
    assert sorted(llm_calls(store)["model"]) == ["gpt-4o", "gpt-4o-mini"]
    before = sorted(p.name for p in root.glob("spans/**/*.parquet"))
    Compactor(root).run(["spans"])
    assert sorted(p.name for p in root.glob("spans/**/*.parquet")) != before
    store.refresh()
    assert sorted(llm_calls(store)["model"]) == ["gpt-4o", "gpt-4o-mini"]
    assert llm_totals(store)["input_tokens"] == 2000
    # The cache joins each call's attribute map back by row id: the same maps as the uncached view, the
    # value over MAX_KEPT_VALUE characters left out.
    maps = "SELECT model, map_entries(attributes) AS a FROM llm_calls ORDER BY model"
    cached = store.sql(maps)
    tiers = [{e["key"]: e["value"] for e in entries}.get("app.tier") for entries in cached["a"]]
    assert tiers == ["gold", "free"]
    assert not any(e["key"] == "gen_ai.prompt.0.content" for entries in cached["a"] for e in entries)
    with GuardedSQL(store) as guard:
        assert guard.run("SELECT count(*) AS n FROM llm_calls").frame["n"][0] == 2
        uncached = guard.run(maps).frame
    assert [sorted((e["key"], e["value"]) for e in a) for a in cached["a"]] == [
        sorted((e["key"], e["value"]) for e in a) for a in uncached["a"]
    ]
