"""The guarded SQL path: read-only, statement allow-list, DuckDB's own sandbox, row cap, time limit."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from explorer import QueryError, open_store
from explorer.sql_guard import EXAMPLES, GuardedSQL, check_statement
from tests.storegen import build_empty_store, shared_store


@pytest.fixture(scope="module")
def facts():
    return shared_store()


@pytest.fixture(scope="module")
def guard(facts):
    with open_store(facts.root) as store:
        runner = GuardedSQL(store, max_rows=1000, timeout_s=1.0)
        yield runner
        runner.close()


class TestStatementCheck:
    @pytest.mark.parametrize(
        ("sql", "why"),
        [
            ("COPY spans TO '/tmp/spans.parquet'", "COPY refused"),
            ("COPY (SELECT * FROM logs) TO '/tmp/x.csv' (HEADER)", "download buttons"),
            ("ATTACH '/tmp/other.duckdb' AS other", "ATTACH refused"),
            ("DETACH other", "DETACH refused"),
            ("INSTALL httpfs", "extensions"),
            ("LOAD httpfs", "extensions"),
            ("CREATE TABLE t AS SELECT 1", "CREATE refused"),
            ("INSERT INTO spans SELECT * FROM spans", "INSERT refused"),
            ("DROP VIEW spans", "DROP refused"),
            ("SET enable_external_access = true", "SET refused"),
            ("PRAGMA enable_profiling", "PRAGMA refused"),
            ("CALL pragma_version()", "SELECT \\* FROM function"),
            ("SELECT 1; SELECT 2", "one statement at a time"),
            ("   ", "empty"),
            ("SELEC 1", "does not parse"),
        ],
    )
    def test_refusals_say_why_and_what_to_do(self, guard, sql, why):
        """Each refused statement gets a message naming the reason and the alternative."""
        with pytest.raises(QueryError, match=why):
            guard.run(sql)

    def test_queries_and_plans_pass(self):
        assert check_statement("WITH x AS (SELECT 1) SELECT * FROM x") == "SELECT"
        assert check_statement("DESCRIBE spans") == "SELECT"
        assert check_statement("EXPLAIN SELECT 1") == "EXPLAIN"
        assert check_statement("EXPLAIN ANALYZE SELECT 1") == "EXPLAIN"

    @pytest.mark.parametrize(
        ("sql", "why"),
        [
            ("EXPLAIN ANALYZE CREATE OR REPLACE VIEW spans AS SELECT 1 AS x", "EXPLAIN refused"),
            ("SELECT * FROM query('SELECT 1')", "table function query\\(\\) refused"),
            ("SELECT current_setting('allowed_directories')", "current_setting\\(\\) refused"),
            ("UPDATE EXTENSIONS", "type is not one the guard knows"),
        ],
    )
    def test_check_statement_refuses_what_run_refuses(self, sql, why):
        """The public check applies the same parse-tree checks as the worker."""
        with pytest.raises(QueryError, match=why):
            check_statement(sql)


class TestSandbox:
    @pytest.mark.parametrize(
        "sql",
        [
            "SELECT * FROM read_csv('/etc/passwd')",
            "SELECT * FROM read_text('/etc/hostname')",
            "SELECT * FROM read_parquet('/etc/x.parquet')",
            "SELECT * FROM glob('/etc/*')",
        ],
    )
    def test_files_outside_the_store_cannot_be_read(self, guard, sql):
        """DuckDB's own sandbox refuses reads outside the store even inside a SELECT."""
        with pytest.raises(QueryError, match="Only the store's views"):
            guard.run(sql)

    def test_path_traversal_out_of_the_store_is_refused(self, guard, facts):
        with pytest.raises(QueryError, match="refused"):
            guard.run(f"SELECT * FROM read_csv('{facts.root}/../../../../etc/passwd')")

    def test_files_inside_the_store_can_be_read(self, guard, facts):
        frame = guard.run(f"SELECT count(*) AS n FROM read_parquet('{facts.root}/alerts/**/*.parquet')").frame
        assert frame.n[0] == 4

    def test_python_variables_are_not_visible(self, guard):
        """DuckDB's replacement scans of Python frames are off: a local DataFrame is not a table."""
        secret = __import__("pandas").DataFrame({"x": [1]})  # noqa: F841 - the name a query might reach
        with pytest.raises(QueryError, match="secret"):
            guard.run("SELECT * FROM secret")

    def test_settings_can_be_neither_changed_nor_read(self, guard, facts):
        """SET is refused by type, and the functions that read settings (which hold the store's path) too."""
        with pytest.raises(QueryError, match="SET refused"):
            guard.run("SET allowed_directories = ['/']")
        for sql in ("SELECT * FROM duckdb_settings()", "SELECT current_setting('allowed_directories')"):
            with pytest.raises(QueryError, match="refused") as info:
                guard.run(sql)
            assert str(facts.root) not in str(info.value)

    def test_the_worker_reports_its_write_protection(self, guard):
        """With Landlock (Linux) the worker process can write no file at all (tests/adversarial checks it)."""
        assert guard.write_protection.startswith("Landlock ABI")


