"""Hypothesis settings of the fuzz tests: bounded examples, no deadline, marked ``fuzz``.

``LANGSWARM_FUZZ_EXAMPLES`` sets the examples per test (default 150; ``make test-sanitize`` uses a
smaller number, since ASan/UBSan make the compiled code several times slower).
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "langswarm",
    max_examples=int(os.environ.get("LANGSWARM_FUZZ_EXAMPLES", "150")),
    deadline=None,  # no wall-clock limits in tests: a slow shared machine must not fail an example
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    print_blob=True,
)
settings.load_profile("langswarm")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/fuzz/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.fuzz)
