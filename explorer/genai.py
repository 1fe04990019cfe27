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
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from explorer.errors import PricesError, QueryError

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
    """Rows of one prices CSV (``#`` lines are comments); PricesError naming file and line if malformed."""
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


def prices_files(
    prices: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
) -> list[str]:
    """The files to read, shipped first: ``prices`` if given, else ``$LANGSWARM_PRICES`` (paths split
    by ``os.pathsep``)."""
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


# Stage 1, per span row and independent of every other row (so the Store can compute it once per
# Parquet file and keep it): which spans are GenAI spans, and what each convention's attributes say.
# Attribute keys are read in the order: current OTel GenAI, older OTel GenAI, OpenInference, OpenLLMetry.
# Numbers are TRY_CAST so a malformed value is NULL, not an error.
MARKERS = (
    "gen_ai.operation.name",
    "gen_ai.system",
    "gen_ai.provider.name",
    "gen_ai.request.model",
    "openinference.span.kind",
    "traceloop.span.kind",
    "llm.request.type",
)
CONTEXT_KEYS = (
    "session.id",
    "user.id",
    "enduser.id",
    "gen_ai.conversation.id",
    "traceloop.association.properties.session_id",
    "traceloop.association.properties.user_id",
)
#: Attribute values longer than this are left out of ``llm_calls.attributes`` (prompts and completions):
#: the column is for grouping and filtering, and the Store keeps it in memory.
MAX_KEPT_VALUE = 256


#: ``llm_calls`` without its ``attributes`` column (the Store's cached table, with a row id in its place):
#: what queries that read no attribute read, since the view joins the maps back (~10 ms a query at 100k calls).
LLM_CALLS_TABLE = "_llm.calls"

#: Spans joined to the model ``llm_calls`` read for them (only GenAI spans stay): the FROM clause of a
#: span query grouped by model, a join on the ids, so no attribute map of ``spans`` is decoded.
SPANS_WITH_MODEL_SQL = (
    f"spans JOIN (SELECT trace_id AS _t, span_id AS _s, any_value(model) AS _model FROM {LLM_CALLS_TABLE} "
    "WHERE model IS NOT NULL GROUP BY ALL) ON _t = trace_id AND _s = span_id"
)
#: The same rows straight from ``llm_calls`` (which has the span columns these queries filter on, but no
#: resource attributes): no scan of ``spans`` at all.
MODEL_SPANS_SQL = (
    "(SELECT trace_id, span_id, name, service_name, start_time, end_time, duration_ns, status_code, date, "
    f"model AS _model FROM {LLM_CALLS_TABLE} WHERE model IS NOT NULL) AS spans"
)


def spans_source(group_by: str, *, resource_attributes: bool = False) -> str:
    """The FROM clause of a span query grouped by ``group_by``: ``spans``; for ``model`` the GenAI spans
    with their model, read from ``llm_calls`` (joined to ``spans`` when the query filters on resource
    attributes)."""
    if group_by != "model":
        return "spans"
    return SPANS_WITH_MODEL_SQL if resource_attributes else MODEL_SPANS_SQL


def group_expression(group_by: str) -> str | None:
    """SQL for grouping spans by ``model`` (over :func:`spans_source`) or by an attribute (``attr:KEY``);
    None for other values."""
    if group_by == "model":
        return "_model"
    if group_by.startswith("attr:"):
        key = group_by.removeprefix("attr:")
        if not re.fullmatch(r"[A-Za-z0-9_.:/@-]{1,200}", key):
            msg = f"attribute key {key!r} may hold letters, digits and _.:/@- only"
            raise QueryError(msg)
        return f"coalesce(attributes['{key}'], '(not set)')"
    return None


