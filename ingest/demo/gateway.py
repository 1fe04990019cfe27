"""The API gateway: authenticates, rate-limits and forwards ``POST /v1/chat`` to the orchestrator.

The trace of every user request starts here (the load generator is an uninstrumented client, like a
browser); the gateway's CLIENT span carries the context on to the orchestrator.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from ingest.demo.scenario import GATEWAY_TIMEOUT_S, WINDOW_S, Scenario
from ingest.demo.telemetry import Rolling
from ingest.demo.web import FAULT_KEY_HEADER, CallError, HttpClient, JsonApp, Request, Response

if TYPE_CHECKING:
    from ingest.sdk.provider import ObservabilityProvider


class Gateway:
    """The gateway service (see the module docstring)."""

    def __init__(self, provider: ObservabilityProvider, scenario: Scenario, orchestrator_url: str) -> None:
        self.scenario = scenario
        self.orchestrator_url = orchestrator_url
        self.tracer = provider.get_tracer("gateway")
        self.logger = provider.get_logger("gateway")
        metrics = provider.get_metrics("gateway")
        self.http = HttpClient(provider, "orchestrator_client")
        self.requests = metrics.create_counter("gateway_requests_total", "Chat requests by tenant and status")
        self.inflight = metrics.create_gauge("gateway_inflight_requests", "Chat requests in flight")
        self.error_ratio = metrics.create_gauge(
            "gateway_error_ratio", "Share of 5xx answers among chat requests over the last modelled minute"
        )
        self._window = Rolling(scenario.real(WINDOW_S))
        self._lock = threading.Lock()
        self._inflight = 0

    def app(self) -> JsonApp:
        """The service's routes: ``POST /v1/chat`` and ``GET /health``."""
        return JsonApp(
            {("POST", "/v1/chat"): self.chat, ("GET", "/health"): lambda req: Response(200, {"status": "ok"})}
        )

    def chat(self, request: Request) -> Response:
        """``POST /v1/chat``: authenticate, rate-limit, forward to the orchestrator, pass its answer on."""
        s = self.scenario
        try:
            index = int(request.headers[FAULT_KEY_HEADER])
        except (KeyError, ValueError):
            return Response(400, {"error": f"missing or bad {FAULT_KEY_HEADER} header"})
        plan = s.request(index)
        self.tracer.get_current_span().set_attributes(
            {
                "enduser.id": plan.user_id,
                "session.id": plan.session_id,
                "langswarm.tenant": plan.tenant,
                "langswarm.request.mode": plan.mode,
                "http.route": "/v1/chat",
            }
        )
        auth_s, limit_s = s.gateway_overhead(index)
        with self.tracer.start_span("auth.verify_api_key", {"langswarm.tenant": plan.tenant}) as span:
            time.sleep(s.real(auth_s))
            span.set_attribute("langswarm.auth.valid", plan.api_key_valid)
        if not plan.api_key_valid:
            self.logger.warning("Rejected request: invalid API key", tenant=plan.tenant, user=plan.user_id)
            return self._done(plan.tenant, Response(401, {"error": "invalid API key"}))
        with self.tracer.start_span("ratelimit.check", {"langswarm.tenant": plan.tenant}):
            time.sleep(s.real(limit_s))
        self.logger.info("Chat request accepted", tenant=plan.tenant, user=plan.user_id, mode=plan.mode)
        with self._lock:
            self._inflight += 1
            self.inflight.set(self._inflight)
        try:
            body = self.http.call(
                "POST",
                self.orchestrator_url,
                "/agents/run",
                {"question": plan.question, "user_id": plan.user_id, "session_id": plan.session_id},
                timeout_s=s.real(GATEWAY_TIMEOUT_S),
                headers={FAULT_KEY_HEADER: str(index)},
            )
            response = Response(200, body)
        except CallError as exc:
            status = exc.status or 504
            self.logger.error("Chat request failed", status=status, error=str(exc), tenant=plan.tenant)
            response = Response(status, {"error": str(exc)})
        finally:
            with self._lock:
                self._inflight -= 1
                self.inflight.set(self._inflight)
        return self._done(plan.tenant, response)

    def _done(self, tenant: str, response: Response) -> Response:
        self.requests.increment(labels={"tenant": tenant, "status": str(response.status)})
        self._window.add(1.0 if response.status >= 500 else 0.0)
        return response

    def refresh(self) -> None:
        """Set the error-ratio gauge from its window (called by the demo's ticker)."""
        self.error_ratio.set(round(self._window.mean(), 4))
