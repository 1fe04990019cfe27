"""Shared fixtures: a fresh store directory and providers that are always shut down."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def make_provider(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Build ObservabilityProviders writing to ``tmp_path/"store"`` (console logs off); all shut down at teardown."""
    from ingest import ObservabilityProvider

    made: list[Any] = []

    def make(config: dict[str, Any] | None = None, service_name: str = "test-service") -> Any:
        cfg = {key: dict(value) if isinstance(value, dict) else value for key, value in (config or {}).items()}
        cfg.setdefault("store", {}).setdefault("path", str(tmp_path / "store"))
        cfg["store"].setdefault("durable", False)
        cfg.setdefault("logging", {}).setdefault("output", "none")
        provider = ObservabilityProvider.create(cfg, service_name)
        made.append(provider)
        return provider

    yield make
    for provider in made:
        provider.shutdown()