SPAN_ROWS_SQL = """
WITH n AS (
    SELECT {carry}trace_id, span_id, parent_span_id, service_name, name, scope_name, start_time, end_time,
           duration_ns, status_code, status_message, events, date, attributes AS a,
        CASE
            WHEN attributes['openinference.span.kind'] IS NOT NULL THEN 'openinference'
            WHEN attributes['traceloop.span.kind'] IS NOT NULL OR attributes['llm.request.type'] IS NOT NULL
                 OR attributes['llm.is_streaming'] IS NOT NULL OR attributes['gen_ai.is_streaming'] IS NOT NULL
                 OR attributes['llm.usage.total_tokens'] IS NOT NULL
                 OR scope_name LIKE 'opentelemetry.instrumentation.%.v1' THEN 'openllmetry'
            WHEN attributes['correlation_id'] IS NOT NULL THEN 'langswarm'
            WHEN attributes['gen_ai.provider.name'] IS NULL
                 AND (attributes['gen_ai.system'] IS NOT NULL OR attributes['gen_ai.usage.prompt_tokens'] IS NOT NULL)
                 THEN 'otel-genai-legacy'
            ELSE 'otel-genai'
        END AS convention,
        lower(coalesce(attributes['gen_ai.operation.name'], attributes['llm.request.type'],
                       attributes['openinference.span.kind'], attributes['traceloop.span.kind'])) AS operation
    FROM {source}
    WHERE {markers}
),
k AS (
    SELECT *,
        coalesce(a['gen_ai.request.model'], a['llm.request.model'],
                 json_extract_string(a['llm.invocation_parameters'], '$.model'),
                 json_extract_string(a['embedding.invocation_parameters'], '$.model')) AS request_model,
        coalesce(a['gen_ai.response.model'], a['llm.response.model'], a['llm.model_name'],
                 a['embedding.model_name']) AS response_model
    FROM n
),
c AS (
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
        END AS kind
    FROM k
)
SELECT {carry}trace_id, span_id, parent_span_id, service_name, name, kind, operation,
    lower(coalesce(a['gen_ai.provider.name'], a['gen_ai.system'], a['llm.provider'], a['llm.system'])) AS provider,
    request_model, response_model, coalesce(response_model, request_model) AS model,
    TRY_CAST(coalesce(a['gen_ai.usage.input_tokens'], a['gen_ai.usage.prompt_tokens'],
                      a['llm.token_count.prompt'], a['llm.usage.prompt_tokens']) AS BIGINT) AS input_tokens,
    TRY_CAST(coalesce(a['gen_ai.usage.output_tokens'], a['gen_ai.usage.completion_tokens'],
                      a['llm.token_count.completion'], a['llm.usage.completion_tokens']) AS BIGINT) AS output_tokens,
    TRY_CAST(coalesce(a['gen_ai.usage.cache_read.input_tokens'], a['gen_ai.usage.cache_read_input_tokens'],
                      a['gen_ai.usage.cached_input_tokens'], a['llm.token_count.prompt_details.cache_read'])
             AS BIGINT) AS cached_input_tokens,
    TRY_CAST(coalesce(a['gen_ai.usage.total_tokens'], a['llm.usage.total_tokens'], a['llm.token_count.total'])
             AS BIGINT) AS reported_total_tokens,
    start_time, end_time, duration_ns,
    coalesce(
        TRY_CAST(coalesce(a['gen_ai.response.time_to_first_chunk'], a['gen_ai.server.time_to_first_token'])
                 AS DOUBLE) * 1000,
        epoch_us(list_filter(events, lambda e: e.name IN ('First Token Stream Event', 'gen_ai.first_token',
                                                         'llm.first_token'))[1].timestamp::TIMESTAMPTZ)
            / 1000.0 - epoch_us(start_time::TIMESTAMPTZ) / 1000.0
    ) AS ttft_ms,
    status_code, status_message,
    CASE WHEN status_code = 'ERROR' OR a['error.type'] IS NOT NULL THEN
        coalesce(
            nullif(regexp_extract(a['error.type'], '^<class ''(?:[A-Za-z0-9_]+\\.)*([A-Za-z0-9_]+)''>$', 1), ''),
            a['error.type'],
            regexp_extract(list_filter(events, lambda e: e.name = 'exception')[1].attributes['exception.type'],
                           '([A-Za-z0-9_]+)$', 1),
            'error')
    END AS error_type,
    coalesce(status_code = 'ERROR' OR a['error.type'] IS NOT NULL, false) AS is_error,
    coalesce(a['gen_ai.agent.name'], a['agent.name'],
             CASE WHEN kind = 'agent' THEN coalesce(a['traceloop.entity.name'], name) END) AS own_agent_name,
    coalesce(a['gen_ai.tool.name'], a['tool.name'],
             CASE WHEN kind = 'tool' THEN coalesce(a['traceloop.entity.name'], name) END) AS tool_name,
    coalesce(a['session.id'], a['traceloop.association.properties.session_id']) AS own_session_id,
    coalesce(a['user.id'], a['enduser.id'], a['traceloop.association.properties.user_id']) AS own_user_id,
    a['gen_ai.conversation.id'] AS own_conversation_id,
    convention, scope_name,
    -- Rebuilding a map costs more than everything else in this stage: only spans with a long value pay it.
    CASE WHEN list_max(list_transform(map_values(a), lambda v: length(v))) <= {max_value} THEN a
         ELSE map_from_entries(list_filter(map_entries(a), lambda e: length(e.value) <= {max_value}))
    END AS attributes,
    date
FROM c
"""

