"""Attempts to escape the guarded SQL path: each must be refused with a message saying why, and the guard
must go on serving valid queries afterwards with nothing lost (same spans, same built-ins, same files).

Categories: EXPLAIN/PREPARE wrappers, statements by type (write, DDL, attach, install/load, settings,
transactions), SELECTs with side effects or reading settings, file reads and writes, planning and memory
bombs, concurrency, and the layers behind the statement check (a worker with the check switched off).
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest

from explorer import QueryError, open_store, sql_guard
from explorer.sql_guard import GuardedSQL
from tests.storegen import build_store

APP = Path(__file__).resolve().parent.parent.parent / "explorer" / "streamlit_app.py"


def _files(root: Path) -> set[tuple[str, int, int]]:
    return {
        (str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file()
    }


def _cte_bomb(levels: int) -> str:
    """About 2 KB of SQL whose plan doubles with every level: DuckDB's binder expands each reference."""
    parts = ["a0 AS NOT MATERIALIZED (SELECT 1 AS x)"] + [
        f"a{i} AS NOT MATERIALIZED (SELECT l.x FROM a{i - 1} l UNION ALL SELECT x FROM a{i - 1})"
        for i in range(1, levels)
    ]
    return "WITH " + ", ".join(parts) + f" SELECT count(*) FROM a{levels - 1}"


#: The refusal of a query stopped by a limit: the time limit, the memory limit, or a killed worker.
STOPPED = r"the [0-9.]+ s limit|MB memory limit|stopped the SQL worker"
OR_CHAIN = "SELECT count(*) FROM spans WHERE " + " OR ".join(f"name = 'x{i}'" for i in range(80_000))
IN_LIST = (
    "SELECT count(*) FROM spans WHERE name IN (" + ",".join(f"'op-{i:07d}'" for i in range(400_000)) + ")"
)


@pytest.fixture(scope="module")
def facts(tmp_path_factory):
    """A private fixture store: escapes that worked on the old guard wrote into it."""
    return build_store(tmp_path_factory.mktemp("hostile") / "store")


@pytest.fixture(scope="module")
def store(facts):
    with open_store(facts.root) as opened:
        yield opened


@pytest.fixture(scope="module")
def guard(store):
    runner = GuardedSQL(store, max_rows=1000, timeout_s=1.0)
    yield runner
    runner.close()


@pytest.fixture(scope="module")
def baseline(facts):
    return _files(facts.root)


@pytest.fixture
def intact(guard, facts, baseline):
    """After the test: the guard still answers, with every span, the real built-ins and the same files."""
    yield
    assert guard.run("SELECT count(*) AS n FROM spans").frame.n[0] == facts.span_count
    assert guard.run("SELECT abs(-3) AS a, count(*) AS n FROM alerts").frame.to_dict("records") == [
        {"a": 3, "n": 4}
    ]
    assert _files(facts.root) == baseline


def _refused(guard: GuardedSQL, sql: str, match: str) -> str:
    with pytest.raises(QueryError, match=match) as info:
        guard.run(sql)
    return str(info.value)


