"""``python -m explorer``: the terminal view of a store (ad-hoc SQL, trace trees, LLM usage)."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from datetime import timedelta

import pandas as pd

from explorer.errors import ExplorerError
from explorer.store import Store, open_store


def format_duration(ns: float | None) -> str:
    """Human duration of a nanosecond count: ``850 ns``, ``12.3 µs``, ``4.56 ms``, ``2.1 s``."""
    if ns is None or ns != ns:
        return "unfinished"
    if ns < 1_000:
        return f"{int(ns)} ns"
    if ns < 1_000_000:
        return f"{ns / 1_000:.1f} µs"
    if ns < 1_000_000_000:
        return f"{ns / 1_000_000:.2f} ms"
    return f"{ns / 1_000_000_000:.2f} s"


def render_trace(tree: pd.DataFrame) -> str:
    """An indented text tree of a trace (output of ``Store.trace``): name, service, duration, status."""
    lines = []
    for row in tree.itertuples(index=False):
        status = (
            row.status_code if row.status_code != "ERROR" else f"ERROR {row.status_message or ''}".rstrip()
        )
        orphan = "  (parent missing)" if getattr(row, "orphan", False) else ""
        lines.append(
            f"{'  ' * int(row.depth)}{row.name}  [{row.service_name}]  "
            f"{format_duration(row.duration_ns)}  {status}{orphan}"
        )
    return "\n".join(lines)


def _cmd_sql(store: Store, args: argparse.Namespace) -> int:
    if args.guarded:
        from explorer.sql_guard import GuardedSQL

        result = GuardedSQL(store).run(args.query)
        frame = result.frame
        if result.truncated:
            print(f"(cut at {result.max_rows} rows)", file=sys.stderr)
    else:
        frame = store.sql(args.query)
    with pd.option_context(
        "display.max_rows", args.max_rows, "display.max_columns", None, "display.width", 200
    ):
        print(frame.to_string(index=False, max_rows=args.max_rows) if not frame.empty else "(no rows)")
    return 0


def _cmd_trace(store: Store, args: argparse.Namespace) -> int:
    print(render_trace(store.trace(args.trace_id)))
    return 0


def _cmd_export(store: Store, args: argparse.Namespace) -> int:
    from explorer.otlp_export import trace_to_otlp_json

    text = trace_to_otlp_json(store.trace(args.trace_id), indent=2)
    if args.output == "-":
        print(text)
    else:
        with open(args.output, "w", encoding="utf-8") as sink:
            sink.write(text)
    return 0


def _since(value: str | None, store: Store) -> object:
    """``--since``: an ISO date/time, or a duration (``90s``, ``30m``, ``6h``, ``7d``) back from the newest span."""
    if not value:
        return None
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", value)
    if match is None:
        return value  # an ISO timestamp; the query layer says what is wrong with a bad one
    seconds = float(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
    from explorer.queries import time_bounds

    _first, last = time_bounds(store)
    if last is None:
        return None
    return last - timedelta(seconds=seconds) + timedelta(microseconds=1)


def _cmd_llm(store: Store, args: argparse.Namespace) -> int:
    from explorer.queries.llm import llm_totals, llm_usage

    start = _since(args.since, store)
    usage = llm_usage(store, by=args.by, start=start, end=args.until or None, order=args.order, limit=args.limit)
    usage = usage.drop(columns=["first_call", "last_call", "llm_time_ms"]).rename(columns={"group": args.by})
    if args.format == "csv":
        print(usage.to_csv(index=False), end="")
        return 0
    if args.format == "json":
        print(usage.to_json(orient="records", indent=2, date_format="iso"))
        return 0
    totals = llm_totals(store, start=start, end=args.until or None)
    if not totals["calls"]:
        print("no LLM calls in this store" + (" for this time range" if start or args.until else ""))
        return 0
    tokens = "unknown" if totals["total_tokens"] is None else f"{int(totals['total_tokens']):,}"
    cost = "unknown" if totals["cost_usd"] is None else f"${totals['cost_usd']:,.4f}"
    print(
        f"{totals['calls']:,} LLM calls, {totals['errors']:,} errors, {tokens} tokens, {cost}"
        + (f"; {totals['unknown_usage']:,} calls with unknown usage" if totals["unknown_usage"] else "")
        + (f"; {totals['unpriced_calls']:,} unpriced calls (cost unknown)" if totals["unpriced_calls"] else "")
    )
    shown = usage.astype(object).where(usage.notna(), "unknown")
    with pd.option_context("display.max_rows", None, "display.max_columns", None, "display.width", 250):
        print(shown.to_string(index=False, float_format=lambda v: f"{v:,.4f}"))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m explorer", description=__doc__)
    store_option = argparse.ArgumentParser(add_help=False)
    store_option.add_argument(
        "--store",
        metavar="DIR",
        default=None,
        help="telemetry store directory (default: $LANGSWARM_TELEMETRY_DIR, else ./telemetry)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sql = commands.add_parser("sql", parents=[store_option], help="run a DuckDB query over the store's views")
    sql.add_argument("query", help="SQL over the views spans, logs, metrics, profiles, alerts")
    sql.add_argument("--max-rows", type=int, default=100, help="rows to print (default 100)")
    sql.add_argument(
        "--guarded",
        action="store_true",
        help="run through the explorer's guarded path (read-only, row cap, time limit), as the SQL page does",
    )
    sql.set_defaults(run=_cmd_sql)
    trace = commands.add_parser("trace", parents=[store_option], help="print one trace as an indented tree")
    trace.add_argument("trace_id", help="32-hex-digit trace id")
    trace.set_defaults(run=_cmd_trace)
    export = commands.add_parser("export", parents=[store_option], help="write one trace as OTLP JSON")
    export.add_argument("trace_id", help="32-hex-digit trace id")
    export.add_argument("-o", "--output", default="-", help="file to write (default: standard output)")
    export.set_defaults(run=_cmd_export)
    llm = commands.add_parser(
        "llm", parents=[store_option], help="LLM calls: calls, errors, tokens, cost and latency per model, agent, ..."
    )
    llm.add_argument(
        "--by",
        default="model",
        help="model (default), request_model, provider, service, agent, session, user, conversation, trace, "
        "operation, kind, convention, or an attribute key",
    )
    llm.add_argument("--since", help="a duration back from the newest span (30m, 6h, 7d) or an ISO date/time")
    llm.add_argument("--until", help="an ISO date/time (default: no end)")
    llm.add_argument("--order", default="cost", choices=["cost", "tokens", "calls", "slowest", "errors", "llm_time"])
    llm.add_argument("--limit", type=int, default=50, help="rows (default 50)")
    llm.add_argument("--format", default="table", choices=["table", "csv", "json"])
    llm.add_argument(
        "--prices", metavar="FILE", help="a prices CSV that extends the shipped list (default: $LANGSWARM_PRICES)"
    )
    llm.set_defaults(run=_cmd_llm)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with open_store(args.store, prices=getattr(args, "prices", None)) as store:
            return args.run(store, args)
    except ExplorerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # DuckDB errors: show the message, not a traceback
        if type(exc).__module__.startswith(("duckdb", "_duckdb")):
            print(f"error: {exc}", file=sys.stderr)
            return 2
        raise
