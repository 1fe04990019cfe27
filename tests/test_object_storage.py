"""Stores on S3-compatible object storage, against a real S3 API server (moto's server mode on 127.0.0.1):
the SDK writer, the receiver and the importer write ``s3://``, the explorer's query functions and the app read
it, and every result equals the same data on local disk; a writer SIGKILLed mid-upload leaves no object."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import requests
from streamlit.testing.v1 import AppTest

from explorer import open_store, queries
from ingest import ObservabilityProvider
from ingest.errors import StoreError
from ingest.sources.importer import Importer
from ingest.store import objectstore
from ingest.store.compact import Compactor

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "sample_data"
DATA = REPO / "tests" / "data"
APP = str(REPO / "explorer" / "streamlit_app.py")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """sample_data/ compacted into one file per table and day (5 objects instead of 47): every request to
    the S3 server costs, and the comparisons below hold for any file layout of the same rows."""
    copy = tmp_path_factory.mktemp("sample") / "store"
    shutil.copytree(SAMPLE, copy, ignore=shutil.ignore_patterns("_*", "README.md"))
    Compactor(copy).run()
    return copy


def _upload(local: Path, url: str) -> None:
    """A local store's table files, as they are, under ``url``."""
    fs = objectstore.filesystem()
    for path in sorted(local.glob("*/date=*/*.parquet")):
        fs.put_file(str(path), f"{url}/{path.relative_to(local).as_posix()}")


def _frames_equal(left: Any, right: Any) -> None:
    """Equal results; rows are compared as a multiset (ties in a query's ORDER BY may come in file order)."""
    if isinstance(left, pd.DataFrame):
        assert list(left.columns) == list(right.columns) and left.dtypes.equals(right.dtypes)
        # Sums of floats may differ in the last bit with the order files are read in: compare those to 1e-9.
        keys = [c for c in left.columns if not pd.api.types.is_float_dtype(left[c])]
        ordered = [
            frame.assign(_key=frame[keys].map(str).agg("|".join, axis=1) if keys else "")
            .sort_values(["_key", *[c for c in frame.columns if c not in keys]])
            .drop(columns="_key")
            .reset_index(drop=True)
            for frame in (left, right)
        ]
        pd.testing.assert_frame_equal(*ordered, check_exact=False, rtol=1e-9)
    elif isinstance(left, dict):
        assert left.keys() == right.keys()
        assert all(
            v == pytest.approx(right[k], rel=1e-9) if isinstance(v, float) else v == right[k]
            for k, v in left.items()
        )
    else:
        assert left == right


def _rows(store: Any, sql: str) -> pd.DataFrame:
    return store.sql(sql).astype(str)


# --------------------------------------------------------------------------- explorer


def test_query_functions_on_s3_equal_local_disk(bucket: str, sample: Path) -> None:
    url = f"s3://{bucket}/prod"
    _upload(sample, url)
    remote, local = open_store(url), open_store(sample)
    assert isinstance(remote.root, str) and remote.root == url
    trace_id = local.sql("SELECT trace_id FROM spans GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1").iloc[0, 0]
    calls = [
        (queries.store_overview, (), {}),
        (queries.time_bounds, (), {}),
        (queries.red_summary, (), {}),
        (queries.search_traces, (), {}),
        (queries.trace_tree, (trace_id,), {}),
        (queries.trace_logs, (trace_id,), {}),
        (queries.latency_percentiles, (), {}),
        (queries.search_logs, (), {}),
        (queries.metric_catalog, (), {}),
        (queries.alert_events, (), {}),
        (queries.llm_usage, (), {}),
        (queries.llm_totals, (), {}),
        (queries.llm_calls, (), {"order": "recent", "limit": 100_000}),
    ]
    for function, args, kwargs in calls:
        _frames_equal(function(remote, *args, **kwargs), function(local, *args, **kwargs))
    # Hotspots name one example span per function, any of the tied ones: compare everything else.
    example = ["trace_id", "span_id"]
    _frames_equal(
        queries.profile_hotspots(remote).drop(columns=example),
        queries.profile_hotspots(local).drop(columns=example),
    )
    # A one-day query reads that day's objects only (hive partition pruning through s3fs).
    day = "SELECT count(*) AS n FROM spans WHERE date = DATE '2026-11-24'"
    _frames_equal(remote.sql(day), local.sql(day))