@pytest.mark.usefixtures("intact")
class TestWrappers:
    @pytest.mark.parametrize(
        "sql",
        [
            "EXPLAIN ANALYZE CREATE OR REPLACE VIEW spans AS SELECT 1 AS x",
            "EXPLAIN ANALYZE CREATE MACRO abs(x) AS 42",
            "EXPLAIN ANALYZE CREATE OR REPLACE TEMP VIEW spans AS SELECT 1 AS x",
            "EXPLAIN ANALYZE COPY (SELECT 1 AS forged) TO '{root}/spans/date=2020-01-01/forged.parquet'",
            "EXPLAIN ANALYZE COPY spans TO '{root}/spans/forged.parquet'",
            "EXPLAIN ANALYZE INSERT INTO _store_empty.spans SELECT * FROM spans",
            "EXPLAIN ANALYZE DROP VIEW spans",
            "EXPLAIN ANALYZE EXPORT DATABASE '{root}/export'",
            "EXPLAIN ANALYZE SET lock_configuration = false",
            "EXPLAIN ANALYZE PREPARE p AS SELECT 1",
            "EXPLAIN CREATE TABLE t AS SELECT 1",
            "EXPLAIN (ANALYZE) CREATE OR REPLACE VIEW spans AS SELECT 1 AS x",
            "EXPLAIN (ANALYZE, FORMAT json) CREATE MACRO abs(x) AS 42",
            "EXPLAIN (FORMAT json, ANALYZE) DROP VIEW spans",
            "/* hidden */ explain -- a comment\n analyse create or replace view spans as select 1 as x",
            "EXPLAIN\tANALYZE\nCOPY (SELECT 1) TO '{root}/alerts/forged.parquet'",
        ],
    )
    def test_explain_wraps_only_a_select(self, guard, facts, sql):
        """EXPLAIN ANALYZE runs what it wraps, so anything but a SELECT inside EXPLAIN is refused."""
        _refused(guard, sql.format(root=facts.root), "EXPLAIN refused|EXPLAIN option|does not parse")

    @pytest.mark.parametrize(
        ("sql", "match"),
        [
            ("EXPLAIN (PROFILE_OUTPUT '/tmp/plan.json') SELECT 1", "EXPLAIN option|does not parse"),
            (
                "EXPLAIN ANALYZE SELECT current_setting('allowed_directories')",
                "current_setting\\(\\) refused",
            ),
            ("EXPLAIN ANALYZE SELECT * FROM query('SELECT 1')", "query\\(\\) refused"),
            ("EXPLAIN ANALYZE SELECT 1; DROP VIEW spans", "one statement at a time"),
            ("EXPLAIN (FORMAT json) (SELECT 1); CREATE MACRO m() AS 1", "one statement at a time"),
            ("PREPARE p AS SELECT 1", "PREPARE refused"),
            ("PREPARE p AS CREATE MACRO abs(x) AS 42", "PREPARE refused|not a preparable statement"),
            ("EXECUTE p", "EXECUTE refused"),
            ("DEALLOCATE p", "DROP refused"),
        ],
    )
    def test_other_wrappers_and_options(self, guard, sql, match):
        """EXPLAIN's wrapped SELECT is checked like any SELECT; PREPARE/EXECUTE are refused by type."""
        _refused(guard, sql, match)

    @pytest.mark.parametrize(
        "sql",
        [
            "EXPLAIN SELECT count(*) FROM spans",
            "EXPLAIN ANALYZE SELECT count(*) FROM spans",
            "explain analyse select 1",
            "EXPLAIN (SELECT 1)",
            "EXPLAIN ANALYZE (SELECT 1)",
            "EXPLAIN (FORMAT json) SELECT 1",
            "EXPLAIN (ANALYZE, FORMAT json) SELECT name FROM spans LIMIT 1",
            "/* plan */ EXPLAIN -- of\n SELECT 1",
        ],
    )
    def test_plans_of_selects_still_run(self, guard, sql):
        """The rebuilt EXPLAIN gives the same kind of plan the user asked for."""
        frame = guard.run(sql).frame
        expected = "analyzed_plan" if "analy" in sql.lower() else "physical_plan"
        assert frame.explain_key.tolist() == [expected]


