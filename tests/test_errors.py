"""Every exception class ingest and explorer raise on purpose lives in their ``errors`` module and is exported."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import explorer
import explorer.errors
import ingest
import ingest.errors
from ingest import ObservabilityProvider

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("package", "errors"), [(ingest, ingest.errors), (explorer, explorer.errors)])
def test_every_error_class_is_exported_and_derives_from_the_base(package, errors) -> None:
    classes = {
        name: cls for name, cls in vars(errors).items() if inspect.isclass(cls) and issubclass(cls, Exception)
    }
    base = ingest.IngestError if package is ingest else explorer.ExplorerError
    for name, cls in classes.items():
        assert getattr(package, name) is cls, f"{package.__name__}.{name} is not exported"
        assert issubclass(cls, base) and name in package.__all__


@pytest.mark.parametrize("package", ["ingest", "explorer"])
def test_no_public_exception_class_is_defined_outside_errors(package: str) -> None:
    """A public exception class (no leading underscore) anywhere else in the package is one to move."""
    found = []
    for path in sorted((REPO / package).rglob("*.py")):
        if path.name == "errors.py" or "demo" in path.parts:  # the demo app's own simulated failures
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                bases = {getattr(b, "id", getattr(b, "attr", "")) for b in node.bases}
                if any(b.endswith(("Error", "Exception")) for b in bases):
                    found.append(f"{path.relative_to(REPO)}:{node.name}")
    assert found == []


def test_a_bad_span_kind_status_or_log_level_is_a_telemetry_value_error(tmp_path: Path) -> None:
    provider = ObservabilityProvider.create(
        {"store": {"path": str(tmp_path)}, "logging": {"output": "none"}}, "svc"
    )
    try:
        tracer, logger = provider.get_tracer("c"), provider.get_logger("c")
        with pytest.raises(ingest.TelemetryValueError, match="span kind 'sideways' is not valid"):
            tracer.start_span("x", kind="sideways")
        with tracer.start_span("x") as span, pytest.raises(ValueError, match="'MAYBE' is not valid"):
            span.set_status("MAYBE")  # still a ValueError for code written before the class existed
        with pytest.raises(ingest.TelemetryValueError, match="log level 'LOUD'"):
            logger.log("LOUD", "hello")
    finally:
        provider.shutdown()