# Session, user and conversation are often set once per trace (on the root or an agent span), not on
# each call: any span of the trace that names them.
TRACE_CONTEXT_SQL = """
SELECT {carry}trace_id,
    coalesce(attributes['session.id'], attributes['traceloop.association.properties.session_id']) AS session_id,
    coalesce(attributes['user.id'], attributes['enduser.id'], attributes['traceloop.association.properties.user_id'])
        AS user_id,
    attributes['gen_ai.conversation.id'] AS conversation_id
FROM {source}
WHERE {context_keys}
"""

# Stage 2, across rows: one row per span (an unfinished snapshot and its finished row count once), the
# price (longest matching prefix), the parent (a model call wrapped by another one is ``nested``), and
# the trace's session, user and conversation.
LLM_CALLS_SQL = """
CREATE OR REPLACE VIEW {name} AS
WITH calls AS MATERIALIZED (
    SELECT * FROM {span_rows}
    QUALIFY row_number() OVER (PARTITION BY trace_id, span_id ORDER BY end_time DESC NULLS LAST) = 1
),
models AS (
    SELECT DISTINCT model, lower(regexp_replace(model, '^.*/', '')) AS key
    FROM calls WHERE model IS NOT NULL AND kind IN ('llm', 'embedding')
),
matched AS (
    SELECT m.model, arg_max(p.model, length(p.model)) AS price_model
    FROM models m JOIN _llm.prices p
      ON m.key = p.model
      OR (starts_with(m.key, p.model) AND substr(m.key, length(p.model) + 1, 1) IN ('-', ':', '@'))
    GROUP BY m.model
),
per_trace AS (
    SELECT trace_id, any_value(session_id) AS session_id, any_value(user_id) AS user_id,
           any_value(conversation_id) AS conversation_id
    FROM _llm.trace_context WHERE trace_id IN (SELECT trace_id FROM calls) GROUP BY trace_id
)
SELECT
    c.trace_id, c.span_id, c.parent_span_id, c.service_name, c.name, c.kind, c.operation,
    coalesce(c.provider, p.provider) AS provider,
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
    m.price_model,
    c.start_time, c.end_time, c.duration_ns, c.ttft_ms, c.status_code, c.status_message, c.error_type, c.is_error,
    coalesce(c.own_agent_name, parent.own_agent_name) AS agent_name,
    c.tool_name,
    coalesce(c.own_session_id, t.session_id) AS session_id,
    coalesce(c.own_user_id, t.user_id) AS user_id,
    coalesce(c.own_conversation_id, t.conversation_id) AS conversation_id,
    c.convention, c.scope_name,
    coalesce(c.kind IN ('llm', 'embedding') AND parent.kind IN ('llm', 'embedding'), false) AS nested,
    {attributes},
    c.date
FROM calls c
LEFT JOIN matched m ON m.model = c.model
LEFT JOIN _llm.prices p ON p.model = m.price_model
LEFT JOIN (SELECT trace_id, span_id, kind, own_agent_name FROM calls) parent
       ON parent.trace_id = c.trace_id AND parent.span_id = c.parent_span_id
LEFT JOIN per_trace t ON t.trace_id = c.trace_id
"""


