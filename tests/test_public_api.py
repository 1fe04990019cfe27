"""The fixed public surface of SPEC.md: every name importable from the two packages."""

from __future__ import annotations

import subprocess
import sys

import pytest

import explorer
import ingest

SPEC_NAMES = [
    "ObservabilityProvider",
    "V2Logger",
    "V2Tracer",
    "V2Metrics",
    "ObservableComponent",
    "NoOpLogger",
    "NoOpTracer",
    "NoOpMetrics",
    "DistributedObservability",
    "PerformanceProfiler",
    "AlertManager",
    "Alert",
    "AlertSeverity",
    "HealthCheckManager",
    "ProductionObservabilitySetup",
    "ConfigurationError",
]


class TestIngestSurface:
    @pytest.mark.parametrize("name", sorted(ingest.__all__))
    def test_every_exported_name_resolves(self, name):
        """Each lazily exported name imports from the module the map names."""
        assert getattr(ingest, name) is not None

    def test_spec_names_are_exported(self):
        assert set(SPEC_NAMES) <= set(ingest.__all__)

    def test_unknown_name_is_an_attribute_error(self):
        with pytest.raises(AttributeError, match="no attribute 'Nope'"):
            ingest.Nope  # noqa: B018

    def test_import_is_lazy(self):
        """`import ingest` does not pull in the SDK or pyarrow until a name is used."""
        code = "import sys, ingest; print('pyarrow' in sys.modules, 'opentelemetry.sdk.trace' in sys.modules)"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        assert out.split() == ["False", "False"]


def test_explorer_surface_resolves():
    for name in explorer.__all__:
        assert getattr(explorer, name) is not None
    assert callable(explorer.open_store)