class TestLimits:
    def test_row_cap_truncates_and_says_so(self, guard, facts):
        result = guard.run("SELECT * FROM spans")
        assert len(result.frame) == 1000 and result.truncated and result.max_rows == 1000
        small = guard.run("SELECT * FROM spans", max_rows=5000)
        assert len(small.frame) == facts.span_count and not small.truncated

    def test_time_limit_interrupts(self, guard):
        """A query running past the limit is interrupted and the connection keeps working."""
        with pytest.raises(QueryError, match="1 s limit"):
            guard.run("SELECT count(*) FROM range(100000000000) a, range(1000) b")
        assert guard.run("SELECT 42 AS answer").frame.answer[0] == 42

    def test_arrow_result_keeps_types_for_parquet(self, guard, tmp_path):
        """The Parquet download is the Arrow result as is: map columns stay maps."""
        result = guard.run("SELECT attributes FROM spans LIMIT 3")
        pq.write_table(result.arrow, tmp_path / "q.parquet")
        assert str(pq.read_schema(tmp_path / "q.parquet").field("attributes").type).startswith("map<")

    def test_settings_from_the_environment(self, facts, monkeypatch):
        monkeypatch.setenv("LANGSWARM_SQL_MAX_ROWS", "7")
        with open_store(facts.root) as store:
            assert GuardedSQL(store).max_rows == 7
            monkeypatch.setenv("LANGSWARM_SQL_MAX_ROWS", "many")
            with pytest.raises(QueryError, match="LANGSWARM_SQL_MAX_ROWS"):
                GuardedSQL(store)

    @pytest.mark.parametrize(
        ("name", "value", "attribute", "expected"),
        [
            ("LANGSWARM_SQL_MAX_QUERY_BYTES", "5000", "max_query_bytes", 5000),
            ("LANGSWARM_SQL_MEMORY_MB", "256", "memory_mb", 256),
            ("LANGSWARM_SQL_THREADS", "1", "threads", 1),
            ("LANGSWARM_SQL_TIMEOUT_S", "2.5", "timeout_s", 2.5),
            ("LANGSWARM_SQL_MAX_RESULT_MB", "50", "max_result_mb", 50),
        ],
    )
    def test_limits_from_the_environment(self, facts, monkeypatch, name, value, attribute, expected):
        """Each limit is read from its environment variable; a bad value names the variable."""
        monkeypatch.setenv(name, value)
        with open_store(facts.root) as store, GuardedSQL(store) as runner:
            assert getattr(runner, attribute) == expected
            monkeypatch.setenv(name, "-1")
            with pytest.raises(QueryError, match=f"{name}='-1' must be positive"):
                GuardedSQL(store)

    def test_arguments_override_the_environment_and_are_checked(self, facts, monkeypatch):
        monkeypatch.setenv("LANGSWARM_SQL_MAX_QUERY_BYTES", "5000")
        with open_store(facts.root) as store:
            with GuardedSQL(store, max_query_bytes=20) as runner:
                with pytest.raises(QueryError, match="21 bytes, over the 20-byte limit"):
                    runner.run("SELECT 12345678901234")
                assert runner.run("SELECT 1 AS x").frame.x[0] == 1
            with pytest.raises(QueryError, match="threads must be positive"):
                GuardedSQL(store, threads=0)

    def test_refresh_rebuilds_the_worker_and_close_stops_it(self, facts):
        with open_store(facts.root) as store:
            runner = GuardedSQL(store)
            runner.refresh()
            assert runner.restarts == 1 and runner.run("SELECT 1 AS x").frame.x[0] == 1
            runner.close()
            with pytest.raises(QueryError, match="closed"):
                runner.run("SELECT 1")


