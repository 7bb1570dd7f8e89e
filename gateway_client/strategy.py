"""``RouteIQRoutingStrategy``: a LiteLLM custom routing strategy backed by the decision service.

For each pick it sends the prompt and the requested group's healthy deployments to
``DecisionService.Route`` with a deadline and returns the top-ranked deployment, exactly as the
router's registry holds it. When the service cannot be used (breaker open, deadline missed,
error, unusable answer) it returns the static fallback policy's pick instead: a pick never fails
because of the service. The only error it raises is LiteLLM's own ``BadRequestError`` for a model
the router has no deployment for.

Every pick is recorded as a :class:`RoutingDecision` in the request's metadata under
``METADATA_KEY`` (LiteLLM passes the caller's metadata dict through) and as ``last_decision``.

The work is split by concern: :mod:`~gateway_client.planner` decides (pure),
:mod:`~gateway_client.pick` runs a pick for both entry points, :mod:`~gateway_client.recording`
records it, :mod:`~gateway_client.decision` holds the record types. This module wires them to
LiteLLM.
"""

from __future__ import annotations

import threading
from typing import Any, cast

from litellm.types.router import CustomRoutingStrategyBase
from opentelemetry.trace import TracerProvider

from .breaker import CircuitBreaker
from .callback import RouteIQOutcomeCallback, dispatcher
from .client import DecisionClient, RouteCaller
from .decision import Reason, RoutingDecision, RoutingStats
from .fallback import FallbackPolicy, make_fallback_policy
from .metrics import GatewayMetrics, default_metrics
from .outcomes import METADATA_KEY, OutcomeReporter, OutcomeSender
from .pick import Picker, run, run_async
from .planner import Planner
from .recording import PickRecorder
from .router_view import Deployment, RouterView
from .settings import GatewayClientSettings
from .telemetry import tracer

__all__ = [
    "METADATA_KEY",
    "Reason",
    "RouteIQRoutingStrategy",
    "RoutingDecision",
    "RoutingStats",
    "install",
]


class RouteIQRoutingStrategy(CustomRoutingStrategyBase):
    """Picks each request's deployment with the decision service, behind a circuit breaker.

    Its collaborators are plain attributes, set once here: ``router``, ``settings``,
    ``client``, ``breaker``, ``fallback_policy``, ``metrics``, ``tracer_provider``, ``view``
    (what it reads of the router), ``planner``, ``recorder`` (``recorder.stats``: picks routed,
    fallen back and bypassed) and ``picker``. Replacing one afterwards does not rewire the
    others: build a new strategy instead.
    """

    def __init__(
        self,
        router: Any,
        settings: GatewayClientSettings | None = None,
        client: RouteCaller | None = None,
        *,
        breaker: CircuitBreaker | None = None,
        fallback: FallbackPolicy | None = None,
        metrics: GatewayMetrics | None = None,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        self.router = router
        self.settings = settings if settings is not None else GatewayClientSettings()
        self._owned_client: DecisionClient | None = None
        if client is None:
            self._owned_client = DecisionClient.from_settings(self.settings)
            client = self._owned_client
        self.client: RouteCaller = client
        self.breaker = breaker or CircuitBreaker(
            self.settings.breaker_failure_threshold, self.settings.breaker_cooldown_s
        )
        self.fallback_policy = fallback or make_fallback_policy(self.settings.fallback_policy)
        self.metrics = metrics or default_metrics()
        self.metrics.breakers.track(self.settings.target, self.breaker)
        self.tracer_provider = tracer_provider
        self.view = RouterView(router)
        self.planner = Planner(self.settings, self.fallback_policy)
        self.recorder = PickRecorder(self.metrics, f"static:{self.fallback_policy.name}")
        self.picker = Picker(
            self.view, self.planner, self.breaker, self.recorder, tracer(tracer_provider)
        )
        self._callback: RouteIQOutcomeCallback | None = None
        self._lock = threading.Lock()

    @property
    def last_decision(self) -> RoutingDecision | None:
        """The latest pick (each request's own is in its metadata under ``METADATA_KEY``)."""
        return self.recorder.last_decision

    # -- LiteLLM entry points: the same pick, called blocking or awaited ---------------------

    def get_available_deployment(  # type: ignore[override]
        self,
        model: str,
        messages: list[dict[str, str]] | None = None,
        input: str | list[object] | None = None,
        specific_deployment: bool | None = False,
        request_kwargs: dict[str, object] | None = None,
    ) -> Deployment:
        pick = self.picker.pick(model, messages, input, specific_deployment, request_kwargs)
        return run(pick, self.view.cooldown_ids, self.client.route)

    async def async_get_available_deployment(  # type: ignore[override]
        self,
        model: str,
        messages: list[dict[str, str]] | None = None,
        input: str | list[object] | None = None,
        specific_deployment: bool | None = False,
        request_kwargs: dict[str, object] | None = None,
    ) -> Deployment:
        pick = self.picker.pick(model, messages, input, specific_deployment, request_kwargs)
        return await run_async(pick, self.view.async_cooldown_ids, self.client.route_async)

    # -- outcomes and shutdown ---------------------------------------------------------------

    @property
    def outcome_callback(self) -> RouteIQOutcomeCallback:
        """The LiteLLM callback reporting this strategy's outcomes (created on first use; with
        ``settings.record_outcomes`` it also queues ``RecordOutcome`` calls)."""
        with self._lock:
            if self._callback is None:
                reporter = None
                if self.settings.record_outcomes:
                    reporter = OutcomeReporter(
                        cast(OutcomeSender, self.client),
                        self.metrics,
                        max_queue=self.settings.outcome_queue_size,
                        timeout_s=self.settings.outcome_deadline_ms / 1000.0,
                    )
                self._callback = RouteIQOutcomeCallback(
                    self.recorder.instance_id, self.recorder.spans, reporter, self.tracer_provider
                )
            return self._callback

    def attach_outcome_callback(self) -> RouteIQOutcomeCallback:
        """Have LiteLLM's success/failure logging reach :attr:`outcome_callback` (through the
        process-wide :func:`~gateway_client.callback.dispatcher`)."""
        callback = self.outcome_callback
        dispatcher().add(callback)
        return callback

    def close(self) -> None:
        """Detach the outcome callback, send queued outcomes, and close the client's channel if
        this strategy created the client."""
        callback = self._callback
        if callback is not None:
            dispatcher().remove(callback)
            if callback.reporter is not None:
                callback.reporter.close()
        if self._owned_client is not None:
            self._owned_client.close()


def install(
    router: Any,
    settings: GatewayClientSettings | None = None,
    client: RouteCaller | None = None,
    *,
    metrics: GatewayMetrics | None = None,
    tracer_provider: TracerProvider | None = None,
    outcomes: bool = True,
) -> RouteIQRoutingStrategy:
    """Create a ``RouteIQRoutingStrategy`` for ``router`` and make it the router's custom
    routing strategy: ``router.register_plugin`` (LiteLLM >= 1.110), else the older
    ``router.set_custom_routing_strategy``. With ``outcomes`` its outcome callback is
    registered with LiteLLM too."""
    strategy = RouteIQRoutingStrategy(
        router, settings=settings, client=client, metrics=metrics, tracer_provider=tracer_provider
    )
    register = getattr(router, "register_plugin", None)
    if callable(register):
        register(strategy)
    else:
        router.set_custom_routing_strategy(strategy)
    if outcomes:
        strategy.attach_outcome_callback()
    return strategy
