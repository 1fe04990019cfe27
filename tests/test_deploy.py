"""The Collector configurations in deploy/ and what docs/deployment.md says about them: each file parses, every
pipeline names only receivers, processors and exporters the file defines, and the documented processors,
health check and exporters are there."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DOC = (REPO / "docs" / "deployment.md").read_text(encoding="utf-8")
CONFIGS = sorted(REPO.glob("deploy/*/otel-collector.yaml"))


def _load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def test_every_collector_config_is_in_the_docs_table_and_back() -> None:
    documented = set(re.findall(r"^\| `(deploy/[^`]+)` \|", DOC, flags=re.M))
    assert {str(p.relative_to(REPO)) for p in CONFIGS} <= documented
    assert all((REPO / name).is_file() for name in documented), documented
    assert len(CONFIGS) == 5


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.parent.name)
def test_pipelines_name_only_defined_components(path: Path) -> None:
    config = _load(path)
    service = config["service"]
    assert service["pipelines"], path
    for name, pipeline in service["pipelines"].items():
        assert name.split("/")[0] in {"traces", "metrics", "logs"}, name
        for section in ("receivers", "processors", "exporters"):
            used = pipeline.get(section) or []
            assert used or section == "processors", (path, name, section)
            missing = [c for c in used if c not in (config.get(section) or {})]
            assert not missing, f"{path.name}: pipeline {name} uses undefined {section} {missing}"
    for extension in service.get("extensions") or []:
        assert extension in (config.get("extensions") or {}), (path, extension)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.parent.name)
def test_the_documented_processors_and_health_check_hold(path: Path) -> None:
    """docs: "Each has memory_limiter, batch and resourcedetection processors and a health check on :13133"."""
    assert "Each has `memory_limiter`, `batch` and `resourcedetection`" in DOC and "`:13133`" in DOC
    config = _load(path)
    for name, pipeline in config["service"]["pipelines"].items():
        processors = pipeline["processors"]
        assert processors[0] == "memory_limiter", (path, name)  # first, so it can refuse data under pressure
        assert processors[-1] == "batch", (path, name)
        assert "resourcedetection" in processors, (path, name)
    assert "health_check" in config["service"]["extensions"]
    assert config["extensions"]["health_check"]["endpoint"].endswith(":13133")
    assert config["receivers"]["otlp"]["protocols"]["http"]["endpoint"] == "0.0.0.0:4318"


def test_the_documented_backends_hold() -> None:
    def exporters(target: str, signal: str) -> list[str]:
        return _load(REPO / "deploy" / target / "otel-collector.yaml")["service"]["pipelines"][signal][
            "exporters"
        ]

    assert exporters("aws", "traces") == ["awsxray"] and exporters("aws", "metrics") == ["awsemf"]
    assert exporters("aws", "logs") == ["awscloudwatchlogs"]
    assert exporters("gcp", "traces") == ["googlecloud"] and exporters("gcp", "logs") == ["googlecloud"]
    assert exporters("gcp", "metrics") == ["googlemanagedprometheus"]
    assert all(exporters("azure", s) == ["azuremonitor"] for s in ("traces", "metrics", "logs"))
    assert exporters("kubernetes", "traces") == ["otlp/jaeger"]
    store = _load(REPO / "deploy" / "store" / "otel-collector.yaml")
    for signal in ("traces", "metrics", "logs"):
        assert store["service"]["pipelines"][signal]["exporters"] == ["otlphttp/ingest"]
    assert store["exporters"]["otlphttp/ingest"]["endpoint"] == "${env:INGEST_ENDPOINT}"
    # The file alternative writes what `python -m ingest import` reads: OTLP JSON, one request a line.
    assert store["exporters"]["file/spool"]["format"] == "json"


def test_the_kubernetes_manifests_parse() -> None:
    documents = [
        d for d in yaml.safe_load_all((REPO / "deploy" / "kubernetes" / "deployment.yaml").read_text()) if d
    ]
    assert any(d.get("kind") == "Deployment" for d in documents)