class TestExamplesAndEmptyStore:
    @pytest.mark.parametrize("name", list(EXAMPLES))
    def test_every_example_runs(self, guard, name):
        assert not guard.run(EXAMPLES[name]).frame.empty

    def test_empty_store_has_typed_views(self, tmp_path):
        with open_store(build_empty_store(tmp_path / "empty")) as store:
            runner = GuardedSQL(store)
            assert runner.run("SELECT count(*) AS n FROM spans").frame.n[0] == 0
            assert "attributes" in runner.run("DESCRIBE logs").frame.column_name.tolist()
            runner.close()

    def test_refresh_picks_up_a_new_table(self, tmp_path, facts):
        """A table that gains its first file after opening becomes readable after refresh()."""
        import shutil

        root = build_empty_store(tmp_path / "grow")
        with open_store(root) as store:
            runner = GuardedSQL(store)
            assert runner.run("SELECT count(*) AS n FROM alerts").frame.n[0] == 0
            shutil.copytree(facts.root / "alerts", root / "alerts")
            runner.refresh()
            assert runner.run("SELECT count(*) AS n FROM alerts").frame.n[0] == 4
            runner.close()


class TestCookbook:
    def test_every_cookbook_query_runs_through_the_guard(self, guard, facts):
        """Each SQL block of docs/sql-cookbook.md parses and runs on a real store (DIR = the store)."""
        import re
        from pathlib import Path

        text = (Path(__file__).resolve().parent.parent / "docs" / "sql-cookbook.md").read_text()
        blocks = re.findall(r"```sql\n(.*?)```", text, flags=re.S)
        statements = [s.strip() for block in blocks for s in block.split(";") if s.strip()]
        statements = [s for s in statements if not all(line.startswith("--") for line in s.splitlines())]
        assert len(statements) >= 15
        for statement in statements:
            guard.run(statement.replace("DIR", str(facts.root)))


class TestCommandLine:
    def test_guarded_sql_and_otlp_export(self, facts, tmp_path, capsys):
        """`python -m explorer sql --guarded` refuses COPY; `export` writes the trace as OTLP JSON."""
        import json

        from explorer.cli import main

        assert main(["sql", "--store", str(facts.root), "--guarded", "COPY spans TO '/tmp/x.parquet'"]) == 2
        assert "COPY refused" in capsys.readouterr().err
        assert main(["sql", "--store", str(facts.root), "--guarded", "SELECT count(*) AS n FROM alerts"]) == 0
        assert "4" in capsys.readouterr().out
        out = tmp_path / "trace.json"
        assert main(["export", "--store", str(facts.root), facts.checkout_trace_id, "-o", str(out)]) == 0
        spans = [
            s
            for rs in json.loads(out.read_text())["resourceSpans"]
            for ss in rs["scopeSpans"]
            for s in ss["spans"]
        ]
        assert sorted(s["name"] for s in spans) == [
            "POST /checkout",
            "cart.load",
            "db.query",
            "payment.charge",
        ]
