"""Shared fixtures: a fresh store directory and providers that are always shut down."""

from __future__ import annotations

import logging
import socket
import uuid
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
        cfg = {
            key: dict(value) if isinstance(value, dict) else value for key, value in (config or {}).items()
        }
        cfg.setdefault("store", {}).setdefault("path", str(tmp_path / "store"))
        cfg["store"].setdefault("durable", False)
        cfg.setdefault("logging", {}).setdefault("output", "none")
        provider = ObservabilityProvider.create(cfg, service_name)
        made.append(provider)
        return provider

    yield make
    for provider in made:
        provider.shutdown()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on 127.0.0.1, for the whole session (a real HTTP S3 API, in memory)."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """A fresh bucket; the standard AWS variables point every client (ours, subprocesses) at the server."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": s3_endpoint,
        _objectstore().CONTROL_ENV: str(tmp_path / "control"),
    }.items():
        monkeypatch.setenv(name, value)
    name = f"telemetry-{uuid.uuid4().hex[:12]}"
    _objectstore().filesystem().mkdir(f"s3://{name}")
    return name


def _objectstore() -> Any:
    from ingest.store import objectstore

    return objectstore
