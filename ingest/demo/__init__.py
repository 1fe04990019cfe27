"""A simulated LangSwarm multi-agent application, instrumented only through this SDK: ``python -m ingest demo``.

Three services on ``127.0.0.1``, each with its own :class:`~ingest.sdk.provider.ObservabilityProvider`:

- ``gateway``: authenticates and forwards ``POST /v1/chat`` to the orchestrator;
- ``orchestrator``: an agent pool — orchestrator → planner → researcher (tools over HTTP, retries) →
  writer — calling simulated LLMs (GenAI semantic-convention spans and metrics), memory look-ups,
  profiled CPU work, ``AlertManager`` thresholds and ``HealthCheckManager`` checks;
- ``tool-service``: ``web_search`` over an upstream search API, ``vector_search``, ``calculator``.

The run goes through an incident — the ``openai`` provider slows down and the search API fails —
that fires alerts which resolve after it. Everything but wall-clock times and ids is a function of
``--seed`` (see :mod:`ingest.demo.scenario`); modelled durations are slept at ``--time-scale`` (1:20)::

    from ingest.demo import run_demo
    result = run_demo("telemetry", seed=7, scale="small")
    print(result.summary())
"""

from __future__ import annotations

from ingest._lazy import lazy_exports

# Imported on first use, so ``python -m ingest demo --help`` does not load the SDK and the services.
_EXPORTS = {
    "DEFAULT_TIME_SCALE": "ingest.demo.scenario",
    "SCALES": "ingest.demo.scenario",
    "DemoResult": "ingest.demo.runner",
    "Scenario": "ingest.demo.scenario",
    "run_demo": "ingest.demo.runner",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports("ingest.demo", _EXPORTS, globals())
