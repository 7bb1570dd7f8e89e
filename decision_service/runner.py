"""Admission, deadlines, decide slots, metrics and telemetry around the decide path.

Transport-free: the servicer hands it a query and the caller's remaining time, on the gRPC
server's pool thread that runs the call. The decide path answers at once when that is cheap
(a cached or given embedding, a static strategy); otherwise the rest needs one of
``workers`` decide slots and runs on this same thread once it holds one. The server's pool
is larger than ``max_in_flight``, so health and admin calls always find a thread that is
not waiting for a slot (tests/integration/test_health_under_saturation.py).

A call is refused at once (RESOURCE_EXHAUSTED) when ``max_in_flight`` calls are already
admitted, and (DEADLINE_EXCEEDED) when it arrives with less than ``min_deadline`` left or
its deadline passes before a slot frees, so a gateway falls back immediately instead of
queueing behind work it will not wait for.
"""

from __future__ import annotations

import logging
import math
import time

from opentelemetry import trace

from .decide import Decider, Deferred
from .domain import OUTCOME_RESULTS, OUTCOME_STATUSES, Decision, Feedback, Outcome, RouteQuery
from .errors import DeadlineTooShort, InvalidRequest, Overloaded
from .metrics import ServiceMetrics
from .slots import DecideSlots, SlotsFull
from .telemetry import (
    ATTR_DECISION_ID,
    emit_decision_event,
    emit_feedback_event,
    emit_outcome_event,
)

log = logging.getLogger(__name__)


class RouteRunner:
    def __init__(
        self,
        decider: Decider,
        metrics: ServiceMetrics,
        *,
        workers: int,
        max_in_flight: int,
        min_deadline_s: float,
    ) -> None:
        self.decider = decider
        self.metrics = metrics
        self.min_deadline_s = min_deadline_s
        # Decisions that run the encoder at once: one per core. More would only share the
        # cores and make every one of them slower.
        self.slots = DecideSlots(workers, max_in_flight)
        # Read when scraped: the calls holding or waiting for a slot, waiters included.
        metrics.in_flight.set_function(lambda: self.slots.admitted)

    @property
    def in_flight(self) -> int:
        """Calls holding or waiting for a decide slot."""
        return self.slots.admitted

    @property
    def slot_runs(self) -> int:
        """Calls that needed a slot (an encoder run or the debug delay) and were admitted."""
        return self.slots.admitted_total

    def route(self, query: RouteQuery, time_remaining_s: float | None) -> Decision:
        if self.in_flight >= self.slots.limit:
            raise self._overloaded()
        if time_remaining_s is not None and time_remaining_s < self.min_deadline_s:
            raise DeadlineTooShort(
                f"{time_remaining_s * 1e3:.2f} ms left, less than the "
                f"{self.min_deadline_s * 1e3:.2f} ms a decision needs"
            )
        deadline = time.monotonic() + time_remaining_s if time_remaining_s is not None else None
        step = self.decider.start(query, deadline)
        decision = self._in_slot(step, time_remaining_s) if isinstance(step, Deferred) else step
        self.metrics.latency.labels(strategy=decision.strategy_name).observe(
            decision.timings.total_ms / 1e3
        )
        self.metrics.selections.labels(model=decision.ranked[0].model_name).inc()
        if decision.explored:
            self.metrics.explored.labels(strategy=decision.strategy_name).inc()
        emit_decision_event(decision, query)
        return decision

    def _in_slot(self, step: Deferred, time_remaining_s: float | None) -> Decision:
        try:
            entered = self.slots.enter(time_remaining_s)
        except SlotsFull:
            raise self._overloaded() from None
        if not entered:
            raise DeadlineTooShort("no decision within the caller's deadline")
        try:
            return step.finish()
        finally:
            self.slots.leave()

    def _overloaded(self) -> Overloaded:
        return Overloaded(
            f"{self.in_flight} calls in flight (limit {self.slots.limit}); fall back or retry"
        )

    def record_outcome(self, outcome: Outcome) -> None:
        if not outcome.decision_id:
            raise InvalidRequest("decision_id is empty: send RouteResponse.decision_id")
        if outcome.status not in OUTCOME_STATUSES:
            raise InvalidRequest(
                f"status {outcome.status!r} must be one of {list(OUTCOME_STATUSES)}"
            )
        if outcome.result not in OUTCOME_RESULTS:
            raise InvalidRequest(
                f"result {outcome.result!r} must be one of {list(OUTCOME_RESULTS)}"
            )
        if outcome.input_tokens < 0 or outcome.output_tokens < 0:
            raise InvalidRequest("token counts must be >= 0")
        if not math.isfinite(outcome.latency_ms) or outcome.latency_ms < 0:
            raise InvalidRequest("latency_ms must be finite and >= 0")
        self.metrics.outcomes.labels(status=outcome.status).inc()
        canary = self.decider.registry.canary
        if canary is not None:
            # Joined to the arm that decided: the canary rule compares fallback rates.
            fell_back = outcome.fallback or outcome.status == "fallback"
            canary.monitor.outcome(outcome.decision_id, fell_back)
        span = trace.get_current_span()
        if span.is_recording():
            span.set_attribute(ATTR_DECISION_ID, outcome.decision_id)
            span.set_attributes(
                {
                    "routeiq.outcome.status": outcome.status,
                    "routeiq.outcome.deployment_id": outcome.deployment_id,
                    "routeiq.outcome.model_name": outcome.model_name,
                    "routeiq.outcome.input_tokens": outcome.input_tokens,
                    "routeiq.outcome.output_tokens": outcome.output_tokens,
                    "routeiq.outcome.latency_ms": outcome.latency_ms,
                    "routeiq.outcome.fallback": outcome.fallback,
                }
            )
        emit_outcome_event(outcome)

    def record_feedback(self, feedback: Feedback) -> None:
        if not feedback.decision_id:
            raise InvalidRequest("decision_id is empty: send RouteResponse.decision_id")
        if not (math.isfinite(feedback.score) and 0.0 <= feedback.score <= 1.0):
            raise InvalidRequest(f"score {feedback.score} must be within [0, 1]")
        self.metrics.feedback.labels(source=feedback.source).inc()
        emit_feedback_event(feedback)
