"""The one timing helper the bench scripts share (run as ``python bench/<script>.py``, this folder is on
``sys.path``)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median(function: Callable[[], object], runs: int) -> float:
    """Median wall-clock seconds of ``runs`` calls of ``function``."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)
