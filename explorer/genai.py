"""LLM calls as one table: the ``llm_calls`` view over ``spans`` and the price list behind its cost.

Instrumentations describe a GenAI call in different attribute vocabularies: the OpenTelemetry GenAI
semantic conventions (current ``gen_ai.provider.name`` / ``gen_ai.usage.input_tokens`` and the older
``gen_ai.system`` / ``gen_ai.usage.prompt_tokens``), OpenInference (``openinference.span.kind``,
``llm.model_name``, ``llm.token_count.*``), OpenLLMetry / Traceloop (``traceloop.span.kind``,
``llm.request.type``, ``llm.usage.total_tokens``) and this project's SDK and demo. The view reads them
all, once, so the app, the notebooks, the CLI and the SQL page agree on what a call, a token and a dollar
are. Unknown usage stays NULL (never 0); cost is NULL for an unpriced model or unknown usage.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd

from explorer.errors import PricesError

#: The environment variable naming a prices file that extends and overrides the shipped one.
PRICES_ENV = "LANGSWARM_PRICES"
#: The price list shipped with the package.
DEFAULT_PRICES = Path(__file__).resolve().parent / "data" / "prices.csv"
PRICE_COLUMNS = ("model", "provider", "input", "output", "cached_input", "checked")

#: Kinds of ``llm_calls`` rows that are model calls (they have usage, a price and a cost).
MODEL_CALL_KINDS = ("llm", "embedding")


@dataclass(frozen=True)
class Prices:
    """A price list: one row per model key, and the files it was read from (shipped first)."""

    frame: pd.DataFrame
    files: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.frame)


def _number(raw: str, column: str, where: str, *, optional: bool = False) -> float | None:
    text = raw.strip()
    if text == "" and optional:
        return None
    try:
        value = float(text)
    except ValueError:
        msg = f"{where}: column {column!r} must be a number of USD per million tokens, got {raw!r}"
        raise PricesError(msg) from None
    if value < 0 or value != value:
        msg = f"{where}: column {column!r} must not be negative, got {raw!r}"
        raise PricesError(msg)
    return value


def read_prices_file(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Rows of one prices CSV (``#`` lines are comments); PricesError naming the file and line if malformed."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        msg = f"cannot read the prices file {str(file)!r}: {exc.strerror or exc}"
        raise PricesError(msg) from None
    except UnicodeDecodeError as exc:
        msg = f"the prices file {str(file)!r} is not UTF-8 text ({exc.reason} at byte {exc.start})"
        raise PricesError(msg) from None
    lines = [(number, line) for number, line in enumerate(text.splitlines(), 1) if line.strip()]
    lines = [(number, line) for number, line in lines if not line.lstrip().startswith("#")]
    if not lines:
        msg = f"{file}: no header line; the first line must be {','.join(PRICE_COLUMNS)}"
        raise PricesError(msg)
    header_line, header_text = lines[0]
    header = [h.strip().lower() for h in next(csv.reader([header_text]))]
    missing = [c for c in ("model", "input", "output") if c not in header]
    unknown = [c for c in header if c not in PRICE_COLUMNS]
    if missing or unknown:
        msg = (
            f"{file}:{header_line}: the header must name the columns {','.join(PRICE_COLUMNS)} "
            f"(model, input and output required)"
            + (f"; missing {', '.join(missing)}" if missing else "")
            + (f"; unknown {', '.join(unknown)}" if unknown else "")
        )
        raise PricesError(msg)
    rows = []
    seen: dict[str, int] = {}
    for number, line in lines[1:]:
        where = f"{file}:{number}"
        values = next(csv.reader([line]))
        if len(values) != len(header):
            msg = f"{where}: {len(values)} fields, the header has {len(header)} ({','.join(header)})"
            raise PricesError(msg)
        row = dict(zip(header, values, strict=True))
        model = row["model"].strip().lower()
        if not model:
            msg = f"{where}: the model column is empty"
            raise PricesError(msg)
        if model in seen:
            msg = f"{where}: model {model!r} is listed twice (first on line {seen[model]})"
            raise PricesError(msg)
        seen[model] = number
        checked_raw = row.get("checked", "").strip()
        checked: date | None = None
        if checked_raw:
            try:
                checked = date.fromisoformat(checked_raw)
            except ValueError:
                msg = f"{where}: column 'checked' must be a date YYYY-MM-DD, got {checked_raw!r}"
                raise PricesError(msg) from None
        rows.append(
            {
                "model": model,
                "provider": row.get("provider", "").strip().lower() or None,
                "input": _number(row["input"], "input", where),
                "output": _number(row["output"], "output", where),
                "cached_input": _number(row.get("cached_input", ""), "cached_input", where, optional=True),
                "checked": checked,
                "source": str(file),
            }
        )
    return _typed(pd.DataFrame(rows))


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    columns = {
        "model": "object",
        "provider": "object",
        "input": "float64",
        "output": "float64",
        "cached_input": "float64",
        "checked": "object",
        "source": "object",
    }
    if frame.empty:
        return pd.DataFrame({name: pd.Series(dtype=kind) for name, kind in columns.items()})
    return frame.astype({k: v for k, v in columns.items() if v == "float64"})


def prices_files(prices: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None) -> list[str]:
    """The files to read, shipped first: ``prices`` if given, else ``$LANGSWARM_PRICES`` (paths split by ``os.pathsep``)."""
    if prices is None or prices == "":
        env = os.environ.get(PRICES_ENV, "")
        extra: list[str] = [p for p in env.split(os.pathsep) if p.strip()]
    elif isinstance(prices, (str, os.PathLike)):
        extra = [os.fspath(prices)]
    else:
        extra = [os.fspath(p) for p in prices]
    return [str(DEFAULT_PRICES), *(str(Path(p).expanduser()) for p in extra)]


def load_prices(files: Iterable[str | os.PathLike[str]]) -> Prices:
    """Read the files in order; a later file's row replaces an earlier one for the same model."""
    names = [os.fspath(f) for f in files]
    merged: dict[str, dict[str, object]] = {}
    for name in names:
        for row in read_prices_file(name).to_dict("records"):
            merged[str(row["model"])] = row
    return Prices(_typed(pd.DataFrame(list(merged.values()))), tuple(names))


