"""The one pick both LiteLLM entry points run.

:meth:`Picker.pick` is a generator that makes a whole pick (find the group, plan, call the
service behind the circuit breaker, read its answer or fall back, record) except for its two
pieces of I/O, which it yields for the entry point to perform: :class:`ReadCooldowns` (the
router's cooldown store, Redis-backed in a proxy) and :class:`CallRoute` (the decision
service). :func:`run` performs them with blocking calls and :func:`run_async` awaits them;
both send each answer back into the pick, or throw the call's exception into it. So the sync
and async picks cannot drift apart: they differ only in how they call.

LiteLLM is imported only to raise its ``BadRequestError`` for a model with no deployment.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry.trace import Span, Tracer

from routeiq.decision.v1 import decision_pb2

from .breaker import BreakerState, CircuitBreaker
from .client import ErrorKind, classify_error, status_code_of
from .decision import Reason
from .planner import Choice, Plan, Planner
from .recording import PickRecorder
from .request import team_id_of
from .router_view import Deployment, RouterView, deployment_ids
from .telemetry import ROUTE_SPAN_NAME, current_request_span, trace_metadata

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReadCooldowns:
    """Which of ``ids`` are cooling down? Answered with a ``frozenset`` of ids."""

    ids: list[str]


@dataclass(frozen=True, slots=True)
class CallRoute:
    """``Route(*args)``: answered with the ``RouteResponse``, or the call's exception thrown
    into the pick. ``args`` is ``(request, deadline_s)``, plus the trace context metadata when
    there is one (a call without it takes no metadata argument at all)."""

    args: tuple[Any, ...]


Step = ReadCooldowns | CallRoute
Pick = Generator[Step, Any, Deployment]


class NoDeployments(LookupError):
    """The router has no deployment for the requested model."""


def no_deployments_error(model: str) -> Exception:
    """What LiteLLM's own routing raises for a model it has no deployment for."""
    import litellm

    return litellm.BadRequestError(
        message=f"You passed in model={model}. There are no healthy deployments for this model",
        model=model,
        llm_provider="",
    )


