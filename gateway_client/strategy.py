"""``RouteIQRoutingStrategy``: a LiteLLM custom routing strategy backed by the decision service.

For each pick it sends the prompt and the requested group's healthy deployments to
``DecisionService.Route`` with a deadline and returns the top-ranked deployment, exactly as the
router's registry holds it. When the service cannot be used (breaker open, deadline missed,
error, unusable answer) it returns the static fallback policy's pick instead: a pick never fails
because of the service. The only error it raises is LiteLLM's own ``BadRequestError`` for a model
the router has no deployment for.

Every pick is recorded as a :class:`RoutingDecision` in the request's metadata under
``METADATA_KEY`` (LiteLLM passes the caller's metadata dict through) and as ``last_decision``.
"""

from __future__ import annotations

import contextvars
import enum
import logging
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, cast

from litellm.types.router import CustomRoutingStrategyBase
from opentelemetry import trace
from opentelemetry.trace import Span, TracerProvider

from routeiq.decision.v1 import decision_pb2

from .breaker import BreakerState, CircuitBreaker
from .callback import RouteIQOutcomeCallback, dispatcher
from .client import DecisionClient, ErrorKind, RouteCaller, classify_error, status_code_of
from .fallback import FallbackPolicy, make_fallback_policy
from .metrics import GatewayMetrics, default_metrics
from .outcomes import (
    METADATA_KEY,
    OWNER_KEY,
    PICK_ID_KEY,
    OutcomeReporter,
    OutcomeSender,
    SpanRegistry,
)
from .request import (
    build_route_request,
    candidate_for,
    extract_prompt,
    model_name_of,
    request_metadata,
    team_id_of,
)
from .router_view import Deployment, RouterView, deployment_id
from .settings import GatewayClientSettings
from .telemetry import (
    ROUTE_SPAN_NAME,
    annotate,
    current_request_span,
    routing_attributes,
    trace_metadata,
    tracer,
)

logger = logging.getLogger(__name__)

__all__ = [
    "METADATA_KEY",
    "Reason",
    "RouteIQRoutingStrategy",
    "RoutingDecision",
    "RoutingStats",
    "install",
]

# The request's span, captured when a pick starts (the pick may run inside our own span).
_REQUEST_SPAN: contextvars.ContextVar[Span | None] = contextvars.ContextVar(
    "routeiq_request_span", default=None
)


class Reason(enum.StrEnum):
    """Why a deployment was picked."""

    ROUTED = "routed"  # the service's top-ranked candidate
    SINGLE_CANDIDATE = "single_candidate"  # one healthy deployment: nothing to decide
    SPECIFIC_DEPLOYMENT = "specific_deployment"  # the caller named a deployment
    GROUP_NOT_ROUTED = "group_not_routed"  # the group is not in settings.routing_groups
    NO_HEALTHY_CANDIDATES = "no_healthy_candidates"  # all cooling down: fallback over the group
    NO_PROMPT = "no_prompt"  # no text to route on
    BREAKER_OPEN = "breaker_open"
    RPC_FAILURE = "rpc_failure"  # deadline, unavailable, overloaded, ...
    CALLER_ERROR = "caller_error"  # the service rejected the request (INVALID_ARGUMENT)
    BAD_RESPONSE = "bad_response"  # the ranking named none of the candidates
    INTERNAL_ERROR = "internal_error"  # a bug in this strategy; logged


_BYPASS_REASONS = frozenset(
    {Reason.SINGLE_CANDIDATE, Reason.SPECIFIC_DEPLOYMENT, Reason.GROUP_NOT_ROUTED}
)


@dataclass(frozen=True, slots=True)
class RoutingDecision:
    """One pick: which deployment, why, and what the service said."""

    requested_model: str
    deployment_id: str | None
    reason: Reason
    candidates: int = 0
    decision_id: str = ""
    score: float | None = None
    latency_ms: float | None = None  # Route round trip seen by the gateway
    service_ms: float | None = None  # the service's own total (RouteResponse.timings)
    strategy_name: str = ""
    selection_reason: str = ""
    error: str = ""  # the gRPC status (or exception type) of a failed call
    candidate_ids: tuple[str, ...] = ()  # the healthy deployments offered to the service

    @property
    def routed(self) -> bool:
        return self.reason is Reason.ROUTED

    @property
    def fallback(self) -> bool:
        """Whether the static fallback replaced a decision the service should have made."""
        return self.reason is not Reason.ROUTED and self.reason not in _BYPASS_REASONS

    def as_metadata(self) -> dict[str, Any]:
        # Built by hand: dataclasses.asdict deep-copies and costs tens of microseconds.
        data = {name: getattr(self, name) for name in _DECISION_FIELDS}
        data["reason"] = self.reason.value
        data["fallback"] = self.fallback
        return data


