"""``python -m explorer``: the terminal view of a store (ad-hoc SQL, trace trees, conversations, sessions, LLM
usage)."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import NoReturn

import pandas as pd

from explorer.errors import ExplorerError
from explorer.store import Store, default_store, open_store
from ingest.store.writer import STORE_ENV


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
    if args.format == "csv":
        frame.to_csv(sys.stdout, index=False)
        return 0
    if args.format == "json":
        frame.to_json(sys.stdout, orient="records", lines=True, date_format="iso", date_unit="ns")
        return 0
    with pd.option_context(
        "display.max_rows", args.max_rows, "display.max_columns", None, "display.width", 200
    ):
        print(frame.to_string(index=False, max_rows=args.max_rows) if not frame.empty else "(no rows)")
    return 0


def _cmd_trace(store: Store, args: argparse.Namespace) -> int:
    tree = store.trace(args.trace_id)
    print(render_trace(tree))
    if args.messages:
        from explorer.queries._sql import _as_dict
        from explorer.queries.messages import is_llm_span, messages

        for row in tree.itertuples(index=False):
            if is_llm_span(_as_dict(row.attributes)):
                print(f"\n== {row.name} [{row.service_name}] span {row.span_id}")
                print(render_messages(messages(store, args.trace_id, row.span_id), width=args.width))
    if args.logs:
        from explorer.queries.trace import log_summary, trace_logs

        logs = trace_logs(store, args.trace_id)
        print(f"\n== {len(logs)} log records")
        for log in logs.to_dict("records"):
            level = log.get("severity_text") if isinstance(log.get("severity_text"), str) else "-"
            print(f"{log['timestamp']:%H:%M:%S.%f}  {level:<5}  {log_summary(log, width=args.width)}")
    return 0


def render_messages(frame: pd.DataFrame, *, width: int = 2000) -> str:
    """A conversation (``explorer.queries.messages``) as text: one block per message, tool calls indented."""
    lines = []
    for row in frame.itertuples(index=False):
        if not row.recorded:
            lines.append(f"  ({row.direction}) {row.content}")
            continue
        head = f"  [{row.direction} {row.role}]"
        if row.tool_call_id:
            head += f" result of {row.tool_call_id}"
        if row.finish_reason:
            head += f" finish={row.finish_reason}"
        lines.append(head)
        if row.content:
            text = str(row.content)
            text = text if len(text) <= width else text[: width - 1] + "…"
            lines.extend("    " + part for part in text.splitlines() or [""])
        for call in row.tool_calls:
            lines.append(f"    -> {call.get('name')}({call.get('arguments')}) id={call.get('id')}")
    return "\n".join(lines)


def _cmd_sessions(store: Store, args: argparse.Namespace) -> int:
    from explorer.queries.sessions import session_traces, sessions

    if args.session_id:
        frame = session_traces(store, args.session_id, limit=args.limit)
        columns = [
            "turn",
            "trace_id",
            "start_time",
            "duration_ms",
            "llm_calls",
            "input_tokens",
            "output_tokens",
            "errors",
            "input",
            "answer",
        ]
    else:
        frame = sessions(store, user_id=args.user, limit=args.limit)
        columns = [
            "session_id",
            "user_id",
            "first_time",
            "last_time",
            "turns",
            "llm_calls",
            "total_tokens",
            "errors",
            "duration_ms",
        ]
    with pd.option_context("display.max_columns", None, "display.width", 200, "display.max_colwidth", 60):
        print(frame[columns].to_string(index=False) if not frame.empty else "(no sessions)")
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


def parse_ms(text: str) -> float:
    """Milliseconds from ``2s``, ``1.5 s``, ``250ms``, ``90us`` or a bare number (milliseconds)."""
    value = text.strip().lower().replace(" ", "")
    for suffix, factor in (("ms", 1.0), ("us", 1e-3), ("µs", 1e-3), ("ns", 1e-6), ("s", 1e3), ("m", 60e3)):
        if value.endswith(suffix):
            value, scale = value[: -len(suffix)], factor
            break
    else:
        scale = 1.0
    try:
        return float(value) * scale
    except ValueError:
        msg = f"{text!r} is not a duration; write e.g. 2s, 250ms or 1500 (milliseconds)"
        raise argparse.ArgumentTypeError(msg) from None


def _why_frames(store: Store, args: argparse.Namespace) -> dict[str, pd.DataFrame]:
    """The three why-slow views the ``why`` command prints, from the same query functions as the page."""
    from explorer.queries import compare_attributes, compare_structure, critical_path_summary

    condition = {
        "slower_than_ms": args.slower_than,
        "percentile": None if args.percentile is None else args.percentile / 100,
        "errors": args.errors,
        "predicate": args.where,
    }
    if not any(v for v in condition.values() if v is not None):
        condition["percentile"] = 0.95
    frames: dict[str, pd.DataFrame] = {}
    if args.view in ("all", "attributes"):
        frames["attributes"] = compare_attributes(
            store, operation=args.operation, scope=args.scope, values=args.values, limit=args.top, **condition
        )
    if args.view in ("all", "structure"):
        frames["structure"] = compare_structure(
            store, operation=args.operation, slow=args.traces, fast=args.traces, limit=args.top
        )
    if args.view in ("all", "critical"):
        threshold = frames["attributes"].attrs.get("threshold_ms") if "attributes" in frames else None
        frames["critical_path"] = critical_path_summary(
            store, operation=args.operation, min_duration_ms=threshold, limit=args.top
        )
    return frames


_WHY_COLUMNS = {
    "attributes": [
        "rank",
        "key",
        "value",
        "selection_share",
        "baseline_share",
        "diff",
        "selection_count",
        "baseline_count",
        "kind",
        "example_trace_id",
    ],
    "structure": [
        "path",
        "self_diff_ms",
        "count_diff",
        "slow_count",
        "fast_count",
        "slow_self_ms",
        "fast_self_ms",
        "total_diff_ms",
        "example_trace_id",
    ],
    "critical_path": [
        "service_name",
        "name",
        "share",
        "on_path_pct",
        "mean_ms",
        "p95_ms",
        "traces",
        "example_trace_id",
    ],
}


def _cmd_why(store: Store, args: argparse.Namespace) -> int:
    frames = _why_frames(store, args)
    if args.format == "json":
        out = {}
        for name, frame in frames.items():
            out[name] = {
                "message": frame.attrs.get("message", ""),
                "rows": json.loads(frame.to_json(orient="records", date_format="iso")),
                **{k: v for k, v in frame.attrs.items() if k != "message"},
            }
        print(json.dumps(out, indent=2, ensure_ascii=False, default=str))
        return 0
    for name, frame in frames.items():
        if args.format == "csv":
            print(f"# {name}")
            frame.to_csv(sys.stdout, index=False)
            print()
            continue
        attrs = frame.attrs
        title = {
            "attributes": f"Attributes: {attrs.get('selection', 0):,} spans {attrs.get('condition', '')} vs "
            f"{attrs.get('baseline', 0):,} others",
            "structure": f"Structure: {attrs.get('slow', 0)} slowest vs {attrs.get('fast', 0)} typical "
            f"traces",
            "critical_path": f"Critical path of {attrs.get('traces', 0):,} traces",
        }[name]
        print(f"== {title}")
        if attrs.get("message"):
            print(attrs["message"])
        else:
            shown = frame[[c for c in _WHY_COLUMNS[name] if c in frame.columns or c == "path"]]
            options = ("display.max_colwidth", 90, "display.width", 250, "display.max_columns", None)
            with pd.option_context(*options):
                print(shown.to_string(index=False, float_format=lambda v: f"{v:,.3f}"))
        print()
    return 0


def _since(value: str | None, store: Store) -> object:
    """``--since``: an ISO date/time, or a duration (``90s``, ``30m``, ``6h``, ``7d``) back from the
    newest span."""
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
    end = args.until or None
    usage = llm_usage(store, by=args.by, start=start, end=end, order=args.order, limit=args.limit)
    usage = usage.drop(columns=["first_call", "last_call", "llm_time_ms"]).rename(columns={"group": args.by})
    if args.format == "csv":
        print(usage.to_csv(index=False), end="")
        return 0
    if args.format == "json":
        print(usage.to_json(orient="records", indent=2, date_format="iso"))
        return 0
    totals = llm_totals(store, start=start, end=end)
    if not totals["calls"]:
        print("no LLM calls in this store" + (" for this time range" if start or args.until else ""))
        return 0
    tokens = "unknown" if totals["total_tokens"] is None else f"{int(totals['total_tokens']):,}"
    cost = "unknown" if totals["cost_usd"] is None else f"${totals['cost_usd']:,.4f}"
    print(
        f"{totals['calls']:,} LLM calls, {totals['errors']:,} errors, {tokens} tokens, {cost}"
        + (f"; {totals['unknown_usage']:,} calls with unknown usage" if totals["unknown_usage"] else "")
        + (f"; {totals['unpriced_calls']:,} unpriced calls (no price)" if totals["unpriced_calls"] else "")
    )
    shown = usage.astype(object).where(usage.notna(), "unknown")
    with pd.option_context("display.max_rows", None, "display.max_columns", None, "display.width", 250):
        print(shown.to_string(index=False, float_format=lambda v: f"{v:,.4f}"))
    return 0


def app_command(args: argparse.Namespace) -> list[str]:
    """The command ``python -m explorer app`` runs: ``streamlit run`` on the installed package's app file,
    so the app starts from any directory (``streamlit run explorer`` needs this repository's folder)."""
    script = Path(__file__).resolve().parent / "streamlit_app.py"
    command = [sys.executable, "-m", "streamlit", "run", str(script), "--server.port", str(args.port)]
    if args.headless:
        command += ["--server.headless", "true"]
    if args.store is not None:
        command += ["--", "--store", str(args.store)]
    return command


def _run_app(args: argparse.Namespace) -> NoReturn:
    """Become the Streamlit server (exec, not a child process), so Ctrl-C or a SIGTERM stops the server
    itself rather than leaving it running behind its parent."""
    command = app_command(args)
    os.execv(command[0], command)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m explorer", description=__doc__)
    store_option = argparse.ArgumentParser(add_help=False)
    store_option.add_argument(
        "--store",
        metavar="DIR",
        default=None,
        help="telemetry store directory (default: $LANGSWARM_TELEMETRY_DIR, else ./telemetry, else the "
        "repository's sample store: the app's rule)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    app = commands.add_parser(
        "app", parents=[store_option], help="start the explorer app (streamlit) from any directory"
    )
    app.add_argument("--port", type=int, default=8501, help="port to serve on (default 8501)")
    app.add_argument("--headless", action="store_true", help="do not open a browser")
    sql = commands.add_parser("sql", parents=[store_option], help="run a DuckDB query over the store's views")
    sql.add_argument("query", help="SQL over the views spans, logs, metrics, profiles, alerts")
    sql.add_argument("--max-rows", type=int, default=100, help="rows to print as a table (default 100)")
    sql.add_argument(
        "--format",
        choices=["table", "csv", "json"],
        default="table",
        help="table (default, cut at --max-rows), or every row as csv or JSON Lines (for pipes and files)",
    )
    sql.add_argument(
        "--guarded",
        action="store_true",
        help="run through the explorer's guarded path (read-only, row cap, time limit), as the SQL page does",
    )
    sql.set_defaults(run=_cmd_sql)
    trace = commands.add_parser("trace", parents=[store_option], help="print one trace as an indented tree")
    trace.add_argument("trace_id", help="32-hex-digit trace id")
    trace.add_argument("--messages", action="store_true", help="print the conversation of every LLM span")
    trace.add_argument("--logs", action="store_true", help="print the trace's log records (event names too)")
    trace.add_argument(
        "--width", type=int, default=2000, help="cut each message or log line at this many characters"
    )
    trace.set_defaults(run=_cmd_trace)
    sessions = commands.add_parser(
        "sessions",
        parents=[store_option],
        help="list sessions (session.id / gen_ai.conversation.id), or one session's turns",
    )
    sessions.add_argument("session_id", nargs="?", help="show this session's turns instead of the list")
    sessions.add_argument("--user", default=None, help="only sessions of this user id")
    sessions.add_argument("--limit", type=int, default=50, help="rows to print (default 50)")
    sessions.set_defaults(run=_cmd_sessions)
    export = commands.add_parser("export", parents=[store_option], help="write one trace as OTLP JSON")
    export.add_argument("trace_id", help="32-hex-digit trace id")
    export.add_argument("-o", "--output", default="-", help="file to write (default: standard output)")
    export.set_defaults(run=_cmd_export)
    why = commands.add_parser(
        "why",
        parents=[store_option],
        help="why were an operation's spans slow or failing: attributes, structure, critical path",
    )
    why.add_argument("--operation", required=True, help="span name, e.g. 'POST /v1/chat'")
    chosen = why.add_mutually_exclusive_group()
    chosen.add_argument("--slower-than", type=parse_ms, metavar="DURATION", help="e.g. 2s, 250ms")
    chosen.add_argument(
        "--percentile", type=float, metavar="P", help="slower than the P-th percentile (the default, 95)"
    )
    chosen.add_argument("--errors", action="store_true", help="spans with status ERROR")
    chosen.add_argument("--where", metavar="SQL", help="a condition over spans columns: \"kind = 'CLIENT'\"")
    why.add_argument("--scope", choices=["trace", "span"], default="trace", help="whole traces or spans")
    why.add_argument("--view", choices=["all", "attributes", "structure", "critical"], default="all")
    why.add_argument("--traces", type=int, default=100, help="slowest and typical traces (default 100 each)")
    why.add_argument("--top", type=int, default=10, help="keys / paths / operations shown (default 10)")
    why.add_argument("--values", type=int, default=3, help="values shown per attribute key (default 3)")
    why.add_argument("--format", choices=["table", "csv", "json"], default="table")
    why.set_defaults(run=_cmd_why)
    llm = commands.add_parser(
        "llm",
        parents=[store_option],
        help="LLM calls: calls, errors, tokens, cost and latency per model, agent, ...",
    )
    llm.add_argument(
        "--by",
        default="model",
        help="model (default), request_model, provider, service, agent, session, user, conversation, trace, "
        "operation, kind, convention, or an attribute key",
    )
    llm.add_argument("--since", help="a duration back from the newest span (30m, 6h, 7d) or an ISO date/time")
    llm.add_argument("--until", help="an ISO date/time (default: no end)")
    llm.add_argument(
        "--order", default="cost", choices=["cost", "tokens", "calls", "slowest", "errors", "llm_time"]
    )
    llm.add_argument("--limit", type=int, default=50, help="rows (default 50)")
    llm.add_argument("--format", default="table", choices=["table", "csv", "json"])
    llm.add_argument(
        "--prices",
        metavar="FILE",
        help="a prices CSV that extends the shipped list (default: $LANGSWARM_PRICES)",
    )
    llm.set_defaults(run=_cmd_llm)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "app":
        return _run_app(args)
    path, reason = default_store(args.store)
    if reason == "sample store":
        print(f"(no --store, ${STORE_ENV} or ./telemetry: reading the sample store {path})", file=sys.stderr)
    try:
        with open_store(path, prices=getattr(args, "prices", None)) as store:
            return args.run(store, args)
    except ExplorerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # `python -m explorer trace ID | head`: the reader left; stop quietly, as Unix tools do. Point
        # stdout at devnull so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as exc:  # DuckDB errors: show the message, not a traceback
        if type(exc).__module__.startswith(("duckdb", "_duckdb")):
            print(f"error: {exc}", file=sys.stderr)
            return 2
        raise