@pytest.mark.usefixtures("intact")
class TestStatementTypes:
    @pytest.mark.parametrize(
        ("sql", "match"),
        [
            ("CREATE MACRO abs(x) AS 42", "CREATE refused"),
            ("CREATE OR REPLACE TEMP VIEW spans AS SELECT 1 AS x", "CREATE refused"),
            ("CREATE TEMP TABLE t AS SELECT 1", "CREATE refused"),
            ("CREATE SECRET s (TYPE s3, KEY_ID 'k', SECRET 's')", "CREATE refused"),
            ("CREATE TYPE mood AS ENUM ('ok')", "CREATE refused"),
            ("ALTER VIEW spans RENAME TO gone", "ALTER refused"),
            ("COMMENT ON VIEW spans IS 'x'", "ALTER refused"),
            ("DROP VIEW spans", "DROP refused"),
            ("INSERT INTO _store_empty.spans SELECT * FROM spans", "INSERT refused"),
            ("UPDATE _store_empty.alerts SET title = 'x'", "UPDATE refused"),
            ("DELETE FROM _store_empty.alerts", "DELETE refused"),
            ("TRUNCATE _store_empty.alerts", "DELETE refused"),
            ("COPY (SELECT 1) TO '{root}/spans/forged.parquet'", "COPY refused"),
            ("COPY _store_empty.spans FROM '{root}/spans'", "COPY refused"),
            ("EXPORT DATABASE '{root}/export'", "EXPORT refused"),
            ("IMPORT DATABASE '{root}'", "PRAGMA refused"),
            ("ATTACH '{root}/other.duckdb' AS other", "ATTACH refused"),
            ("DETACH memory", "DETACH refused"),
            ("USE system", "SET refused"),
            ("INSTALL httpfs", "extensions"),
            ("LOAD httpfs", "extensions"),
            ("UPDATE EXTENSIONS", "type is not one the guard knows"),
            ("SET allowed_directories = ['/']", "SET refused"),
            ("RESET lock_configuration", "SET refused"),
            ("SET VARIABLE v = 1", "SET refused"),
            ("PRAGMA enable_profiling", "PRAGMA refused"),
            ("CALL duckdb_settings()", "CALL refused"),
            ("CHECKPOINT", "CALL refused"),
            ("FORCE CHECKPOINT", "CALL refused"),
            ("VACUUM", "VACUUM refused"),
            ("ANALYZE", "VACUUM refused"),
            ("BEGIN TRANSACTION", "TRANSACTION refused"),
            ("PIVOT spans ON name USING count(*)", "PIVOT"),
            ("SELECT 1; DROP VIEW spans", "one statement at a time"),
            ("SELECT 1; SELECT 2", "one statement at a time"),
        ],
    )
    def test_refused_by_type(self, guard, facts, sql, match):
        """Anything but one SELECT (or an EXPLAIN of one) is refused, naming the reason."""
        _refused(guard, sql.format(root=facts.root), match)

    def test_pivot_with_its_values_listed_runs(self, guard):
        """A PIVOT with an IN list is one SELECT: allowed."""
        frame = guard.run("PIVOT (SELECT name FROM spans) ON name IN ('db.query') USING count(*)").frame
        assert frame["db.query"][0] > 0


@pytest.mark.usefixtures("intact")
class TestSelectsWithSideEffectsOrSettings:
    @pytest.mark.parametrize(
        ("sql", "match"),
        [
            ("SELECT * FROM query('SELECT 42')", "query\\(\\) refused"),
            ("SELECT * FROM query_table('spans')", "query_table\\(\\) refused"),
            ("SELECT * FROM json_execute_serialized_sql(json_serialize_sql('SELECT 1'))", "json_execute"),
            ("SELECT * FROM checkpoint()", "checkpoint\\(\\) refused"),
            ("SELECT * FROM enable_logging(storage := 'file')", "enable_logging\\(\\) refused"),
            ("SELECT * FROM enable_profiling()", "enable_profiling\\(\\) refused"),
            ("SELECT * FROM add_grammar_extension('x')", "add_grammar_extension\\(\\) refused"),
            ("SELECT * FROM duckdb_settings()", "duckdb_settings\\(\\) refused"),
            ("FROM duckdb_settings() SELECT value WHERE name = 'allowed_directories'", "duckdb_settings"),
            ("SELECT * FROM duckdb_secrets()", "duckdb_secrets\\(\\) refused"),
            ("SELECT * FROM which_secret('s3://bucket/x', 's3')", "which_secret\\(\\) refused"),
            ("SELECT * FROM duckdb_extensions()", "duckdb_extensions\\(\\) refused"),
            ("SELECT * FROM duckdb_temporary_files()", "duckdb_temporary_files\\(\\) refused"),
            ("SELECT * FROM duckdb_memory()", "duckdb_memory\\(\\) refused"),
            ("SELECT * FROM pragma_show('spans')", "pragma_show\\(\\) refused"),
            ("SELECT * FROM read_duckdb('{root}/x.duckdb')", "read_duckdb\\(\\) refused"),
            ("SELECT current_setting('allowed_directories')", "current_setting\\(\\) refused"),
            ("SELECT system.main.current_setting('temp_directory')", "current_setting\\(\\) refused"),
            ("SELECT \"CURRENT_SETTING\"('home_directory')", "current_setting\\(\\) refused"),
            ("SELECT 'allowed_directories'.current_setting()", "current_setting\\(\\) refused"),
            ("SELECT (SELECT current_setting('allowed_directories'))", "current_setting\\(\\) refused"),
            ("WITH s AS (SELECT current_setting('memory_limit') AS v) SELECT * FROM s", "current_setting"),
            ("SELECT list_transform(['allowed_directories'], x -> current_setting(x))", "current_setting"),
            ("SELECT * FROM spans WHERE name IN (SELECT value FROM duckdb_settings())", "duckdb_settings"),
            ("SELECT * FROM pg_settings", "pg_settings refused"),
            ("SELECT * FROM pg_catalog.pg_settings", "pg_settings refused"),
            ("SELECT * FROM system.pg_catalog.pg_settings", "pg_settings refused"),
            ("SELECT getvariable('v')", "getvariable\\(\\) refused"),
            ("SELECT write_log('x', level := 'error')", "write_log\\(\\) refused"),
        ],
    )
    def test_refused_inside_a_select(self, guard, facts, sql, match):
        """Table functions off the allow-list and settings readers are refused wherever they appear."""
        message = _refused(guard, sql.format(root=facts.root), match)
        assert str(facts.root) not in message

    @pytest.mark.parametrize("name", ["allowed_directories", "temp_directory", "home_directory", "threads"])
    def test_show_describes_tables_never_settings(self, guard, facts, name):
        """SHOW <name> only describes a table: a setting's name is an unknown table, and no path leaks."""
        message = _refused(guard, f"SHOW {name}", "does not exist")
        assert str(facts.root) not in message

    def test_no_view_definition_holds_the_store_path(self, guard, facts):
        """The views read the store by relative paths: listing them reveals no absolute path."""
        views = guard.run("SELECT view_name, sql FROM duckdb_views() WHERE NOT internal").frame
        tables = views[views.view_name.isin(["spans", "logs", "metrics", "profiles", "alerts"])]
        assert len(tables) == 5 and all("read_parquet('" in s or "_store_empty" in s for s in tables["sql"])
        assert not any(str(facts.root) in s for s in views["sql"])  # derived views (llm_calls) included


