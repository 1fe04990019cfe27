"""Resource monitoring with psutil: process and system CPU/memory as gauges, warnings over thresholds.

``ResourceMonitor(provider).sample()`` reads psutil once and sets the gauges
``process_cpu_percent``, ``process_memory_rss_bytes``, ``process_threads``,
``process_open_files``, ``system_cpu_percent`` and ``system_memory_percent`` (the guide's
``monitor_resource_usage``), logging a warning when CPU or memory is above its threshold;
``start(interval_s)`` samples in a daemon thread until ``stop()``.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import psutil

if TYPE_CHECKING:
    from ingest.sdk.provider import ObservabilityProvider


class ResourceMonitor:
    """Samples psutil into gauges of the provider's metrics; thresholds are percentages."""

    def __init__(
        self,
        observability_provider: ObservabilityProvider,
        *,
        cpu_threshold: float = 80.0,
        memory_threshold: float = 80.0,
        component: str = "resources",
    ) -> None:
        self.logger = observability_provider.get_logger(component)
        self.metrics = observability_provider.get_metrics(component)
        self.cpu_threshold = cpu_threshold
        self.memory_threshold = memory_threshold
        self._process = psutil.Process()
        self._process.cpu_percent(None)  # prime: the first call always returns 0.0
        psutil.cpu_percent(None)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> dict[str, float]:
        """Read psutil, set the gauges, warn over thresholds; returns the values set."""
        with self._process.oneshot():
            memory = self._process.memory_info()
            values = {
                "process_cpu_percent": float(self._process.cpu_percent(None)),
                "process_memory_rss_bytes": float(memory.rss),
                "process_threads": float(self._process.num_threads()),
            }
            try:
                values["process_open_files"] = float(len(self._process.open_files()))
            except (psutil.AccessDenied, OSError):
                pass
        values["system_cpu_percent"] = float(psutil.cpu_percent(None))
        values["system_memory_percent"] = float(psutil.virtual_memory().percent)
        for name, value in values.items():
            self.metrics.set_gauge(name, value)
        if values["system_cpu_percent"] > self.cpu_threshold:
            self.logger.warning("High CPU usage detected", cpu_percent=values["system_cpu_percent"])
        if values["system_memory_percent"] > self.memory_threshold:
            self.logger.warning("High memory usage detected", memory_percent=values["system_memory_percent"])
        return values

    def start(self, interval_s: float = 15.0) -> None:
        """Sample every ``interval_s`` seconds in a daemon thread."""
        if self._thread is not None:
            return
        self._stop.clear()

        def run() -> None:
            while not self._stop.wait(interval_s):
                try:
                    self.sample()
                except Exception:
                    self.logger.exception("resource sampling failed")

        self._thread = threading.Thread(target=run, name="langswarm-resource-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the sampling thread (if started)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
