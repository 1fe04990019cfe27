"""Write CONVENTIONS.md: per set, what landed in the store (span names, GenAI attribute keys, events, log events).

Imports every set with the project's importer into a temporary store and asks DuckDB, so the summary shows
the data as the explorer sees it. Numbered keys are folded (``llm.input_messages.3.message.role`` ->
``llm.input_messages.N.message.role``). Run after ``record.py``:

    .venv/bin/python tests/data/genai/summarize.py
"""

from __future__ import annotations

import io
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))  # the repository root: ingest, explorer, tests

from explorer import open_store  # noqa: E402
from ingest.sources.importer import Importer  # noqa: E402
from tests import genai_fixtures  # noqa: E402

#: The attribute keys listed: every GenAI convention's namespaces, plus the session/user/error keys they share.
KEYS = r"^(gen_ai|llm|openinference|traceloop|input|output|embedding|session|user|error)\."
FOLD = r"regexp_replace(k, '\.[0-9]+(\.|$)', '.N\1', 'g')"


def summary(store: Path, service: str) -> list[str]:
    """Markdown lines for one set's service in the store."""
    db = open_store(store)
    lines = []
    names = db.sql(
        "SELECT scope_name, name, count(*) AS n FROM spans WHERE service_name = ? GROUP BY ALL "
        "ORDER BY scope_name, name",
        [service],
    )
    lines.append(
        "Spans (scope: name x count): "
        + "; ".join(f"`{r.scope_name}`: `{r.name}` x{r.n}" for r in names.itertuples())
    )
    keys = db.sql(
        f"""
        SELECT scope_name, list(DISTINCT {FOLD} ORDER BY {FOLD}) AS keys
        FROM (SELECT scope_name, unnest(map_keys(attributes)) AS k FROM spans WHERE service_name = ?)
        WHERE regexp_matches(k, ?)
        GROUP BY scope_name ORDER BY scope_name""",
        [service, KEYS],
    )
    for row in keys.itertuples():
        lines.append(f"- span attributes of `{row.scope_name}`: " + ", ".join(f"`{k}`" for k in row.keys))
    events = db.sql(
        """
        SELECT e.name AS event, count(*) AS n FROM (SELECT unnest(events) AS e FROM spans WHERE service_name = ?)
        GROUP BY ALL ORDER BY ALL""",
        [service],
    )
    if len(events):
        lines.append("- span events: " + ", ".join(f"`{r.event}` x{r.n}" for r in events.itertuples()))
    if (store / "logs").exists():
        logs = db.sql(
            """
            SELECT coalesce(event_name, attributes['event.name'], '(none)') AS event,
                   CASE WHEN event_name IS NOT NULL THEN 'event_name field' ELSE 'event.name attribute' END AS named_by,
                   body IS NULL OR body = '' AS empty_body, count(DISTINCT rid) AS n,
                   list(DISTINCT k ORDER BY k) AS keys
            FROM (SELECT *, unnest(map_keys(attributes)) AS k FROM (SELECT *, row_number() OVER () AS rid FROM logs WHERE service_name = ?))
            GROUP BY ALL ORDER BY ALL""",
            [service],
        )
        for row in logs.itertuples():
            body = "empty body, content in attributes" if row.empty_body else "content in the body"
            lines.append(
                f"- log records `{row.event}` x{row.n} (named by the {row.named_by}; {body}), attributes: "
                + ", ".join(f"`{k}`" for k in row.keys)
            )
    if (store / "metrics").exists():
        metrics = db.sql(
            "SELECT name, type, count(*) AS n FROM metrics WHERE service_name = ? GROUP BY ALL ORDER BY ALL",
            [service],
        )
        if len(metrics):
            lines.append(
                "- metrics: "
                + ", ".join(f"`{r.name}` ({r.type}, {r.n} points)" for r in metrics.itertuples())
            )
    return lines


def main() -> None:
    """Import every set, then write CONVENTIONS.md beside this script."""
    out = [
        "# What each GenAI fixture set puts in the store",
        "",
        "Written by `summarize.py` from the store after importing every set (numbered keys folded to `N`).",
        "",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp)
        for name in genai_fixtures.sets():
            Importer(store, progress=False, durable=False, log=io.StringIO()).import_paths(
                genai_fixtures.payload_files(name)
            )
        for name in genai_fixtures.sets():
            manifest = genai_fixtures.manifest(name)
            packages = ", ".join(
                f"{k} {v}" for k, v in manifest["packages"].items() if k not in ("httpx", "opentelemetry-api")
            )
            out += [
                f"## {name}",
                "",
                manifest["about"] + ".",
                "",
                f"Packages: {packages}.",
                (
                    f"Environment: {manifest['env'] or 'none'}; instrumentor options: "
                    f"{manifest['openllmetry_options'] or 'none'}; OTLP/HTTP {manifest['protocol']}."
                ),
                "",
            ]
            out += summary(store, manifest["service_name"]) + [""]
    (HERE / "CONVENTIONS.md").write_text("\n".join(out), encoding="utf-8")
    print(f"wrote {HERE / 'CONVENTIONS.md'}")


if __name__ == "__main__":
    main()