def _has_any_key(keys: Sequence[str]) -> str:
    """A predicate: ``attributes`` holds one of ``keys``. ``map_contains`` per key is ~2x faster in DuckDB
    than ``list_has_any(map_keys(attributes), [...])``, which builds a list per row."""
    return "(" + " OR ".join(f"map_contains(attributes, '{k}')" for k in keys) + ")"


def llm_calls_sql(name: str, span_rows: str = "_llm.span_rows", attributes: str = "c.attributes") -> str:
    """Stage 2 as ``CREATE OR REPLACE VIEW {name}`` over the stage-1 relation ``span_rows``;
    ``attributes`` is the expression of the ``attributes`` column (the cache carries a row id instead)."""
    return (
        LLM_CALLS_SQL.replace("{name}", name)
        .replace("{span_rows}", span_rows)
        .replace("{attributes}", attributes)
    )


def span_rows_sql(source: str, carry: str = "") -> str:
    """Stage 1 over ``source`` (a relation with the spans columns): one row per GenAI span; ``carry``
    names extra columns of ``source`` to keep (``"_file, "``)."""
    return (
        SPAN_ROWS_SQL.replace("{source}", source)
        .replace("{carry}", carry)
        .replace("{markers}", _has_any_key(MARKERS))
        .replace("{max_value}", str(MAX_KEPT_VALUE))
    )


def trace_context_sql(source: str, carry: str = "") -> str:
    """The session / user / conversation rows of ``source``."""
    return (
        TRACE_CONTEXT_SQL.replace("{source}", source)
        .replace("{carry}", carry)
        .replace("{context_keys}", _has_any_key(CONTEXT_KEYS))
    )


def install_prices(con: duckdb.DuckDBPyConnection, prices: Prices) -> None:
    """Create (or replace) the ``_llm.prices`` table."""
    con.execute("CREATE SCHEMA IF NOT EXISTS _llm")
    frame = prices.frame[["model", "provider", "input", "output", "cached_input", "checked", "source"]]
    con.register("_prices_frame", frame)
    try:
        con.execute(
            "CREATE OR REPLACE TABLE _llm.prices AS SELECT model::VARCHAR AS model, "
            "provider::VARCHAR AS provider, input::DOUBLE AS input, output::DOUBLE AS output, cached_input::DOUBLE AS cached_input, "
            "TRY_CAST(checked AS DATE) AS checked, source::VARCHAR AS source FROM _prices_frame"
        )
    finally:
        con.unregister("_prices_frame")


def install_llm_view(con: duckdb.DuckDBPyConnection, prices: Prices) -> None:
    """The uncached form (the SQL page's worker): ``_llm.span_rows`` and ``_llm.trace_context`` are views
    over ``spans``, computed at query time; then the ``llm_calls`` view over them."""
    install_prices(con, prices)
    con.execute(f"CREATE OR REPLACE VIEW _llm.span_rows AS {span_rows_sql('spans')}")
    con.execute(f"CREATE OR REPLACE VIEW _llm.trace_context AS {trace_context_sql('spans')}")
    con.execute(llm_calls_sql("llm_calls"))


