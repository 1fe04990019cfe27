"""The folder tree is the architecture (docs/architecture.md): these import rules keep it true."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _imports(folder: str) -> dict[str, set[str]]:
    """Every module under ``folder`` -> the absolute module names it imports."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / folder).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
        found[str(path.relative_to(ROOT))] = names
    return found


@pytest.mark.parametrize(
    ("folder", "forbidden"),
    [
        ("ingest/sdk", ("ingest.sources", "ingest.demo")),
        ("ingest/sources", ("ingest.sdk", "ingest.demo")),
        ("ingest/store", ("ingest.sdk", "ingest.sources", "ingest.demo", "explorer")),
        ("explorer", ("ingest.sources", "ingest.store.compact", "ingest.demo")),
    ],
)
def test_layers_do_not_import_across_roles(folder: str, forbidden: tuple[str, ...]) -> None:
    """The SDK and the sources only meet in the store; the store imports neither; the explorer never
    imports the compactor (it takes the readers' lock from ``ingest.store.lock``) or a source."""
    offending = {
        module: sorted(name for name in names if name.startswith(forbidden))
        for module, names in _imports(folder).items()
    }
    assert {module: names for module, names in offending.items() if names} == {}


def test_c_extensions_sit_next_to_their_callers() -> None:
    """The span encoder belongs to the store, the OTLP JSON reader to the sources."""
    assert (ROOT / "ingest/store/_spanpack.c").exists()
    assert (ROOT / "ingest/sources/_jsonarrow.c").exists()
    assert not list((ROOT / "ingest").glob("*.c"))
