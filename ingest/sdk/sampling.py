"""Samplers: parent-based trace-id ratio, the adaptive (guaranteed-throughput) root sampler, span limits.

All decisions are head decisions made by the OTel SDK's ``Sampler`` interface, so a trace is kept
or dropped whole: children follow their parent (``ParentBased``), and the W3C ``traceparent`` flag
carries the decision to other services.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry import trace as trace_api
from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanKind, TraceState
from opentelemetry.util.types import Attributes, AttributeValue

_STATE_KEY = "langswarm"
_STATE_LIMIT = "limit"
SAMPLING_RULE = "langswarm.sampling.rule"
SAMPLING_RATE = "langswarm.sampling.rate"
LIMIT_REACHED = "langswarm.limit.max_spans_per_trace_reached"


class AdaptiveSampler(Sampler):
    """Root sampler that keeps up to ``traces_per_second`` traces, then falls back to ``rate``.

    The design of Jaeger's guaranteed-throughput sampler: a token bucket (capacity and refill
    ``traces_per_second``) admits root traces first, so a quiet service keeps every trace and a busy
    one keeps about ``traces_per_second`` plus ``rate`` of the rest — overhead stays bounded under load
    without losing low-traffic endpoints. Each kept root span records which rule kept it
    (``langswarm.sampling.rule`` = ``budget`` | ``ratio``) and the ratio in force
    (``langswarm.sampling.rate``), so counts can be re-weighted afterwards.
    """

    def __init__(
        self, rate: float, traces_per_second: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ratio = TraceIdRatioBased(rate)
        self.rate = rate
        self.traces_per_second = traces_per_second
        self._capacity = max(1.0, traces_per_second)
        self._tokens = self._capacity
        self._clock = clock
        self._last = clock()
        self._lock = threading.Lock()
        self.kept_by_budget = 0
        self.kept_by_ratio = 0
        self.dropped = 0
        self._budget_attrs: dict[str, AttributeValue] = {SAMPLING_RULE: "budget", SAMPLING_RATE: 1.0}
        self._ratio_attrs: dict[str, AttributeValue] = {SAMPLING_RULE: "ratio", SAMPLING_RATE: rate}

    def _take_token(self) -> bool:
        with self._lock:
            now = self._clock()
            self._tokens = min(self._capacity, self._tokens + (now - self._last) * self.traces_per_second)
            self._last = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        parent = trace_api.get_current_span(parent_context).get_span_context()
        state = parent.trace_state if parent.is_valid else None
        if self._take_token():
            self.kept_by_budget += 1
            return SamplingResult(Decision.RECORD_AND_SAMPLE, self._budget_attrs, state)
        result = self._ratio.should_sample(parent_context, trace_id, name, kind, attributes, links)
        if result.decision.is_sampled():
            self.kept_by_ratio += 1
            return SamplingResult(Decision.RECORD_AND_SAMPLE, self._ratio_attrs, state)
        self.dropped += 1
        return SamplingResult(Decision.DROP, None, state)

    def get_description(self) -> str:
        return f"AdaptiveSampler{{traces_per_second={self.traces_per_second}, rate={self.rate}}}"


class TraceSpanLimiter:
    """Counts spans per trace started in this process and refuses those past ``max_spans``.

    A refused span becomes non-recording and so do its descendants (they follow the parent), so the
    kept part of the trace stays a connected tree. The parent of the first refused span gets the
    attribute ``langswarm.limit.max_spans_per_trace_reached = true``; every refusal is counted in
    ``dropped`` (written to the store as ``langswarm.telemetry.dropped_spans{reason=max_spans_per_trace}``).
    Descendants of a refused span are counted too: the refused span's ``tracestate`` carries
    ``langswarm=limit``, which its children inherit. Counts are forgotten when the trace's local
    root span ends; at most ``max_traces`` are tracked.
    """

    def __init__(
        self, max_spans: int, *, max_traces: int = 100_000, on_drop: Callable[[], None] | None = None
    ) -> None:
        self.max_spans = max_spans
        self.max_traces = max_traces
        self.counts: dict[int, int] = {}
        self.dropped = 0
        self.on_drop = on_drop

    def refused(self) -> None:
        """Count one span refused because of the limit (itself or a descendant of a refused span)."""
        self.dropped += 1
        if self.on_drop is not None:
            self.on_drop()

    def admit(self, trace_id: int, parent_context: Context | None) -> bool:
        counts = self.counts
        n = counts.get(trace_id, 0) + 1
        if n > self.max_spans:
            self.refused()
            parent = trace_api.get_current_span(parent_context)
            if parent.is_recording():
                parent.set_attribute(LIMIT_REACHED, True)
            return False
        if n == 1 and len(counts) >= self.max_traces:
            counts.pop(next(iter(counts)), None)
        counts[trace_id] = n
        return True

    def forget(self, trace_id: int) -> None:
        self.counts.pop(trace_id, None)


class LimitedSampler(Sampler):
    """Wraps a sampler and applies a :class:`TraceSpanLimiter` to the spans it keeps."""

    def __init__(self, inner: Sampler, limiter: TraceSpanLimiter) -> None:
        self.inner = inner
        self.limiter = limiter

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        state: TraceState | None
        result = self.inner.should_sample(parent_context, trace_id, name, kind, attributes, links)
        if result.decision.is_sampled():
            if self.limiter.admit(trace_id, parent_context):
                return result
            state = result.trace_state or TraceState()
            state = (
                state.update(_STATE_KEY, _STATE_LIMIT)
                if _STATE_KEY in state
                else state.add(_STATE_KEY, _STATE_LIMIT)
            )
            return SamplingResult(Decision.DROP, None, state)
        state = result.trace_state
        if state is not None and state.get(_STATE_KEY) == _STATE_LIMIT:
            self.limiter.refused()
        return result

    def get_description(self) -> str:
        return (
            f"LimitedSampler{{{self.inner.get_description()}, max_spans_per_trace={self.limiter.max_spans}}}"
        )


def build_sampler(
    tracing: dict[str, Any], limiter: TraceSpanLimiter | None
) -> tuple[Sampler, AdaptiveSampler | None]:
    """The provider's sampler from the resolved ``tracing`` section; also returns the adaptive root, if any."""
    rate = tracing["sampling_rate"]
    adaptive = None
    if tracing["adaptive_sampling"]:
        adaptive = AdaptiveSampler(rate, tracing["adaptive_traces_per_second"])
        root: Sampler = adaptive
    else:
        root = TraceIdRatioBased(rate)
    sampler: Sampler = ParentBased(root)
    if limiter is not None:
        sampler = LimitedSampler(sampler, limiter)
    return sampler, adaptive
