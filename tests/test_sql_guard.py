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

    def test_configuration_is_locked(self, guard):
        """Even a statement that slipped past the check could not reopen the sandbox."""
        import duckdb

        with pytest.raises(duckdb.Error, match="locked|external access"):
            guard.con.execute("SET allowed_directories = ['/']")
        frame = guard.run("SELECT value FROM duckdb_settings() WHERE name = 'enable_external_access'").frame
        assert frame.value[0] == "false"


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
