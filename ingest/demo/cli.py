"""``python -m ingest demo``: run the simulated multi-agent application into a store."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ingest.demo.scenario import DEFAULT_TIME_SCALE, MAX_RATE, SCALES

DESCRIPTION = (
    "Run a simulated LangSwarm multi-agent application (gateway, orchestrator with planner/researcher/writer "
    "agents, tool service) on 127.0.0.1, instrumented with this SDK, through an incident (a slow LLM provider "
    "and a failing search tool), and write its telemetry to the store."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``demo`` command's options (``--store`` is added by the command registry, ingest/cli.py)."""
    parser.add_argument(
        "--seed", type=int, default=7, help="scenario seed: same seed, same requests and faults (default 7)"
    )
    parser.add_argument(
        "--scale",
        default="small",
        help=f"number of user requests, or {' / '.join(f'{k} ({v})' for k, v in SCALES.items())} "
        "(default small)",
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=DEFAULT_TIME_SCALE,
        metavar="F",
        help=f"real seconds slept per modelled second (default {DEFAULT_TIME_SCALE:g} = 1:"
        f"{1 / DEFAULT_TIME_SCALE:g})",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help=f"user requests sent per real second (default: {MAX_RATE:g}, or fewer so a run lasts 10 s)",
    )
    parser.add_argument("--quiet", action="store_true", help="print only the final summary")


def run(args: argparse.Namespace) -> int:
    """Run the demo with parsed options; returns the exit status."""
    from ingest.demo.runner import run_demo
    from ingest.errors import ConfigurationError

    echo = None if args.quiet else (lambda line: print(line, flush=True))
    try:
        result = run_demo(
            getattr(args, "store", None),
            seed=args.seed,
            scale=args.scale,
            time_scale=args.time_scale,
            rate=args.rate,
            echo=echo,
        )
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(result.summary())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m ingest.demo``."""
    parser = argparse.ArgumentParser(prog="python -m ingest.demo", description=DESCRIPTION)
    parser.add_argument(
        "--store",
        metavar="DIR",
        default=None,
        help="store directory (default: $LANGSWARM_TELEMETRY_DIR, else ./telemetry)",
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))