@pytest.mark.usefixtures("intact")
class TestFiles:
    @pytest.mark.parametrize(
        "sql",
        [
            "SELECT * FROM read_csv('/etc/passwd')",
            "SELECT * FROM '/etc/passwd.csv'",
            "SELECT * FROM read_text('/etc/hostname')",
            "SELECT * FROM read_blob('/proc/self/environ')",
            "SELECT * FROM sniff_csv('/etc/passwd')",
            "SELECT * FROM glob('/etc/*')",
            "SELECT * FROM read_text('{root}/../../../../etc/passwd')",
            "SELECT * FROM read_text('spans/../../../../etc/passwd')",
            "SELECT * FROM read_parquet(['{root}/alerts/**/*.parquet', '/etc/passwd'])",
        ],
    )
    def test_nothing_outside_the_store_can_be_read(self, guard, facts, sql):
        """DuckDB's sandbox (in the worker) refuses every path outside the store."""
        _refused(guard, sql.format(root=facts.root), "Only the store's views")

    def test_the_store_can_be_read_by_absolute_or_relative_path(self, guard, facts):
        """Reading the store's own files stays possible (the cookbook's housekeeping queries)."""
        absolute = guard.run(f"SELECT count(*) AS n FROM read_parquet('{facts.root}/alerts/**/*.parquet')")
        relative = guard.run(
            "SELECT count(*) AS n, min(filename) AS f "
            "FROM read_parquet('alerts/**/*.parquet', filename = true)"
        )
        assert absolute.frame.n[0] == relative.frame.n[0] == 4
        assert relative.frame.f[0].startswith("alerts/")

    def test_the_temp_directory_under_the_working_directory_is_not_readable(
        self, store, tmp_path, monkeypatch
    ):
        """DuckDB's default temp directory (./.tmp) used to be an allowed directory; now there is none."""
        monkeypatch.chdir(tmp_path)
        (tmp_path / ".tmp").mkdir()
        (tmp_path / ".tmp" / "secret.txt").write_text("not for SQL users")
        runner = GuardedSQL(store, timeout_s=5.0)
        _refused(runner, f"SELECT content FROM read_text('{tmp_path}/.tmp/secret.txt')", "refused")
        assert runner.run("SELECT 1 AS one").frame.one[0] == 1
        runner.close()


