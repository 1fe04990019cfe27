"""``python -m ingest import``: the command line over :class:`~ingest.sources.importer.Importer`."""

from __future__ import annotations

import gc
import sys
from typing import Any

from ingest.errors import ImportFileError
from ingest.sources.importer.importer import Importer
from ingest.sources.importer.reading import _expand
from ingest.sources.importer.report import DEFAULT_MAX_OBJECT_BYTES
from ingest.store import schema


def add_arguments(parser: Any) -> None:
    """Options of ``python -m ingest import``."""
    parser.add_argument("paths", nargs="+", metavar="PATH", help="files or directories to import")
    parser.add_argument(
        "--force",
        action="store_true",
        help="import files whose content was imported before (spans are still deduplicated)",
    )
    parser.add_argument(
        "--max-object-mb",
        type=float,
        default=DEFAULT_MAX_OBJECT_BYTES / (1 << 20),
        metavar="MB",
        help="largest JSON line, JSON document or protobuf message read into memory; a bigger one is "
        f"rejected and the rest of the file imported (default {DEFAULT_MAX_OBJECT_BYTES >> 20})",
    )
    bar = parser.add_mutually_exclusive_group()
    bar.add_argument(
        "--progress", dest="progress", action="store_true", default=None, help="show a progress bar"
    )
    bar.add_argument("--no-progress", dest="progress", action="store_false", help="never show a progress bar")
    parser.epilog = (
        "Exit status: 0 when everything was imported (or skipped as already imported), 1 when some "
        "input was rejected (see <store>/_rejected/), 2 when a file could not be read at all."
    )


def run(args: Any) -> int:
    """Import ``args.paths``; print what each file gave and every rejection with its line."""
    # The exact path makes a wrapper object per protobuf field it reads, all freed by reference
    # counting; collections every 700 allocations would cost it about a third (see ingest.sources.receiver).
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
    importer = Importer(
        args.store,
        force=args.force,
        progress=args.progress,
        max_object_bytes=int(args.max_object_mb * (1 << 20)),
    )
    status = 0
    totals: dict[str, int] = {}
    rejected = 0
    for path in _expand(args.paths):
        try:
            report = importer.import_file(path)
        except ImportFileError as exc:
            print(f"error: {exc}", file=sys.stderr)
            status = 2
            continue
        print(report.summary())
        for table, n in report.written.items():
            totals[table] = totals.get(table, 0) + n
        if report.rejected:
            rejected += report.rejected
            status = max(status, 1)
            for message in report.problems:
                print(f"  rejected {message}", file=sys.stderr)
            if report.rejected > len(report.problems):
                print(
                    f"  ... {report.rejected - len(report.problems)} more in {report.rejected_file}",
                    file=sys.stderr,
                )
    written = ", ".join(f"{totals[t]:,} {t}" for t in schema.TABLES if totals.get(t)) or "nothing"
    print(f"total: wrote {written} to {importer.root}" + (f"; {rejected:,} rejected" if rejected else ""))
    return status
