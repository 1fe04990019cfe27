"""Hypothesis settings of the fuzz tests: bounded examples, no deadline, marked ``fuzz``.

``LANGSWARM_FUZZ_EXAMPLES`` sets the examples per test (default 100; ``make test-sanitize`` uses a
smaller number, since ASan/UBSan make the compiled code several times slower).
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

import ingest.sources
import ingest.store

# `make test-sanitize`: the ASan/UBSan builds of the compiled modules come first on their packages'
# paths, so `from ingest.sources import _jsonarrow` (in ingest itself too) loads them, not the installed ones.
SANITIZED = os.environ.get("LANGSWARM_SANITIZED_EXT")
if SANITIZED:
    root = os.path.abspath(SANITIZED)
    ingest.sources.__path__.insert(0, os.path.join(root, "sources"))
    ingest.store.__path__.insert(0, os.path.join(root, "store"))
    from ingest.sources import _jsonarrow
    from ingest.store import _spanpack

    for module in (_jsonarrow, _spanpack):
        assert os.path.abspath(module.__file__).startswith(root + os.sep), module.__file__


settings.register_profile(
    "langswarm",
    max_examples=int(os.environ.get("LANGSWARM_FUZZ_EXAMPLES", "100")),
    deadline=None,  # no wall-clock limits in tests: a slow shared machine must not fail an example
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    print_blob=True,
)
settings.load_profile("langswarm")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/fuzz/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.fuzz)
