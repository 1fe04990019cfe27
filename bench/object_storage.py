"""The explorer's main pages on a store on a local S3 server vs the same store on local disk.

    .venv/bin/python bench/object_storage.py [--store DIR] [--runs 5]

Uploads the store (default: sample_data/) to moto's S3 server on 127.0.0.1 (a real HTTP S3 API, as the
tests use), opens it once through ``open_store("s3://...")`` (s3fs registered on one DuckDB connection)
and once from disk, and prints per page the median time of its query functions, cold (no Streamlit
cache), with the ratio S3 / disk. The baseline, in the same run, is the local-disk store. A local S3
server measures the protocol and listing cost, not a network: a real bucket adds its round trips.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from timing import median

from explorer import open_store, queries
from explorer.store import Store
from ingest.store import objectstore

REPO = Path(__file__).resolve().parent.parent


def _pages(trace_id: str) -> dict[str, Callable[[Store], Any]]:
    return {
        "overview": lambda s: (
            queries.store_overview(s),
            queries.red_summary(s),
            queries.telemetry_health(s),
        ),
        "traces": lambda s: queries.search_traces(s),
        "trace view": lambda s: (queries.trace_tree(s, trace_id), queries.trace_logs(s, trace_id)),
        "latency": lambda s: (queries.latency_percentiles(s), queries.latency_histogram(s)),
        "logs": lambda s: queries.search_logs(s),
        "metrics": lambda s: queries.metric_catalog(s),
        "profiles": lambda s: queries.profile_hotspots(s),
        "alerts": lambda s: queries.alert_events(s),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", type=Path, default=REPO / "sample_data")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}",
    )
    try:
        fs = objectstore.filesystem()
        fs.mkdir("s3://bench")
        files = sorted(args.store.glob("*/date=*/*.parquet"))
        started = time.perf_counter()
        for path in files:
            fs.put_file(str(path), f"s3://bench/store/{path.relative_to(args.store).as_posix()}")
        upload = time.perf_counter() - started
        size = sum(p.stat().st_size for p in files) / 1e6
        print(
            f"store: {args.store} ({len(files)} files, {size:.1f} MB); uploaded to s3://bench/store in {upload:.2f} s"
        )

        open_disk = median(lambda: open_store(args.store).close(), args.runs)
        open_s3 = median(lambda: open_store("s3://bench/store").close(), args.runs)
        disk, remote = open_store(args.store), open_store("s3://bench/store")
        trace_id = disk.sql("SELECT trace_id FROM spans GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1").iloc[
            0, 0
        ]
        print(f"{'page':<12} {'disk (s)':>9} {'S3 (s)':>9} {'S3/disk':>8}   median of {args.runs} runs")
        print(f"{'open store':<12} {open_disk:9.3f} {open_s3:9.3f} {open_s3 / open_disk:8.1f}")
        for page, function in _pages(trace_id).items():
            on_disk = median(lambda f=function: f(disk), args.runs)
            on_s3 = median(lambda f=function: f(remote), args.runs)
            print(f"{page:<12} {on_disk:9.3f} {on_s3:9.3f} {on_s3 / on_disk:8.1f}")
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
