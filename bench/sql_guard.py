"""What the guarded SQL path costs per query over the trusted path, on the explorer bench's 1M-span store.

    .venv/bin/python bench/sql_guard.py [--store DIR] [--runs 7]

The store is the one ``bench/explorer.py`` builds (run it first, or pass ``--store``). Baseline, in the
same run: the same query through ``store.sql`` (the trusted in-process path, no guard). The guard adds a
process hop (request, Arrow IPC result), the parse-tree check and the catalog comparison after each query.
Also printed: how long a worker takes to start (the first query after a time-limit kill or "Reload
store" pays it).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from timing import median

from explorer import open_store
from explorer.sql_guard import EXAMPLES, GuardedSQL

QUERIES = {
    "SELECT 1": "SELECT 1",
    "example: slowest operations (p95), 1M spans": EXAMPLES["Slowest operations (p95)"],
    "10,000 rows of spans, every column": "SELECT * FROM spans LIMIT 10000",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default=str(Path(tempfile.gettempdir()) / "langswarm-bench-explorer"))
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    if not (Path(args.store) / "BIG_TRACE").exists():
        print(f"{args.store} is not a bench store; run bench/explorer.py first or pass --store")
        return 2
    with open_store(args.store) as store:
        started = time.perf_counter()
        guard = GuardedSQL(store)
        print(f"worker start: {(time.perf_counter() - started) * 1000:.0f} ms ({guard.write_protection})")
        print(f"{'query':46s} {'trusted':>9s} {'guarded':>9s}  overhead")
        for label, sql in QUERIES.items():
            trusted = 1000 * median(lambda sql=sql: store.sql(sql), args.runs)
            guarded = 1000 * median(lambda sql=sql: guard.run(sql), args.runs)
            print(f"{label:46s} {trusted:7.1f} ms {guarded:7.1f} ms  {guarded - trusted:+.1f} ms")
        restart = 1000 * median(guard.refresh, 3)
        print(f"worker restart (refresh): {restart:.0f} ms")
        guard.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
