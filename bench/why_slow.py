"""Why-slow queries on bench/explorer.py's 1,000,000-span store: attribute comparison, structural diff,
aggregated critical path.

    .venv/bin/python bench/why_slow.py [--store DIR] [--runs 5]

Uses (and builds once, if missing) the same store as ``bench/explorer.py``: 99,000 ten-span traces over
a week, half with root ``POST /checkout``, plus one 10,000-span trace. Prints the median of ``runs`` cold
runs of each function for one root operation (50,000 traces, 500,000 spans), and the ratio to the
baseline measured in the same run: a bare DuckDB scan of the span columns the queries read
(``trace_id, span_id, parent_span_id, name, start_time, end_time, duration_ns``). Targets
(issue 15): attribute comparison under 2 s, 100 vs 100 structural diff under 2 s, critical path over all
traces of one operation under 3 s.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from timing import median

import explorer as x
from explorer import open_store

OPERATION = "POST /checkout"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default=str(Path(tempfile.gettempdir()) / "langswarm-bench-explorer"))
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    root = Path(args.store)
    if not (root / "BIG_TRACE").exists():
        path = Path(__file__).with_name("explorer.py")
        spec = importlib.util.spec_from_file_location("bench_explorer", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        started = time.perf_counter()
        module.build(root)
        print(f"built the bench store in {time.perf_counter() - started:.1f} s at {root}")
    store = open_store(root)
    spans = int(store.sql("SELECT count(*) AS n FROM spans").n[0])
    cases: dict[str, Callable[[], object]] = {
        "baseline: scan of the span columns": lambda: store.sql(
            "SELECT count(DISTINCT trace_id), count(span_id), count(parent_span_id), count(name), "
            "max(start_time), max(end_time), sum(duration_ns) FROM spans"
        ),
        "compare_attributes, p95, trace scope": lambda: x.compare_attributes(
            store, operation=OPERATION, percentile=0.95
        ),
        "compare_attributes, p95, span scope": lambda: x.compare_attributes(
            store, operation=OPERATION, percentile=0.95, scope="span"
        ),
        "compare_attributes, errors, predicate": lambda: x.compare_attributes(
            store, operation=OPERATION, errors=True, predicate="attributes['http.route'] = '/checkout'"
        ),
        "compare_structure, 100 vs 100": lambda: x.compare_structure(
            store, operation=OPERATION, slow=100, fast=100
        ),
        "critical_path_summary, all traces": lambda: x.critical_path_summary(store, operation=OPERATION),
        "critical_path_summary by path": lambda: x.critical_path_summary(
            store, operation=OPERATION, by="path"
        ),
    }
    big = (root / "BIG_TRACE").read_text().strip()
    cases["compare_structure, the 10,000-span trace"] = lambda: x.compare_structure(
        store, operation="agent.run", slow=[big], fast=[big]
    )
    cases["critical_path_spans, the 10,000-span trace"] = lambda: x.critical_path_spans(
        store, operation="agent.run", trace_ids=[big]
    )
    roots = "SELECT count(*) AS n FROM spans WHERE parent_span_id IS NULL AND name = ?"
    traces = int(store.sql(roots, [OPERATION]).n[0])
    print(f"{spans:,} spans; {traces:,} traces with root {OPERATION!r}; median of {args.runs} runs")
    base = None
    for label, function in cases.items():
        seconds = median(function, args.runs)
        base = base or seconds
        print(f"{label:<42} {seconds:7.3f} s  {seconds / base:6.1f}x baseline")
    return 0


if __name__ == "__main__":
    sys.exit(main())
