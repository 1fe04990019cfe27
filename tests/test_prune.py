"""Retention: ``python -m ingest prune`` and ``store.retention_days`` remove whole day partitions older than the
limit — never a day that has a row newer than the limit, never while a reader holds the store's read lock —
locally and on ``s3://`` (moto's S3 server), and print what they removed."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from explorer import open_store
from ingest import ObservabilityProvider
from ingest.errors import ConfigurationError
from ingest.store.encoding import table_from_columns
from ingest.store.lock import read_lock
from ingest.store.prune import PruneError, parse_age, prune
from ingest.store.writer import StoreWriter

REPO = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 12, 5, 7, 0, tzinfo=UTC)
NS = 1_000_000_000


def _ns(when: datetime) -> int:
    return int(when.timestamp()) * NS


def _write(store: str | Path, times: list[datetime]) -> None:
    """One log row at each time (and a span at each, so two tables have days)."""
    writer = StoreWriter(store, durable=False)
    n = len(times)
    stamps = [_ns(t) + 123 for t in times]
    writer.write(
        "logs", table_from_columns("logs", {"timestamp": stamps, "body": [t.isoformat() for t in times]}, n)
    )
    writer.write(
        "spans",
        table_from_columns(
            "spans",
            {
                "trace_id": ["a" * 32] * n,
                "span_id": [f"{i:016x}" for i in range(n)],
                "start_time": stamps,
                "end_time": [s + 5 for s in stamps],
                "duration_ns": [5] * n,
            },
            n,
        ),
    )


# Days relative to NOW with a 30-day limit: the cutoff is 2026-11-05 07:00 UTC.
TIMES = [
    NOW - timedelta(days=45),  # 2026-10-21: wholly older -> removed
    NOW - timedelta(days=31, hours=2),  # 2026-11-04 05:00: day ends 11-05 00:00 <= cutoff -> removed
    NOW - timedelta(days=30, hours=8),  # 2026-11-04 23:00: same day -> removed
    NOW - timedelta(days=30, hours=6),  # 2026-11-05 01:00: older than the limit, but its day
    NOW - timedelta(days=29),  #   ends after the cutoff -> kept (a day is never cut)
    NOW - timedelta(hours=1),
]


def _days(store: str | Path, table: str = "logs") -> list[str]:
    return sorted(str(d.date()) for d in open_store(store).sql(f"SELECT DISTINCT date FROM {table}")["date"])


def test_parse_age() -> None:
    assert parse_age("30d") == timedelta(days=30) and parse_age("2w") == timedelta(days=14)
    assert parse_age("36h") == timedelta(hours=36) and parse_age("7") == timedelta(days=7)
    for bad in ("", "thirty days", "-3d", "0d"):
        with pytest.raises(ConfigurationError, match="30d"):
            parse_age(bad)


def test_prune_removes_whole_old_days_only(tmp_path: Path) -> None:
    _write(tmp_path, TIMES)
    dry = prune(tmp_path, timedelta(days=30), now=NOW, dry_run=True)
    assert {(r.table, r.day) for r in dry.removed} == {
        (t, d) for t in ("logs", "spans") for d in ("2026-10-21", "2026-11-04")
    }
    assert _days(tmp_path) == [
        "2026-10-21",
        "2026-11-04",
        "2026-11-05",
        "2026-11-06",
        "2026-12-05",
    ]  # dry run
    report = prune(tmp_path, timedelta(days=30), now=NOW)
    assert [(r.table, r.day, r.files) for r in report.removed] == [
        (r.table, r.day, r.files) for r in dry.removed
    ]
    assert _days(tmp_path) == _days(tmp_path, "spans") == ["2026-11-05", "2026-11-06", "2026-12-05"]
    cutoff = _ns(NOW - timedelta(days=30))
    rows = open_store(tmp_path).sql("SELECT time_unix_nano FROM logs")["time_unix_nano"].tolist()
    # Every row newer than the limit is still there (and one older row whose day straddles the cutoff).
    assert sum(t >= cutoff for t in rows) == sum(_ns(t) + 123 >= cutoff for t in TIMES) and len(rows) == 3
    assert not (tmp_path / "logs" / "date=2026-10-21").exists()
    assert prune(tmp_path, timedelta(days=30), now=NOW).removed == []


def test_prune_never_removes_a_day_under_the_read_lock(tmp_path: Path) -> None:
    _write(tmp_path, TIMES)
    prune(tmp_path, timedelta(days=400), now=NOW)  # creates the lock file: nothing that old
    held, release = threading.Event(), threading.Event()

    def reader() -> None:
        with read_lock(tmp_path):
            held.set()
            release.wait()

    holder = threading.Thread(target=reader)
    holder.start()
    held.wait()
    try:
        with pytest.raises(PruneError, match="locks"):
            prune(tmp_path, timedelta(days=30), now=NOW, wait=False)  # the writers' automatic retention
        assert "2026-10-21" in _days(tmp_path)
        done = threading.Event()
        waiting = threading.Thread(target=lambda: (prune(tmp_path, timedelta(days=30), now=NOW), done.set()))
        waiting.start()
        assert not done.wait(0.5) and (tmp_path / "logs" / "date=2026-10-21").is_dir()
    finally:
        release.set()
        holder.join()
    waiting.join()
    assert done.is_set() and not (tmp_path / "logs" / "date=2026-10-21").exists()


def test_cli_prints_what_it_removed(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    _write(tmp_path, [now - timedelta(days=40), now])
    old_day = str((now - timedelta(days=40)).date())
    dry = subprocess.run(
        [
            sys.executable,
            "-m",
            "ingest",
            "prune",
            "--store",
            str(tmp_path),
            "--older-than",
            "30d",
            "--dry-run",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert (
        f"would remove logs/date={old_day}: 1 files" in dry
        and (tmp_path / "logs" / f"date={old_day}").is_dir()
    )
    out = subprocess.run(
        [sys.executable, "-m", "ingest", "prune", "--store", str(tmp_path), "--older-than", "30d"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"removed spans/date={old_day}: 1 files" in out and "removed 2 day partitions" in out
    assert _days(tmp_path) == [str(now.date())]
    bad = subprocess.run(
        [sys.executable, "-m", "ingest", "prune", "--store", str(tmp_path), "--older-than", "soon"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "30d" in bad.stderr


def test_prune_on_s3_equals_local(bucket: str, tmp_path: Path) -> None:
    url = f"s3://{bucket}/retained"
    _write(url, TIMES)
    _write(tmp_path, TIMES)
    remote = prune(url, timedelta(days=30), now=NOW)
    local = prune(tmp_path, timedelta(days=30), now=NOW)
    assert [(r.table, r.day, r.files) for r in remote.removed] == [
        (r.table, r.day, r.files) for r in local.removed
    ]
    assert remote.removed and _days(url) == _days(tmp_path) == ["2026-11-05", "2026-11-06", "2026-12-05"]
    sql = "SELECT time_unix_nano, body FROM logs ORDER BY 1"
    assert open_store(url).sql(sql).equals(open_store(tmp_path).sql(sql))


def test_sdk_retention_days_prunes_at_start(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    store = tmp_path / "store"
    _write(store, [now - timedelta(days=10), now - timedelta(days=2)])
    provider = ObservabilityProvider.create(
        {"store": {"path": str(store), "durable": False, "retention_days": 5}, "logging": {"output": "none"}},
        "svc",
    )
    provider.shutdown()
    assert _days(store) == [str((now - timedelta(days=2)).date())]


def test_retention_days_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="retention_days"):
        ObservabilityProvider.create(
            {"store": {"path": str(tmp_path), "retention_days": 0}, "logging": {"output": "none"}}, "svc"
        )
