"""Query results as DataFrames: ``Store.sql`` against its Arrow paths, 100,000 and 1,000,000 spans.

    .venv/bin/python bench/frames.py [--store DIR] [--runs 3]

On bench/explorer.py's store (built there; pass the same ``--store``), times ``SELECT * FROM spans LIMIT n``
through ``Store.sql`` (pandas; maps, lists and structs Arrow-backed), ``Store.sql(arrow_dtypes=True)``,
``Store.arrow``, ``Store.polars`` and DuckDB's ``.df()`` (one Python dict per map cell: what ``Store.sql``
returned before). The baseline, in the same run, is DuckDB's own Arrow fetch of the
same query on the store's connection. Target (issue 17): 100k spans under 0.3 s, 1M under 3 s.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from timing import median

from explorer import open_store


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default=str(Path(tempfile.gettempdir()) / "langswarm-bench-explorer"))
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not (Path(args.store) / "BIG_TRACE").exists():
        print(f"{args.store} is not a bench store: run bench/explorer.py --store {args.store} first")
        return 2
    with open_store(args.store) as store:
        print(f"store {args.store}; median of {args.runs} runs")
        print(f"{'spans':>10}  {'way':<40}{'seconds':>9}{'x baseline':>12}")
        for n in (100_000, 1_000_000):
            query = f"SELECT * FROM spans LIMIT {n}"
            ways: list[tuple[str, Callable[[], object]]] = [
                ("baseline: DuckDB's Arrow fetch", lambda q=query: store.con.sql(q).to_arrow_table()),
                ("Store.arrow", lambda q=query: store.arrow(q)),
                ("Store.sql(arrow_dtypes=True)", lambda q=query: store.sql(q, arrow_dtypes=True)),
                ("Store.polars", lambda q=query: store.polars(q)),
                ("Store.sql", lambda q=query: store.sql(q)),
                ("DuckDB .df() (maps as Python dicts)", lambda q=query: store.con.sql(q).df()),
            ]
            base = None
            for name, function in ways:
                seconds = median(function, args.runs)
                base = base or seconds
                print(f"{n:>10,}  {name:<40}{seconds:>9.3f}{seconds / base:>11.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