class Picker:
    """Makes picks for one strategy from its collaborators."""

    def __init__(
        self,
        view: RouterView,
        planner: Planner,
        breaker: CircuitBreaker,
        recorder: PickRecorder,
        tracer: Tracer,
    ) -> None:
        self.view = view
        self.planner = planner
        self.breaker = breaker
        self.recorder = recorder
        self.tracer = tracer

    def pick(
        self,
        model: str,
        messages: list[dict[str, str]] | None,
        input: object,
        specific_deployment: bool | None,
        request_kwargs: dict[str, object] | None,
    ) -> Pick:
        """One pick, as steps for :func:`run` or :func:`run_async`. It never fails because of
        the service; the only error it raises is LiteLLM's ``BadRequestError`` for a model
        the router has no deployment for."""
        # Taken first: once routeiq.route is current, the request span is only its parent.
        request_span = current_request_span()
        try:
            resolved = self._resolve(model, specific_deployment, request_kwargs)
            if isinstance(resolved, Plan):
                choice = self.planner.decided(resolved)
                return self.recorder.record(choice, request_kwargs, request_span)
            cooling = yield ReadCooldowns(deployment_ids(resolved))
            plan = self.planner.plan(
                model,
                resolved,
                cooling,
                messages,
                input,
                request_kwargs,
                breaker_open=self.breaker.state is BreakerState.OPEN,
            )
            if plan.request is None:
                return self.recorder.record(
                    self.planner.decided(plan), request_kwargs, request_span
                )
            with self.tracer.start_as_current_span(ROUTE_SPAN_NAME):
                choice = yield from self._ask(plan)
                return self.recorder.record(choice, request_kwargs, request_span)
        except NoDeployments:
            raise no_deployments_error(model) from None
        except Exception:
            return self._emergency(model, request_kwargs, request_span)

    def _resolve(
        self,
        model: str,
        specific_deployment: bool | None,
        request_kwargs: Mapping[str, Any] | None,
    ) -> list[Deployment] | Plan:
        """The group's deployments, or a plan for a deployment the caller named."""
        if specific_deployment is True:
            named = self.view.deployment_by_litellm_model(model) or self.view.deployment_by_id(
                model
            )
            if named is not None:
                return Plan(model, pick=named, reason=Reason.SPECIFIC_DEPLOYMENT)
        group = self.view.group_deployments(model, team_id_of(request_kwargs))
        if group:
            return group
        by_id = self.view.deployment_by_id(model)
        if by_id is not None:
            return Plan(model, pick=by_id, reason=Reason.SPECIFIC_DEPLOYMENT)
        raise NoDeployments(model)

    # -- asking the service ------------------------------------------------------------------

    def _ask(self, plan: Plan) -> Generator[Step, Any, Choice]:
        assert plan.request is not None
        if not self.breaker.allow_request():  # open, or half-open with the probe taken
            return self.planner.fall_back(plan, Reason.BREAKER_OPEN)
        metadata = trace_metadata()
        deadline_s = self.planner.settings.deadline_s
        args = (plan.request, deadline_s, metadata) if metadata else (plan.request, deadline_s)
        started = time.perf_counter()
        try:
            response = yield CallRoute(args)
        except Exception as error:
            return self._failed(plan, error, started)
        except BaseException:  # cancelled: the outcome says nothing about the service
            self.breaker.record_ignored()
            raise
        return self._answered(plan, response, started)

    def _answered(self, plan: Plan, response: decision_pb2.RouteResponse, started: float) -> Choice:
        latency_ms = (time.perf_counter() - started) * 1000.0
        self.recorder.route_call(latency_ms)
        choice = self.planner.answered(plan, response, latency_ms)
        if choice is None:
            self._breaker_failure()
            logger.warning(
                "decision service ranking for %r named none of its %d candidates",
                plan.model,
                len(plan.by_id),
            )
            return self.planner.fall_back(plan, Reason.BAD_RESPONSE, latency_ms=latency_ms)
        self._breaker_success()
        return choice

    def _failed(self, plan: Plan, error: Exception, started: float) -> Choice:
        latency_ms = (time.perf_counter() - started) * 1000.0
        self.recorder.route_call(latency_ms)
        code = status_code_of(error)
        label = code.name if code is not None else type(error).__name__
        if classify_error(error) is ErrorKind.CALLER_ERROR:
            # Our request was wrong, the service is fine: do not count it against the breaker.
            self.breaker.record_ignored()
            logger.warning(
                "decision service rejected the request for %r (%s): %s",
                plan.model,
                label,
                _details(error),
            )
            reason = Reason.CALLER_ERROR
        else:
            self._breaker_failure()
            logger.debug("decision call for %r failed: %s", plan.model, label)
            reason = Reason.RPC_FAILURE
        return self.planner.fall_back(plan, reason, latency_ms=latency_ms, error=label)

    def _breaker_success(self) -> None:
        before = self.breaker.state
        self.breaker.record_success()
        if before is not BreakerState.CLOSED and self.breaker.state is BreakerState.CLOSED:
            logger.info("decision service answered again: circuit breaker closed")

    def _breaker_failure(self) -> None:
        before = self.breaker.state
        self.breaker.record_failure()
        if before is not BreakerState.OPEN and self.breaker.state is not before:
            logger.warning(
                "decision service failing: circuit breaker open for %.1f s, using the %s fallback",
                self.breaker.cooldown_s,
                self.planner.fallback.name,
            )

    def _emergency(
        self,
        model: str,
        request_kwargs: dict[str, object] | None,
        request_span: Span | None,
    ) -> Deployment:
        """A bug in this strategy must not fail the request: log it and use the fallback."""
        logger.exception("RouteIQ routing failed for %r; using the static fallback", model)
        try:
            group = self.view.group_deployments(model) or [
                d for d in (self.view.deployment_by_id(model),) if d is not None
            ]
        except Exception:
            logger.exception("could not list deployments for %r", model)
            raise no_deployments_error(model) from None
        if not group:
            raise no_deployments_error(model)
        return self.recorder.record(
            self.planner.emergency(model, group), request_kwargs, request_span
        )


def _details(error: BaseException) -> str:
    details = getattr(error, "details", None)
    if callable(details):
        try:
            text = details()
        except Exception:
            return str(error)
        return str(text)
    return str(error)


# -- performing the steps ------------------------------------------------------------------------


def run(
    pick: Pick,
    read_cooldowns: Callable[[list[str]], frozenset[str]],
    call_route: Callable[..., decision_pb2.RouteResponse],
) -> Deployment:
    """Run ``pick`` to its deployment, performing its steps with blocking calls."""
    answer: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = pick.send(answer) if error is None else pick.throw(error)
        except StopIteration as done:
            deployment: Deployment = done.value
            return deployment
        error = None
        try:
            if isinstance(step, CallRoute):
                answer = call_route(*step.args)
            else:
                answer = read_cooldowns(step.ids)
        except BaseException as raised:  # the pick decides; cancellation comes back out
            error = raised


async def run_async(
    pick: Pick,
    read_cooldowns: Callable[[list[str]], Awaitable[frozenset[str]]],
    call_route: Callable[..., Awaitable[decision_pb2.RouteResponse]],
) -> Deployment:
    """Run ``pick`` to its deployment, awaiting its steps."""
    answer: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = pick.send(answer) if error is None else pick.throw(error)
        except StopIteration as done:
            deployment: Deployment = done.value
            return deployment
        error = None
        try:
            if isinstance(step, CallRoute):
                answer = await call_route(*step.args)
            else:
                answer = await read_cooldowns(step.ids)
        except BaseException as raised:  # the pick decides; cancellation comes back out
            error = raised