_DECISION_FIELDS = tuple(f.name for f in fields(RoutingDecision))


@dataclass(frozen=True, slots=True)
class RoutingStats:
    routed: int = 0
    fallbacks: int = 0
    bypassed: int = 0


@dataclass(frozen=True, slots=True)
class _Plan:
    """A pick decided without the service (``pick`` set), or the request to send."""

    model: str
    healthy: Sequence[Deployment] = ()
    pick: Deployment | None = None
    reason: Reason | None = None
    request: decision_pb2.RouteRequest | None = None
    by_id: Mapping[str, Deployment] = field(default_factory=dict)


class _NoDeployments(LookupError):
    pass


def _no_deployments_error(model: str) -> Exception:
    import litellm

    return litellm.BadRequestError(
        message=f"You passed in model={model}. There are no healthy deployments for this model",
        model=model,
        llm_provider="",
    )


class RouteIQRoutingStrategy(CustomRoutingStrategyBase):
    """Picks each request's deployment with the decision service, behind a circuit breaker."""

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
        self._router = router
        self._view = RouterView(router)
        self._settings = settings if settings is not None else GatewayClientSettings()
        self._owned_client: DecisionClient | None = None
        if client is None:
            self._owned_client = DecisionClient.from_settings(self._settings)
            client = self._owned_client
        self._client: RouteCaller = client
        self._breaker = breaker or CircuitBreaker(
            self._settings.breaker_failure_threshold, self._settings.breaker_cooldown_s
        )
        self._fallback = fallback or make_fallback_policy(self._settings.fallback_policy)
        self._metrics = metrics or default_metrics()
        self._metrics.breakers.track(self._settings.target, self._breaker)
        self._picks = {r: self._metrics.picks.labels(reason=r.value) for r in Reason}
        self._fallback_counts = {r: self._metrics.fallbacks.labels(reason=r.value) for r in Reason}
        self._tracer_provider = tracer_provider
        self._tracer = tracer(tracer_provider)
        self._static_name = f"static:{self._fallback.name}"
        self.instance_id = uuid.uuid4().hex[:16]
        self.spans = SpanRegistry()
        self._callback: RouteIQOutcomeCallback | None = None
        self._lock = threading.Lock()
        self._stats = RoutingStats()
        self.last_decision: RoutingDecision | None = None

    # -- accessors ---------------------------------------------------------------------------

    @property
    def router(self) -> Any:
        return self._router

    @property
    def settings(self) -> GatewayClientSettings:
        return self._settings

    @property
    def client(self) -> RouteCaller:
        return self._client

    @property
    def breaker(self) -> CircuitBreaker:
        return self._breaker

    @property
    def fallback_policy(self) -> FallbackPolicy:
        return self._fallback

    @property
    def metrics(self) -> GatewayMetrics:
        return self._metrics

    @property
    def tracer_provider(self) -> TracerProvider | None:
        return self._tracer_provider

    @property
    def stats(self) -> RoutingStats:
        return self._stats

    @property
    def routed(self) -> int:
        """Picks the service made."""
        return self._stats.routed

    @property
    def fallbacks(self) -> int:
        """Picks the static fallback made in place of the service."""
        return self._stats.fallbacks

    @property
    def outcome_callback(self) -> RouteIQOutcomeCallback:
        """The LiteLLM callback reporting this strategy's outcomes (created on first use; with
        ``settings.record_outcomes`` it also queues ``RecordOutcome`` calls)."""
        with self._lock:
            if self._callback is None:
                reporter = None
                if self._settings.record_outcomes:
                    reporter = OutcomeReporter(
                        cast(OutcomeSender, self._client),
                        self._metrics,
                        max_queue=self._settings.outcome_queue_size,
                        timeout_s=self._settings.outcome_deadline_ms / 1000.0,
                    )
                self._callback = RouteIQOutcomeCallback(
                    self.instance_id, self.spans, reporter, self._tracer_provider
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

    # -- LiteLLM entry points ----------------------------------------------------------------

    def get_available_deployment(  # type: ignore[override]
        self,
        model: str,
        messages: list[dict[str, str]] | None = None,
        input: str | list[object] | None = None,
        specific_deployment: bool | None = False,
        request_kwargs: dict[str, object] | None = None,
    ) -> Deployment:
        token = _REQUEST_SPAN.set(current_request_span())
        try:
            resolved = self._resolve(model, specific_deployment, request_kwargs)
            if isinstance(resolved, _Plan):
                return self._conclude(resolved, request_kwargs)
            cooling = self._view.cooldown_ids(_ids(resolved))
            plan = self._plan(model, resolved, cooling, messages, input, request_kwargs)
            if plan.request is None:
                return self._conclude(plan, request_kwargs)
            with self._tracer.start_as_current_span(ROUTE_SPAN_NAME):
                return self._route_sync(plan, request_kwargs)
        except _NoDeployments:
            raise _no_deployments_error(model) from None
        except Exception:
            return self._emergency(model, request_kwargs)
        finally:
            _REQUEST_SPAN.reset(token)

    async def async_get_available_deployment(  # type: ignore[override]
        self,
        model: str,
        messages: list[dict[str, str]] | None = None,
        input: str | list[object] | None = None,
        specific_deployment: bool | None = False,
        request_kwargs: dict[str, object] | None = None,
    ) -> Deployment:
        token = _REQUEST_SPAN.set(current_request_span())
        try:
            resolved = self._resolve(model, specific_deployment, request_kwargs)
            if isinstance(resolved, _Plan):
                return self._conclude(resolved, request_kwargs)
            cooling = await self._view.async_cooldown_ids(_ids(resolved))
            plan = self._plan(model, resolved, cooling, messages, input, request_kwargs)
            if plan.request is None:
                return self._conclude(plan, request_kwargs)
            with self._tracer.start_as_current_span(ROUTE_SPAN_NAME):
                return await self._route_async(plan, request_kwargs)
        except _NoDeployments:
            raise _no_deployments_error(model) from None
        except Exception:
            return self._emergency(model, request_kwargs)
        finally:
            _REQUEST_SPAN.reset(token)

    # -- planning ----------------------------------------------------------------------------

    def _resolve(
        self,
        model: str,
        specific_deployment: bool | None,
        request_kwargs: Mapping[str, Any] | None,
    ) -> list[Deployment] | _Plan:
        """The group's deployments, or a plan for a deployment the caller named."""
        if specific_deployment is True:
            named = self._view.deployment_by_litellm_model(model) or self._view.deployment_by_id(
                model
            )
            if named is not None:
                return _Plan(model, pick=named, reason=Reason.SPECIFIC_DEPLOYMENT)
        group = self._view.group_deployments(model, team_id_of(request_kwargs))
        if group:
            return group
        by_id = self._view.deployment_by_id(model)
        if by_id is not None:
            return _Plan(model, pick=by_id, reason=Reason.SPECIFIC_DEPLOYMENT)
        raise _NoDeployments(model)

    def _plan(
        self,
        model: str,
        group: Sequence[Deployment],
        cooling: frozenset[str],
        messages: Sequence[Mapping[str, Any]] | None,
        input: object,
        request_kwargs: Mapping[str, Any] | None,
    ) -> _Plan:
        healthy = [d for d in group if deployment_id(d) not in cooling]
        if not healthy:
            # Every deployment is cooling down: still answer, from the whole group.
            return _Plan(model, group, self._fallback.choose(group), Reason.NO_HEALTHY_CANDIDATES)
        if len(healthy) == 1:
            return _Plan(model, healthy, healthy[0], Reason.SINGLE_CANDIDATE)
        if not self._settings.routes_group(model):
            return _Plan(model, healthy, self._fallback.choose(healthy), Reason.GROUP_NOT_ROUTED)
        if self._breaker.state is BreakerState.OPEN:
            # Peek without taking the half-open probe: no request is built while open.
            return _Plan(model, healthy, self._fallback.choose(healthy), Reason.BREAKER_OPEN)
        by_id: dict[str, Deployment] = {}
        candidates: list[decision_pb2.Candidate] = []
        for deployment in healthy:
            candidate = candidate_for(deployment)
            if candidate is None or candidate.id in by_id:
                continue
            by_id[candidate.id] = deployment
            candidates.append(candidate)
        if len(candidates) < 2:
            only = next(iter(by_id.values()), None) or self._fallback.choose(healthy)
            return _Plan(model, healthy, only, Reason.SINGLE_CANDIDATE)
        prompt = extract_prompt(messages, input)
        if not prompt:
            return _Plan(model, healthy, self._fallback.choose(healthy), Reason.NO_PROMPT)
        request = build_route_request(
            requested_model=model,
            prompt=prompt,
            candidates=candidates,
            request_kwargs=request_kwargs,
            cost_weight=self._settings.cost_weight,
        )
        return _Plan(model, healthy, request=request, by_id=by_id)

    # -- calling the service -----------------------------------------------------------------

    def _route_sync(self, plan: _Plan, request_kwargs: dict[str, object] | None) -> Deployment:
        assert plan.request is not None
        if not self._breaker.allow_request():
            return self._fall_back(plan, Reason.BREAKER_OPEN, request_kwargs)
        metadata = trace_metadata()
        started = time.perf_counter()
        try:
            if metadata:
                response = self._client.route(plan.request, self._settings.deadline_s, metadata)
            else:
                response = self._client.route(plan.request, self._settings.deadline_s)
        except Exception as error:
            return self._on_error(plan, error, started, request_kwargs)
        except BaseException:
            self._breaker.record_ignored()
            raise
        return self._on_response(plan, response, started, request_kwargs)

    async def _route_async(
        self, plan: _Plan, request_kwargs: dict[str, object] | None
    ) -> Deployment:
        assert plan.request is not None
        if not self._breaker.allow_request():
            return self._fall_back(plan, Reason.BREAKER_OPEN, request_kwargs)
        metadata = trace_metadata()
        deadline_s = self._settings.deadline_s
        started = time.perf_counter()
        try:
            if metadata:
                response = await self._client.route_async(plan.request, deadline_s, metadata)
            else:
                response = await self._client.route_async(plan.request, deadline_s)
        except Exception as error:
            return self._on_error(plan, error, started, request_kwargs)
        except BaseException:  # cancelled: the outcome says nothing about the service
            self._breaker.record_ignored()
            raise
        return self._on_response(plan, response, started, request_kwargs)

    def _on_response(
        self,
        plan: _Plan,
        response: decision_pb2.RouteResponse,
        started: float,
        request_kwargs: dict[str, object] | None,
    ) -> Deployment:
        latency_ms = (time.perf_counter() - started) * 1000.0
        self._metrics.route_latency.observe(latency_ms / 1000.0)
        top = next((r for r in response.ranked if r.id in plan.by_id), None)
        if top is None:
            self._record_failure()
            logger.warning(
                "decision service ranking for %r named none of its %d candidates",
                plan.model,
                len(plan.by_id),
            )
            return self._fall_back(plan, Reason.BAD_RESPONSE, request_kwargs, latency_ms=latency_ms)
        self._record_success()
        decision = RoutingDecision(
            requested_model=plan.model,
            deployment_id=top.id,
            reason=Reason.ROUTED,
            candidates=len(plan.by_id),
            decision_id=response.decision_id,
            score=top.score,
            latency_ms=latency_ms,
            service_ms=response.timings.total_ms if response.HasField("timings") else None,
            strategy_name=response.strategy_name,
            selection_reason=response.selection_reason,
            candidate_ids=tuple(plan.by_id),
        )
        return self._record(decision, plan.by_id[top.id], request_kwargs)

    def _on_error(
        self,
        plan: _Plan,
        error: Exception,
        started: float,
        request_kwargs: dict[str, object] | None,
    ) -> Deployment:
        latency_ms = (time.perf_counter() - started) * 1000.0
        self._metrics.route_latency.observe(latency_ms / 1000.0)
        code = status_code_of(error)
        label = code.name if code is not None else type(error).__name__
        if classify_error(error) is ErrorKind.CALLER_ERROR:
            self._breaker.record_ignored()
            logger.warning(
                "decision service rejected the request for %r (%s): %s",
                plan.model,
                label,
                _details(error),
            )
            reason = Reason.CALLER_ERROR
        else:
            self._record_failure()
            logger.debug("decision call for %r failed: %s", plan.model, label)
            reason = Reason.RPC_FAILURE
        return self._fall_back(plan, reason, request_kwargs, latency_ms=latency_ms, error=label)

    def _record_success(self) -> None:
        before = self._breaker.state
        self._breaker.record_success()
        if before is not BreakerState.CLOSED and self._breaker.state is BreakerState.CLOSED:
            logger.info("decision service answered again: circuit breaker closed")

    def _record_failure(self) -> None:
        before = self._breaker.state
        self._breaker.record_failure()
        if before is not BreakerState.OPEN and self._breaker.state is not before:
            logger.warning(
                "decision service failing: circuit breaker open for %.1f s, using the %s fallback",
                self._breaker.cooldown_s,
                self._fallback.name,
            )

    # -- concluding --------------------------------------------------------------------------

    def _fall_back(
        self,
        plan: _Plan,
        reason: Reason,
        request_kwargs: dict[str, object] | None,
        *,
        latency_ms: float | None = None,
        error: str = "",
    ) -> Deployment:
        pick = self._fallback.choose(plan.healthy)
        decision = RoutingDecision(
            requested_model=plan.model,
            deployment_id=deployment_id(pick),
            reason=reason,
            candidates=len(plan.by_id),
            latency_ms=latency_ms,
            error=error,
            candidate_ids=tuple(plan.by_id),
        )
        return self._record(decision, pick, request_kwargs)

    def _conclude(self, plan: _Plan, request_kwargs: dict[str, object] | None) -> Deployment:
        assert plan.pick is not None and plan.reason is not None
        decision = RoutingDecision(
            requested_model=plan.model,
            deployment_id=deployment_id(plan.pick),
            reason=plan.reason,
            candidates=len(plan.healthy),
            candidate_ids=tuple(_ids(plan.healthy)),
        )
        return self._record(decision, plan.pick, request_kwargs)

    def _emergency(self, model: str, request_kwargs: dict[str, object] | None) -> Deployment:
        """A bug in this strategy must not fail the request: log it and use the fallback."""
        logger.exception("RouteIQ routing failed for %r; using the static fallback", model)
        try:
            group = self._view.group_deployments(model) or [
                d for d in (self._view.deployment_by_id(model),) if d is not None
            ]
        except Exception:
            logger.exception("could not list deployments for %r", model)
            raise _no_deployments_error(model) from None
        if not group:
            raise _no_deployments_error(model)
        pick = self._fallback.choose(group)
        decision = RoutingDecision(
            requested_model=model,
            deployment_id=deployment_id(pick),
            reason=Reason.INTERNAL_ERROR,
            candidates=len(group),
            candidate_ids=tuple(_ids(group)),
        )
        return self._record(decision, pick, request_kwargs)

    def _record(
        self,
        decision: RoutingDecision,
        deployment: Deployment,
        request_kwargs: dict[str, object] | None,
    ) -> Deployment:
        with self._lock:
            stats = self._stats
            if decision.routed:
                self._stats = RoutingStats(stats.routed + 1, stats.fallbacks, stats.bypassed)
            elif decision.fallback:
                self._stats = RoutingStats(stats.routed, stats.fallbacks + 1, stats.bypassed)
            else:
                self._stats = RoutingStats(stats.routed, stats.fallbacks, stats.bypassed + 1)
            self.last_decision = decision
        self._picks[decision.reason].inc()
        if decision.fallback:
            self._fallback_counts[decision.reason].inc()
        request_span = _REQUEST_SPAN.get()
        spans = [
            span
            for span in (request_span, trace.get_current_span())
            if span is not None and span.is_recording()
        ]
        if spans:  # the attributes are built only for someone who records them
            annotate(
                spans,
                routing_attributes(
                    strategy=decision.strategy_name if decision.routed else self._static_name,
                    candidates=decision.candidate_ids,
                    selected_model=model_name_of(deployment),
                    selected_deployment=decision.deployment_id,
                    reason=decision.reason.value,
                    fallback=decision.fallback,
                    score=decision.score,
                    latency_ms=decision.latency_ms,
                    decision_id=decision.decision_id,
                ),
                decision.error,
            )
        metadata = request_metadata(request_kwargs)
        if metadata is not None:
            record = decision.as_metadata()
            record[OWNER_KEY] = self.instance_id
            if request_span is not None:
                pick_id = uuid.uuid4().hex
                self.spans.put(pick_id, request_span)
                record[PICK_ID_KEY] = pick_id
            metadata[METADATA_KEY] = record
        return deployment


def _ids(deployments: Sequence[Deployment]) -> list[str]:
    return [i for i in (deployment_id(d) for d in deployments) if i is not None]


def _details(error: BaseException) -> str:
    details = getattr(error, "details", None)
    if callable(details):
        try:
            text = details()
        except Exception:
            return str(error)
        return str(text)
    return str(error)


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