@pytest.mark.usefixtures("intact")
class TestBombsAndLimits:
    def test_text_over_the_cap_is_refused_before_parsing(self, guard):
        """A cheap query over the text cap is refused by size, naming the setting to raise."""
        _refused(
            guard,
            "SELECT '" + "x" * 150_000 + "' AS big",
            "over the 100,000-byte limit.*LANGSWARM_SQL_MAX_QUERY_BYTES",
        )

    @pytest.mark.parametrize("sql", [OR_CHAIN, IN_LIST], ids=["80k-term OR chain", "4 MB IN list"])
    def test_the_issues_planning_bombs_are_refused_by_size(self, guard, sql):
        """The OR chain that planned for 115 s and the IN list that exhausted memory never reach DuckDB."""
        _refused(guard, sql, "byte limit")

    def test_an_exponential_plan_is_stopped(self, guard):
        """Two kilobytes whose plan doubles per level: stopped by the time or memory limit, then rebuilt."""
        before = guard.restarts
        _refused(guard, _cte_bomb(30), STOPPED)
        assert guard.run("SELECT 42 AS answer").frame.answer[0] == 42
        assert guard.restarts == before + 1

    def test_the_time_limit_covers_planning_when_the_cap_is_raised(self, store):
        """With the text cap raised, the 80k-term OR chain is stopped while planning; the worker rebuilt."""
        with GuardedSQL(store, timeout_s=1.0, max_query_bytes=2_000_000) as runner:
            _refused(runner, OR_CHAIN, STOPPED)
            assert runner.run("SELECT count(*) AS n FROM alerts").frame.n[0] == 4
            assert runner.restarts == 1

    def test_deep_nesting_is_a_parse_error(self, guard):
        """DuckDB's expression depth limit turns a deeply nested expression into a parse error."""
        _refused(guard, "SELECT " + "(" * 5000 + "1" + ")" * 5000, "does not parse")

    def test_memory_limit_per_query(self, store):
        """A query needing more than the memory limit is refused (no spilling to disk); the guard goes on."""
        with GuardedSQL(store, timeout_s=30.0, memory_mb=64) as runner:
            _refused(
                runner,
                "SELECT count(DISTINCT range) AS n FROM range(100000000)",
                "(?s)64 MB memory limit.*LANGSWARM_SQL_MEMORY_MB",
            )
            assert runner.run("SELECT count(*) AS n FROM spans").frame.n[0] > 0

    def test_a_result_too_large_for_the_app_is_refused(self, store):
        """One big value is under the row cap but would land in the app's process: refused by size."""
        runner = GuardedSQL(store, timeout_s=30.0, max_result_mb=5)
        _refused(runner, "SELECT repeat('x', 8000000) AS big", "(?s)5 MB limit.*LANGSWARM_SQL_MAX_RESULT_MB")
        assert runner.run("SELECT repeat('x', 1000000) AS fits").frame.fits[0] == "x" * 1_000_000
        runner.close()

    def test_a_function_that_ignores_the_interrupt_is_stopped(self, guard):
        """sleep_ms never checks DuckDB's interrupt flag: the worker is killed one second past the limit."""
        before = guard.restarts
        _refused(guard, "SELECT sleep_ms(600000)", STOPPED)
        assert guard.run("SELECT 42 AS answer").frame.answer[0] == 42
        assert guard.restarts == before + 1

    def test_a_slow_query_does_not_block_other_users(self, guard):
        """While one user's planning bomb runs, another user's query is answered once the bomb is stopped."""
        errors: list[str] = []

        def bomb() -> None:
            try:
                guard.run(_cte_bomb(30))
            except QueryError as exc:
                errors.append(str(exc))

        thread = threading.Thread(target=bomb)
        thread.start()
        while not guard._lock.locked() and thread.is_alive():  # the bomb holds the guard first
            threading.Event().wait(0.01)
        assert guard.run("SELECT 42 AS answer").frame.answer[0] == 42
        thread.join()
        assert len(errors) == 1 and re.search(STOPPED, errors[0])


UNCHECKED_WORKER = (
    "-P",
    "-c",
    "import explorer.sql_guard.worker as w; w.checked_sql = lambda sql, con: ('SELECT', sql); w.main()",
)


@pytest.fixture
def unchecked(store, monkeypatch):
    """A guard whose worker skips the statement check, as if a bypass like EXPLAIN ANALYZE were found:
    the layers behind the check (the worker's sandbox, Landlock, the catalog comparison) must hold."""
    monkeypatch.setattr(sql_guard.guarded, "WORKER_ARGS", UNCHECKED_WORKER)
    with GuardedSQL(store, timeout_s=5.0, memory_mb=256, threads=1) as runner:
        yield runner