def test_the_app_opens_an_s3_store_with_the_local_page_results(
    bucket: str, sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"s3://{bucket}/app"
    _upload(sample, url)
    texts = {}
    for store in (url, str(sample)):
        monkeypatch.setenv("LANGSWARM_TELEMETRY_DIR", store)
        at = AppTest.from_file(APP, default_timeout=120)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        pages = {}
        for page in ("overview", "traces", "latency", "logs"):
            at.switch_page(f"app_pages/{page}.py")
            at.run()
            assert not at.exception, (store, page, [e.value for e in at.exception])
            pages[page] = [m.value for m in at.metric] + [len(df.value) for df in at.dataframe]
        at.switch_page("app_pages/sql.py")
        at.run()
        pages["sql_error"] = [e.value for e in at.error]
        texts[store] = pages
    remote, local = texts[url], texts[str(sample)]
    assert remote["sql_error"] and "object storage" in remote["sql_error"][0] and not local["sql_error"]
    for page in ("overview", "traces", "latency", "logs"):
        assert remote[page] == local[page] and remote[page], page


# --------------------------------------------------------------------------- writers


def _sdk_run(store: str) -> None:
    provider = ObservabilityProvider.create(
        {"store": {"path": store, "durable": False}, "logging": {"output": "none"}}, "s3-sdk"
    )
    try:
        tracer = provider.get_tracer("checkout")
        t0 = 1_795_536_667_000_000_000
        for i in range(50):
            span = tracer.start_span(f"op-{i % 5}", start_time=t0 + i * 1_000_003)
            span.set_attribute("i", i)
            span.end(end_time=t0 + i * 1_000_003 + 7_000 * (i + 1))
    finally:
        provider.shutdown()


def test_sdk_writer_to_s3_equals_local(bucket: str, tmp_path: Path) -> None:
    url = f"s3://{bucket}/sdk"
    _sdk_run(url)
    _sdk_run(str(tmp_path / "local"))
    sql = "SELECT name, attributes['i'] AS i, start_time, start_time_unix_nano, duration_ns FROM spans ORDER BY 4"
    remote, local = _rows(open_store(url), sql), _rows(open_store(tmp_path / "local"), sql)
    assert len(remote) == 50
    pd.testing.assert_frame_equal(remote, local)
    assert not objectstore.filesystem().glob(f"{url}/**/*.tmp")  # no temporary names on S3


def test_import_into_s3_equals_local_and_a_second_import_is_a_no_op(bucket: str, tmp_path: Path) -> None:
    url = f"s3://{bucket}/imported"
    files = [DATA / "trace.json", DATA / "logs.json", DATA / "metrics.json", DATA / "jaeger.json"]
    remote_reports = Importer(url, progress=False).import_paths(files)
    local_reports = Importer(tmp_path / "local", progress=False, durable=False).import_paths(files)
    assert [r.written for r in remote_reports] == [r.written for r in local_reports]
    for table in ("spans", "logs", "metrics"):
        sql = f"SELECT * EXCLUDE (date) FROM {table} ORDER BY ALL"
        pd.testing.assert_frame_equal(_rows(open_store(url), sql), _rows(open_store(tmp_path / "local"), sql))
    again = Importer(url, progress=False).import_paths(files)
    assert all(r.skipped for r in again), [r.__dict__ for r in again]
    # The ledger of an s3:// store lives in its local control folder.
    assert (objectstore.control_dir(url) / "_imports" / "ledger.jsonl").is_file()


def _serve(store: str) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "ingest", "serve", "--store", store, "--port", "0", "--flush-interval", "60"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    line = process.stdout.readline()
    assert "listening on http://127.0.0.1:" in line, (
        line,
        process.stderr.read() if process.poll() is not None else "",
    )
    return process, line.split("listening on ", 1)[1].split(" ", 1)[0]


def test_receiver_into_s3_equals_local(bucket: str, tmp_path: Path) -> None:
    url = f"s3://{bucket}/received"
    for store in (url, str(tmp_path / "local")):
        process, address = _serve(store)
        try:
            for path, route in ((DATA / "trace.json", "traces"), (DATA / "logs.json", "logs")):
                response = requests.post(
                    f"{address}/v1/{route}",
                    data=path.read_bytes(),
                    headers={"Content-Type": "application/json"},
                    timeout=30,
                )
                assert response.status_code == 200, response.text
        finally:
            process.send_signal(signal.SIGTERM)
            _, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
    for table in ("spans", "logs"):
        sql = f"SELECT * EXCLUDE (date) FROM {table} ORDER BY ALL"
        remote, local = _rows(open_store(url), sql), _rows(open_store(tmp_path / "local"), sql)
        assert len(remote) > 0
        pd.testing.assert_frame_equal(remote, local)


_KILLED_WRITER = """
import os, sys, numpy as np, pyarrow as pa
from ingest.store.encoding import table_from_columns
from ingest.store.writer import StoreWriter
n = 80_000
blob = np.random.default_rng(1).bytes(n * 1000)
body = pa.StringArray.from_buffers(n, pa.py_buffer(np.arange(0, (n + 1) * 1000, 1000, dtype=np.int32)),
                                   pa.py_buffer(np.frombuffer(blob, np.uint8) % 64 + 48))
table = table_from_columns("logs", {"timestamp": [1_795_536_667_000_000_000] * n, "body": body}, n)
print("writing", flush=True)
StoreWriter(sys.argv[1]).write("logs", table)
print("written", flush=True)
"""


def test_sigkill_during_an_s3_write_leaves_no_object_visible(bucket: str) -> None:
    """A ~60 MB file goes up as a multipart upload of 5 MB parts, one after another; the writer is SIGKILLed once
    the server holds a part of it. No object, partial or whole, is visible under the store afterwards."""
    url = f"s3://{bucket}/killed"
    env = {**os.environ, objectstore.PART_MB_ENV: "5"}
    process = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, url], cwd=REPO, env=env, stdout=subprocess.PIPE, text=True
    )
    import boto3

    client = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    try:
        assert process.stdout.readline().strip() == "writing"
        uploaded = False
        for _ in range(6000):  # polls, not a clock: ends when a part has arrived or the writer has exited
            uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
            parts = [
                client.list_parts(Bucket=bucket, Key=u["Key"], UploadId=u["UploadId"]).get("Parts", [])
                for u in uploads
            ]
            if any(parts):
                uploaded = True
                break
            if process.poll() is not None:
                break
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert uploaded, "the writer finished or died before any part reached the server"
    assert process.returncode == -signal.SIGKILL
    assert client.list_objects_v2(Bucket=bucket, Prefix="killed/").get("KeyCount", 0) == 0
    assert open_store(url).sql("SELECT count(*) AS n FROM logs")["n"][0] == 0


def test_compaction_is_refused_on_s3_with_the_reason(bucket: str) -> None:
    with pytest.raises(StoreError, match="compaction is refused on object storage"):
        Compactor(f"s3://{bucket}/prod")


def test_a_missing_bucket_is_a_clear_error(bucket: str) -> None:
    from explorer.errors import StoreNotFoundError

    with pytest.raises(StoreNotFoundError, match="does not exist"):
        open_store(f"s3://no-such-{bucket}/x")


def test_without_s3fs_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "s3fs", None)
    with pytest.raises(StoreError, match=r"langswarm-observability\[s3\]"):
        objectstore.filesystem()


def test_the_cli_prints_the_same_trace_from_s3_as_from_disk(bucket: str, sample: Path) -> None:
    url = f"s3://{bucket}/cli"
    _upload(sample, url)
    trace_id = (
        open_store(sample)
        .sql("SELECT trace_id FROM spans GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")
        .iloc[0, 0]
    )
    outputs = [
        subprocess.run(
            [sys.executable, "-m", "explorer", "trace", "--store", store, trace_id],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for store in (url, str(sample))
    ]
    assert outputs[0] == outputs[1] and len(outputs[0].splitlines()) > 1
