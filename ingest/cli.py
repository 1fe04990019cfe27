"""``python -m ingest <command>``: a registry of commands, each a module with its own options.

A command is one module that defines ``add_arguments(parser)`` and ``run(args) -> int`` (the exit
code); registering it is one line in :data:`COMMANDS`. Only the module of the command being run is
imported, so ``python -m ingest serve`` does not pay for DuckDB and ``--help`` is instant. Every
command gets ``--store DIR``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from ingest.errors import IngestError

#: command -> (module defining add_arguments/run, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "import": ("ingest.sources.importer", "import OTLP JSON / JSON Lines / protobuf and Jaeger JSON files"),
    "serve": ("ingest.sources.receiver", "receive OTLP/HTTP (traces, metrics, logs) into the store"),
    "compact": ("ingest.store.compact", "merge a day's small Parquet files into few large sorted ones"),
    "prune": (
        "ingest.store.prune",
        "remove whole day partitions older than an age (retention), locally or on s3://",
    ),
    "migrate": (
        "ingest.store.migrate",
        "rewrite files written before the portable layout (microsecond timestamps)",
    ),
    "demo": ("ingest.demo.cli", "run a simulated multi-agent LLM app through an incident into the store"),
}

STORE_HELP = "telemetry store directory (default: $LANGSWARM_TELEMETRY_DIR, else ./telemetry)"


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; ``command``'s own options are added (importing its module) when it is given."""
    parser = argparse.ArgumentParser(
        prog="python -m ingest",
        description="Ingest telemetry into a LangSwarm store.",
        epilog="Run 'python -m ingest COMMAND --help' for a command's options.",
    )
    parser.add_argument("--store", metavar="DIR", default=None, help=STORE_HELP)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--store", metavar="DIR", default=argparse.SUPPRESS, help=STORE_HELP)
        if name == command:
            module = importlib.import_module(module_name)
            module.add_arguments(sub)
            sub.set_defaults(run=module.run)
    return parser


def _command_of(argv: Sequence[str]) -> str | None:
    for token in argv:
        if token in COMMANDS:
            return token
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_command_of(argv))
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except IngestError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