def resolve_prices(
    prices: Prices | str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
) -> Prices:
    """A :class:`Prices` from an explicit value, ``$LANGSWARM_PRICES`` or the shipped list."""
    if isinstance(prices, Prices):
        return prices
    return load_prices(prices_files(prices))


# One row per GenAI span. Attribute keys are read in the order: current OTel GenAI, older OTel GenAI,
# OpenInference, OpenLLMetry. Numbers are TRY_CAST so a malformed value is NULL, not an error.
_MARKERS = (
    "gen_ai.operation.name",
    "gen_ai.system",
    "gen_ai.provider.name",
    "gen_ai.request.model",
    "openinference.span.kind",
    "traceloop.span.kind",
    "llm.request.type",
)

LLM_CALLS_SQL = """
CREATE OR REPLACE VIEW llm_calls AS
WITH g AS (
    SELECT trace_id, span_id, parent_span_id, service_name, name, scope_name, start_time, end_time,
           duration_ns, status_code, status_message, attributes AS a, events, date
    FROM spans
    WHERE list_has_any(map_keys(attributes), {markers})
    QUALIFY row_number() OVER (PARTITION BY trace_id, span_id ORDER BY end_time DESC NULLS LAST) = 1
),
n AS (
    SELECT *,
        CASE
            WHEN a['openinference.span.kind'] IS NOT NULL THEN 'openinference'
            WHEN a['traceloop.span.kind'] IS NOT NULL OR a['llm.request.type'] IS NOT NULL
                 OR a['llm.is_streaming'] IS NOT NULL OR a['gen_ai.is_streaming'] IS NOT NULL
                 OR a['llm.usage.total_tokens'] IS NOT NULL
                 OR scope_name LIKE 'opentelemetry.instrumentation.%.v1' THEN 'openllmetry'
            WHEN a['correlation_id'] IS NOT NULL THEN 'langswarm'
            WHEN a['gen_ai.provider.name'] IS NULL
                 AND (a['gen_ai.system'] IS NOT NULL OR a['gen_ai.usage.prompt_tokens'] IS NOT NULL)
                 THEN 'otel-genai-legacy'
            ELSE 'otel-genai'
        END AS convention,
        lower(coalesce(a['gen_ai.operation.name'], a['llm.request.type'], a['openinference.span.kind'],
                       a['traceloop.span.kind'])) AS operation,
        coalesce(a['gen_ai.request.model'], a['llm.request.model'],
                 json_extract_string(a['llm.invocation_parameters'], '$.model'),
                 json_extract_string(a['embedding.invocation_parameters'], '$.model')) AS request_model,
        coalesce(a['gen_ai.response.model'], a['llm.response.model'], a['llm.model_name'],
                 a['embedding.model_name']) AS response_model,
        TRY_CAST(coalesce(a['gen_ai.usage.input_tokens'], a['gen_ai.usage.prompt_tokens'],
                          a['llm.token_count.prompt'], a['llm.usage.prompt_tokens']) AS BIGINT) AS input_tokens,
        TRY_CAST(coalesce(a['gen_ai.usage.output_tokens'], a['gen_ai.usage.completion_tokens'],
                          a['llm.token_count.completion'], a['llm.usage.completion_tokens']) AS BIGINT)
            AS output_tokens,
        TRY_CAST(coalesce(a['gen_ai.usage.cache_read.input_tokens'], a['gen_ai.usage.cache_read_input_tokens'],
                          a['gen_ai.usage.cached_input_tokens'], a['llm.token_count.prompt_details.cache_read'])
                 AS BIGINT) AS cached_input_tokens,
        TRY_CAST(coalesce(a['gen_ai.usage.total_tokens'], a['llm.usage.total_tokens'],
                          a['llm.token_count.total']) AS BIGINT) AS reported_total_tokens
    FROM g
),
k AS (
    SELECT *,
        CASE
            WHEN convention = 'openinference' THEN CASE operation
                WHEN 'llm' THEN 'llm' WHEN 'embedding' THEN 'embedding' WHEN 'tool' THEN 'tool'
                WHEN 'agent' THEN 'agent' WHEN 'retriever' THEN 'retriever' WHEN 'reranker' THEN 'retriever'
                ELSE 'chain' END
            WHEN operation IN ('chat', 'text_completion', 'completion', 'generate_content', 'llm') THEN 'llm'
            WHEN operation IN ('embeddings', 'embedding') THEN 'embedding'
            WHEN operation IN ('execute_tool', 'tool') THEN 'tool'
            WHEN operation IN ('invoke_agent', 'create_agent', 'agent') THEN 'agent'
            WHEN operation IN ('retrieval', 'retriever', 'rerank') THEN 'retriever'
            WHEN operation IN ('workflow', 'task') THEN 'chain'
            WHEN coalesce(response_model, request_model) IS NOT NULL THEN 'llm'
            ELSE 'chain'
        END AS kind,
        coalesce(response_model, request_model) AS model
    FROM n
),
models AS MATERIALIZED (
    SELECT DISTINCT model, lower(regexp_replace(model, '^.*/', '')) AS key
    FROM k WHERE model IS NOT NULL AND kind IN ('llm', 'embedding')
),
matched AS (
    SELECT m.model, arg_max(p.model, length(p.model)) AS price_model
    FROM models m JOIN _llm.prices p
      ON m.key = p.model
      OR (starts_with(m.key, p.model) AND substr(m.key, length(p.model) + 1, 1) IN ('-', ':', '@'))
    GROUP BY m.model
),
calls AS MATERIALIZED (
    SELECT k.*, matched.price_model FROM k LEFT JOIN matched USING (model)
),
-- Session, user and conversation are often set once per trace (on the root or an agent span), not on
-- each call: a call without its own takes its trace's.
per_trace AS (
    SELECT trace_id,
        any_value(coalesce(attributes['session.id'], attributes['traceloop.association.properties.session_id']))
            AS session_id,
        any_value(coalesce(attributes['user.id'], attributes['enduser.id'],
                           attributes['traceloop.association.properties.user_id'])) AS user_id,
        any_value(attributes['gen_ai.conversation.id']) AS conversation_id
    FROM spans
    WHERE list_has_any(map_keys(attributes), ['session.id', 'user.id', 'enduser.id', 'gen_ai.conversation.id',
                                              'traceloop.association.properties.session_id',
                                              'traceloop.association.properties.user_id'])
      AND trace_id IN (SELECT trace_id FROM calls)
    GROUP BY trace_id
)
SELECT
    c.trace_id, c.span_id, c.parent_span_id, c.service_name, c.name, c.kind, c.operation,
    lower(coalesce(c.a['gen_ai.provider.name'], c.a['gen_ai.system'], c.a['llm.provider'], c.a['llm.system'],
                   p.provider)) AS provider,
    c.request_model, c.response_model, c.model,
    c.input_tokens, c.output_tokens, c.cached_input_tokens,
    coalesce(c.reported_total_tokens, c.input_tokens
             + CASE WHEN c.kind = 'embedding' THEN coalesce(c.output_tokens, 0) ELSE c.output_tokens END)
        AS total_tokens,
    (c.kind IN ('llm', 'embedding')
        AND (c.input_tokens IS NULL OR (c.kind = 'llm' AND c.output_tokens IS NULL))) AS usage_unknown,
    CASE WHEN c.kind IN ('llm', 'embedding') AND c.input_tokens IS NOT NULL
              AND (c.kind = 'embedding' OR c.output_tokens IS NOT NULL) THEN
        ((c.input_tokens - least(coalesce(c.cached_input_tokens, 0), c.input_tokens)) * p.input
         + least(coalesce(c.cached_input_tokens, 0), c.input_tokens) * coalesce(p.cached_input, p.input)
         + coalesce(c.output_tokens, 0) * p.output) / 1e6
    END AS cost_usd,
    c.price_model,
    c.start_time, c.end_time, c.duration_ns,
    coalesce(
        TRY_CAST(coalesce(c.a['gen_ai.response.time_to_first_chunk'], c.a['gen_ai.server.time_to_first_token'])
                 AS DOUBLE) * 1000,
        epoch_us(list_filter(c.events, lambda e: e.name IN ('First Token Stream Event', 'gen_ai.first_token',
                                                        'llm.first_token'))[1].timestamp::TIMESTAMPTZ)
            / 1000.0 - epoch_us(c.start_time::TIMESTAMPTZ) / 1000.0
    ) AS ttft_ms,
    c.status_code, c.status_message,
    CASE WHEN c.status_code = 'ERROR' OR c.a['error.type'] IS NOT NULL THEN
        coalesce(
            nullif(regexp_extract(c.a['error.type'], '^<class ''(?:[A-Za-z0-9_]+\\.)*([A-Za-z0-9_]+)''>$', 1), ''),
            c.a['error.type'],
            regexp_extract(list_filter(c.events, lambda e: e.name = 'exception')[1].attributes['exception.type'],
                           '([A-Za-z0-9_]+)$', 1),
            'error')
    END AS error_type,
    (c.status_code = 'ERROR' OR c.a['error.type'] IS NOT NULL) AS is_error,
    coalesce(c.a['gen_ai.agent.name'], c.a['agent.name'],
             CASE WHEN c.kind = 'agent' THEN coalesce(c.a['traceloop.entity.name'], c.name) END,
             parent.agent_name) AS agent_name,
    coalesce(c.a['gen_ai.tool.name'], c.a['tool.name'],
             CASE WHEN c.kind = 'tool' THEN coalesce(c.a['traceloop.entity.name'], c.name) END) AS tool_name,
    coalesce(c.a['session.id'], c.a['traceloop.association.properties.session_id'], t.session_id) AS session_id,
    coalesce(c.a['user.id'], c.a['enduser.id'], c.a['traceloop.association.properties.user_id'], t.user_id)
        AS user_id,
    coalesce(c.a['gen_ai.conversation.id'], t.conversation_id) AS conversation_id,
    c.convention, c.scope_name,
    coalesce(c.kind IN ('llm', 'embedding') AND parent.kind IN ('llm', 'embedding'), false) AS nested,
    c.a AS attributes,
    c.date
FROM calls c
LEFT JOIN _llm.prices p ON p.model = c.price_model
LEFT JOIN (
    SELECT trace_id, span_id, kind,
           coalesce(a['gen_ai.agent.name'], a['agent.name'],
                    CASE WHEN kind = 'agent' THEN coalesce(a['traceloop.entity.name'], name) END) AS agent_name
    FROM calls
) parent ON parent.trace_id = c.trace_id AND parent.span_id = c.parent_span_id
LEFT JOIN per_trace t ON t.trace_id = c.trace_id
"""


def llm_calls_sql() -> str:
    """The ``CREATE VIEW llm_calls`` statement (reads the ``spans`` view and the ``_llm.prices`` table)."""
    markers = "[" + ", ".join(f"'{m}'" for m in _MARKERS) + "]"
    return LLM_CALLS_SQL.replace("{markers}", markers)


def install_llm_view(con: duckdb.DuckDBPyConnection, prices: Prices) -> None:
    """Create (or replace) the ``_llm.prices`` table and the ``llm_calls`` view on ``con``."""
    con.execute("CREATE SCHEMA IF NOT EXISTS _llm")
    frame = prices.frame[["model", "provider", "input", "output", "cached_input", "checked", "source"]]
    con.register("_prices_frame", frame)
    try:
        con.execute(
            "CREATE OR REPLACE TABLE _llm.prices AS SELECT model::VARCHAR AS model, provider::VARCHAR AS provider, "
            "input::DOUBLE AS input, output::DOUBLE AS output, cached_input::DOUBLE AS cached_input, "
            "TRY_CAST(checked AS DATE) AS checked, source::VARCHAR AS source FROM _prices_frame"
        )
    finally:
        con.unregister("_prices_frame")
    con.execute(llm_calls_sql())
