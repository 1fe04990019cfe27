"""Other engines read the store as it is: Spark 4 (default settings) and chdb (in-process ClickHouse) read every
table of sample_data/ with the documented types and agree with DuckDB on counts, p95 duration by operation
and exact nanosecond start times; pandas sees timestamps too."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

from ingest.store import schema

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data"
TABLES = list(schema.TABLES)

pytestmark = pytest.mark.slow


def _duck(sql: str) -> list[tuple[Any, ...]]:
    return duckdb.connect().execute(sql).fetchall()


def _glob(table: str) -> str:
    return f"read_parquet('{SAMPLE}/{table}/**/*.parquet', hive_partitioning = true)"


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """One local Spark session (one core) for the whole test session: starting one costs ~10 s."""
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.fail(
            "no Java runtime: `make test` installs openjdk-17-jre-headless (see the Makefile's java target)"
        )
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[1]")
        .appName("langswarm-engines-test")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "1")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def _duck_counts() -> dict[str, int]:
    return {t: _duck(f"SELECT count(*) FROM {_glob(t)}")[0][0] for t in TABLES}


def _duck_p95() -> dict[str, float]:
    rows = _duck(f"SELECT name, quantile_cont(duration_ns, 0.95) FROM {_glob('spans')} GROUP BY name")
    return dict(rows)


def _duck_starts() -> list[tuple[str, int]]:
    return sorted(_duck(f"SELECT span_id, start_time_unix_nano FROM {_glob('spans')}"))


class TestSpark:
    def test_every_table_reads_with_default_settings_and_documented_types(self, spark: Any) -> None:
        from pyspark.sql.types import LongType, TimestampType

        frames = {t: spark.read.parquet(str(SAMPLE / t)) for t in TABLES}  # one schema inference each
        counts = {t: frame.count() for t, frame in frames.items()}
        assert counts == _duck_counts() and all(counts.values())
        for table, frame in frames.items():
            fields = {f.name: f.dataType for f in frame.schema.fields}
            for stamp, nano in schema.NANO_COLUMNS[table].items():
                assert isinstance(fields[stamp], TimestampType), (table, stamp, fields[stamp])
                assert isinstance(fields[nano], LongType), (table, nano, fields[nano])
        event = frames["spans"].schema["events"].dataType.elementType
        assert isinstance(event["timestamp"].dataType, TimestampType)
        assert isinstance(event["time_unix_nano"].dataType, LongType)

    def test_p95_by_operation_and_exact_start_times_agree_with_duckdb(self, spark: Any) -> None:
        spans = spark.read.parquet(str(SAMPLE / "spans"))
        spans.createOrReplaceTempView("spans")
        p95 = {
            r[0]: r[1]
            for r in spark.sql(
                "SELECT name, percentile(duration_ns, 0.95) FROM spans GROUP BY name"
            ).collect()
        }
        assert p95.keys() == _duck_p95().keys()
        assert all(p95[k] == pytest.approx(v, rel=1e-12) for k, v in _duck_p95().items())
        starts = sorted(
            tuple(r) for r in spark.sql("SELECT span_id, start_time_unix_nano FROM spans").collect()
        )
        assert starts == _duck_starts()
        # The timestamp Spark sees is the exact time truncated to the microsecond.
        [bad] = spark.sql(
            "SELECT count_if(unix_micros(start_time) != start_time_unix_nano DIV 1000) FROM spans"
        ).collect()
        assert bad[0] == 0


class TestChdb:
    @staticmethod
    def _query(sql: str) -> pd.DataFrame:
        import chdb

        return chdb.query(sql, "DataFrame")

    @staticmethod
    def _file(table: str) -> str:
        return f"file('{SAMPLE}/{table}/*/*.parquet', Parquet)"

    def test_every_table_reads_with_documented_types(self) -> None:
        counts = {t: int(self._query(f"SELECT count() AS n FROM {self._file(t)}")["n"][0]) for t in TABLES}
        assert counts == _duck_counts()
        for table in TABLES:
            types = dict(
                self._query(f"DESCRIBE {self._file(table)}")[["name", "type"]].itertuples(index=False)
            )
            for stamp, nano in schema.NANO_COLUMNS[table].items():
                assert "DateTime64(6, 'UTC')" in types[stamp], (table, stamp, types[stamp])
                assert "Int64" in types[nano], (table, nano, types[nano])

    def test_p95_by_operation_and_exact_start_times_agree_with_duckdb(self) -> None:
        p95 = self._query(
            f"SELECT name, quantileExactInclusive(0.95)(duration_ns) AS p95 FROM {self._file('spans')} GROUP BY name"
        )
        duck = _duck_p95()
        assert set(p95["name"]) == duck.keys()
        assert all(row.p95 == pytest.approx(duck[row.name], rel=1e-12) for row in p95.itertuples())
        starts = self._query(f"SELECT span_id, start_time_unix_nano AS ns FROM {self._file('spans')}")
        assert sorted(zip(starts["span_id"], starts["ns"].astype("int64").tolist())) == _duck_starts()


def test_pandas_reads_timestamps_and_exact_nanoseconds() -> None:
    frame = pd.read_parquet(SAMPLE / "spans", columns=["start_time", "start_time_unix_nano"])
    assert (
        isinstance(frame["start_time"].dtype, pd.DatetimeTZDtype) and str(frame["start_time"].dt.tz) == "UTC"
    )
    micros = frame["start_time"].astype("datetime64[us, UTC]").astype("int64")
    assert (micros == frame["start_time_unix_nano"] // 1000).all()


def _doc_examples() -> list[str]:
    """The Python blocks of docs/deployment.md's "Spark and ClickHouse read the store as it is"."""
    text = (ROOT / "docs" / "deployment.md").read_text(encoding="utf-8")
    section = text.split("### Spark and ClickHouse read the store as it is", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def _top5_duckdb() -> list[str]:
    rows = _duck(
        f"SELECT name, round(quantile_cont(duration_ns, 0.95) / 1e6, 1) AS p95 FROM {_glob('spans')} "
        "WHERE date = DATE '2026-11-24' GROUP BY name ORDER BY p95 DESC, name LIMIT 5"
    )
    return [name for name, _ in rows]


def _run_as_written(code: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> str:
    monkeypatch.chdir(ROOT)  # the examples use paths relative to a clone
    exec(compile(code, "docs/deployment.md", "exec"), {"__name__": "__docs__"})
    return capsys.readouterr().out


def test_the_documented_spark_example_runs_as_written(
    spark: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    spark_code = next(code for code in _doc_examples() if "pyspark" in code)
    out = _run_as_written(spark_code, monkeypatch, capsys)
    names = [line.split("|")[1].strip() for line in out.splitlines() if line.startswith("|")][1:]
    assert names == _top5_duckdb()


def test_the_documented_chdb_example_runs_as_written(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    chdb_code = next(code for code in _doc_examples() if "chdb" in code)
    out = _run_as_written(chdb_code, monkeypatch, capsys)
    top = _top5_duckdb()
    positions = [out.find(f" {name} ") for name in top]
    assert all(p >= 0 for p in positions) and positions == sorted(positions), out
