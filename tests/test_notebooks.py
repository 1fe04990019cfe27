"""The notebooks: run top to bottom by a real Jupyter kernel against sample_data/, committed without outputs."""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import duckdb
import nbformat
import pytest
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

import explorer

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SAMPLE = ROOT / "sample_data"
REQUIRED = {
    "01-post-mortem",
    "02-latency",
    "03-profile-hotspots",
    "04-alerts-and-thresholds",
    "05-sql-cookbook",
    "06-llm-usage",
}
#: Modules of the explorer a notebook may import from: the package's public names, and alert replay.
PUBLIC_MODULES = {"explorer": set(explorer.__all__), "explorer.alert_history": {"alert_history"}}


def _read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def _code(notebook: nbformat.NotebookNode) -> list[str]:
    return [cell.source for cell in notebook.cells if cell.cell_type == "code"]


def test_the_five_notebooks_exist():
    """Post-mortem, latency, profile hotspots, alerts and SQL cookbook are all there."""
    assert {path.stem for path in NOTEBOOKS} >= REQUIRED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
class TestCommitted:
    def test_no_outputs(self, path):
        """No cell carries outputs or an execution count, so a diff shows only code and prose."""
        for cell in _read(path).cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, cell.source[:80]

    def test_store_comes_from_a_parameter_cell(self, path):
        """The first code cell is tagged ``parameters`` and reads LANGSWARM_TELEMETRY_DIR, else sample_data."""
        first = next(cell for cell in _read(path).cells if cell.cell_type == "code")
        assert "parameters" in first.metadata.get("tags", [])
        assert "LANGSWARM_TELEMETRY_DIR" in first.source and "sample_data" in first.source

    def test_uses_only_the_public_explorer_api(self, path):
        """Imports from the explorer name only its public API; nothing imports streamlit."""
        for source in _code(_read(path)):
            for node in ast.walk(ast.parse(source)):
                if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "explorer":
                    assert node.module in PUBLIC_MODULES, node.module
                    assert {a.name for a in node.names} <= PUBLIC_MODULES[node.module], node.module
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                    assert not any(n.split(".")[0] == "streamlit" for n in names)


def _cookbook_queries() -> list[str]:
    notebook = _read(ROOT / "notebooks" / "05-sql-cookbook.ipynb")
    return [
        m.group(1) for source in _code(notebook) for m in re.finditer(r'ask\("""(.*?)"""\)', source, re.S)
    ]


def test_cookbook_queries_run_verbatim_from_the_repository_root(monkeypatch):
    """Every cookbook query runs unchanged in plain DuckDB from the repository root (as in the duckdb CLI)."""
    queries = _cookbook_queries()
    assert len(queries) >= 10
    monkeypatch.chdir(ROOT)
    con = duckdb.connect()
    for sql in queries:
        assert "read_parquet('sample_data/" in sql and "hive_partitioning = true" in sql
        assert len(con.sql(sql).fetchall()) > 0, sql


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_against_the_sample_store(path):
    """A real kernel runs every cell against sample_data/; any cell error fails the test."""
    assert (SAMPLE / "spans").is_dir(), "sample_data/ is missing: see sample_data/README.md to regenerate it"
    notebook = _read(path)
    env = {k: v for k, v in os.environ.items() if k != "LANGSWARM_TELEMETRY_DIR"}
    # The kernel imports `explorer` and `ingest` from this checkout, installed or not.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    manager = KernelManager(kernel_name="python3")
    client = NotebookClient(
        notebook,
        km=manager,
        kernel_name="python3",
        timeout=300,
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute(env=env)
    errors = [o for cell in notebook.cells for o in cell.get("outputs", []) if o.output_type == "error"]
    assert not errors
    parameters = next(cell for cell in notebook.cells if cell.cell_type == "code")
    stores = [o.get("data", {}).get("text/plain", "") for o in parameters.get("outputs", [])]
    assert any("sample_data" in text for text in stores), "the parameter cell did not default to sample_data/"
    figures = sum(
        "application/vnd.plotly.v1+json" in o.get("data", {})
        for cell in notebook.cells
        for o in cell.get("outputs", [])
    )
    assert figures > 0 or path.stem == "05-sql-cookbook"


def test_the_why_slow_notebook_exists():
    """Issue 15's walk through the sample incident is among the notebooks the suite runs."""
    assert (ROOT / "notebooks" / "07-why-slow.ipynb") in NOTEBOOKS