class LLMRowCache:
    """The Store's cached form: stage 1 kept in tables per Parquet file of ``spans``, so a query of
    ``llm_calls`` decodes the attribute maps of new files only (decoding them is most of the cost), and
    stage 2 kept in ``_llm.calls``, rebuilt from the cached rows when a file came or went.

    :meth:`sync` adds the rows of files that appeared and drops those of files that went (compaction
    replaces files); call it under the store's read lock, before a query that reads ``llm_calls``.
    """

    def __init__(
        self, con: duckdb.DuckDBPyConnection, root: Path | str, prices: Prices, fs: Any = None
    ) -> None:
        self.con = con
        self.root = root
        self.fs = fs  # the s3fs filesystem of an s3:// store (registered on ``con``)
        self._files: dict[str, tuple[Any, int]] = {}
        self._next_file_number = 0  # numbers the span files read, for the stage-1 row ids
        install_prices(con, prices)
        empty = "(SELECT *, ''::VARCHAR AS _file FROM _store_empty.spans)"
        # Every stage-1 row gets an id, so stage 2 can leave the attribute maps where they are: copying
        # ~100k maps into _llm.calls took longer than computing every other column of it (bench/explorer.py).
        con.execute(
            "CREATE OR REPLACE TABLE _llm.span_rows_by_file AS "
            f"SELECT *, 0::BIGINT AS _id FROM ({span_rows_sql(empty, '_file, ')}) LIMIT 0"
        )
        context = trace_context_sql(empty, "_file, ")
        con.execute(f"CREATE OR REPLACE TABLE _llm.trace_context_by_file AS {context} LIMIT 0")
        con.execute(
            "CREATE OR REPLACE VIEW _llm.span_rows AS SELECT * EXCLUDE (_file, _id) FROM _llm.span_rows_by_file"
        )
        con.execute(
            "CREATE OR REPLACE VIEW _llm.trace_context AS SELECT * EXCLUDE (_file) FROM _llm.trace_context_by_file"
        )
        # Stage 2 too is kept (rebuilt when a file came or went), so a query of llm_calls reads a table,
        # joined to its attribute maps by row id.
        lean = "(SELECT * EXCLUDE (_file, attributes) FROM _llm.span_rows_by_file)"
        con.execute(llm_calls_sql("_llm.calls_live", span_rows=lean, attributes="c._id"))
        con.execute("CREATE OR REPLACE TABLE _llm.calls AS SELECT * FROM _llm.calls_live LIMIT 0")
        columns = [row[0] for row in con.execute("DESCRIBE _llm.calls").fetchall()]
        select = ", ".join("r.attributes" if c == "_id" else f"c.{c}" for c in columns)
        con.execute(
            f"CREATE OR REPLACE VIEW llm_calls AS SELECT {select} "
            "FROM _llm.calls c LEFT JOIN _llm.span_rows_by_file r ON r._id = c._id"
        )

    def sync(self) -> None:
        """Bring the cached rows in line with the span files on disk now."""
        current: dict[str, tuple[Any, int]] = {}
        if isinstance(self.root, str):  # object storage: objects are written once, the ETag names the content
            found = self.fs.find(f"{self.root}/spans", detail=True)
            for key, info in found.items():
                if key.endswith(".parquet"):
                    current[f"s3://{key}"] = (info.get("ETag"), int(info.get("size") or 0))
        for path in () if isinstance(self.root, str) else (self.root / "spans").glob("**/*.parquet"):
            try:
                stat = path.stat()
            except FileNotFoundError:  # removed by a compaction between the listing and the stat
                continue
            current[str(path)] = (stat.st_mtime_ns, stat.st_size)
        gone = [f for f, sig in self._files.items() if current.get(f) != sig]
        new = [f for f, sig in current.items() if self._files.get(f) != sig]
        if gone:
            for table in ("_llm.span_rows_by_file", "_llm.trace_context_by_file"):
                self.con.execute(f"DELETE FROM {table} WHERE list_contains($files, _file)", {"files": gone})
        if new:
            # Each new file reads its Parquet once per stage-1 table (in parallel over files; a temporary
            # table of the GenAI spans first would scan on one thread). A row's id is its file's number and
            # its row in the file: a sequence (nextval) made the insert serial and took as long as the rest.
            quoted = ["'" + f.replace("'", "''") + "'" for f in sorted(new)]
            numbers = []
            for literal in quoted:
                self._next_file_number += 1
                numbers.append(f"({literal}, {self._next_file_number})")
            read = (
                f"read_parquet([{', '.join(quoted)}], hive_partitioning = true, "
                "union_by_name = true, filename = '_file', file_row_number = true)"
            )
            numbered = (
                f"(SELECT p.* EXCLUDE (file_row_number), (n.number::BIGINT << 40) + p.file_row_number AS _id "
                f"FROM {read} p JOIN (VALUES {', '.join(numbers)}) n(_file, number) ON n._file = p._file)"
            )
            self.con.execute(
                f"INSERT INTO _llm.span_rows_by_file BY NAME {span_rows_sql(numbered, '_file, _id, ')}"
            )
            context = trace_context_sql(f"(SELECT * FROM {read})", "_file, ")
            self.con.execute(f"INSERT INTO _llm.trace_context_by_file BY NAME {context}")
        if gone or new:
            self.con.execute("CREATE OR REPLACE TABLE _llm.calls AS SELECT * FROM _llm.calls_live")
        self._files = current