class TestBehindTheStatementCheck:
    @pytest.mark.parametrize(
        ("sql", "listing"),
        [
            ("CREATE OR REPLACE VIEW spans AS SELECT 1 AS x", "duckdb_views"),
            ("CREATE MACRO abs(x) AS 42", "duckdb_functions"),
            ("CREATE TEMP MACRO abs(x) AS 42", "duckdb_functions"),
            ("CREATE TEMP TABLE t AS SELECT 1 AS x", "duckdb_tables"),
            ("CREATE SCHEMA forged", "duckdb_schemas"),
            ("SET VARIABLE v = 1", "duckdb_variables"),
            ("PREPARE p AS SELECT 1", "duckdb_prepared_statements"),
            ("ATTACH ':memory:' AS other", "duckdb_databases"),
        ],
    )
    def test_a_changed_catalog_is_refused_and_rebuilt(self, unchecked, facts, baseline, sql, listing):
        """Whatever changes the catalog is refused, and the worker rebuilt: nothing it did survives."""
        _refused(unchecked, sql, f"changed the guarded connection's catalog \\({listing}")
        assert unchecked.run("SELECT count(*) AS n FROM spans").frame.n[0] == facts.span_count
        assert unchecked.run("SELECT abs(-3) AS a").frame.a[0] == 3
        assert unchecked.restarts == 1
        assert _files(facts.root) == baseline

    @pytest.mark.parametrize(
        "sql",
        [
            "COPY (SELECT 1 AS forged) TO '{root}/spans/forged.parquet'",
            "COPY (SELECT 1 AS forged) TO 'spans/forged.csv'",
            "EXPLAIN ANALYZE COPY spans TO '{root}/alerts/forged.parquet'",
            "EXPORT DATABASE '{root}/export'",
            "COPY (SELECT 1) TO '/tmp/forged-by-sql.csv'",
        ],
    )
    def test_nothing_can_be_written_even_inside_the_store(self, unchecked, facts, baseline, sql):
        """DuckDB's sandbox lets the worker read the store, but the kernel refuses it any write."""
        assert unchecked.write_protection.startswith("Landlock")
        with pytest.raises(QueryError):
            unchecked.run(sql.format(root=facts.root))
        assert _files(facts.root) == baseline
        assert not Path("/tmp/forged-by-sql.csv").exists()
        assert unchecked.run("SELECT count(*) AS n FROM spans").frame.n[0] == facts.span_count

    @pytest.mark.parametrize(
        "sql",
        ["SET enable_external_access = true", "SET allowed_directories = ['/']", "RESET lock_configuration"],
    )
    def test_the_configuration_is_locked(self, unchecked, sql):
        """Even a SET that reached DuckDB could not reopen the sandbox."""
        _refused(unchecked, sql, "locked")

    def test_limits_are_the_connection_settings(self, unchecked):
        """Memory and threads are the guard's; there is no temp directory to spill to or read."""
        frame = unchecked.run(
            "SELECT current_setting('memory_limit') AS memory, current_setting('threads') AS threads, "
            "current_setting('temp_directory') AS temp, current_setting('enable_external_access') AS external"
        ).frame
        assert frame.to_dict("records") == [
            {"memory": "256.0 MiB", "threads": 1, "temp": "", "external": False}
        ]

    def test_outside_files_stay_unreadable(self, unchecked):
        """DuckDB's own sandbox refuses reads outside the store without the statement check's help."""
        _refused(unchecked, "SELECT * FROM read_text('/etc/hostname')", "Only the store's views")


class TestSharedGuardInTheApp:
    def test_a_bypass_attempt_on_the_sql_page_leaves_every_user_the_real_spans(self, monkeypatch, facts):
        """The forged-view attack through the SQL page is refused; after "Reload store" spans are intact."""
        from streamlit.testing.v1 import AppTest

        monkeypatch.setenv("LANGSWARM_TELEMETRY_DIR", str(facts.root))
        at = AppTest.from_file(str(APP), default_timeout=60)
        at.run()
        at.switch_page("app_pages/sql.py")
        at.run()
        at.text_area(key="sql_text").input(
            "EXPLAIN ANALYZE CREATE OR REPLACE VIEW spans AS SELECT 1 AS x"
        ).run()
        assert at.error and "EXPLAIN refused" in at.error[0].value
        at.button(key="reload").click().run()
        at.text_area(key="sql_text").input("SELECT count(*) AS n FROM spans").run()
        assert not at.exception and at.dataframe[0].value.n[0] == facts.span_count
