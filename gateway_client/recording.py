"""Recording a pick once it is made: the running stats and latest decision, the Prometheus
counters, the ``router.*`` attributes on the request's spans, and the decision record in the
request's metadata that the outcome callback later reads back. No LiteLLM import."""

from __future__ import annotations

import threading
import uuid
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span

from .decision import Reason, RoutingDecision, RoutingStats
from .metrics import GatewayMetrics
from .outcomes import METADATA_KEY, OWNER_KEY, PICK_ID_KEY, SpanRegistry
from .planner import Choice
from .request import model_name_of, request_metadata
from .router_view import Deployment
from .telemetry import annotate, routing_attributes


class PickRecorder:
    """Records the picks of one strategy.

    ``stats`` and ``last_decision`` are replaced (never mutated) on each pick. ``instance_id``
    tags each metadata record so that only this strategy's outcome callback reports it, and
    ``spans`` keeps each request span until that callback has added the outcome to it.
    """

    def __init__(self, metrics: GatewayMetrics, static_name: str) -> None:
        self.metrics = metrics
        self.static_name = static_name  # router.strategy of the picks the service did not make
        self.instance_id = uuid.uuid4().hex[:16]
        self.spans = SpanRegistry()
        self.stats = RoutingStats()
        self.last_decision: RoutingDecision | None = None
        self._lock = threading.Lock()
        # Resolved once: labels() costs a lock and a dict lookup on every pick otherwise.
        self._picks = {r: metrics.picks.labels(reason=r.value) for r in Reason}
        self._fallbacks = {r: metrics.fallbacks.labels(reason=r.value) for r in Reason}

    def route_call(self, latency_ms: float) -> None:
        """A ``Route`` call ended (answered or failed) after ``latency_ms``."""
        self.metrics.route_latency.observe(latency_ms / 1000.0)

    def record(
        self,
        choice: Choice,
        request_kwargs: dict[str, object] | None,
        request_span: Span | None,
    ) -> Deployment:
        """Record ``choice`` and return its deployment. ``request_span`` is the span that was
        current when the pick started (the gateway's request span), if it records."""
        decision, deployment = choice
        with self._lock:
            self.stats = self.stats.counting(decision)
            self.last_decision = decision
        self._picks[decision.reason].inc()
        if decision.fallback:
            self._fallbacks[decision.reason].inc()
        # The current span differs from the request span when the pick made a Route call
        # (it runs inside routeiq.route); both carry the attributes.
        spans = [
            span
            for span in (request_span, trace.get_current_span())
            if span is not None and span.is_recording()
        ]
        if spans:  # the attributes are built only for someone who records them
            annotate(spans, self._attributes(decision, deployment), decision.error)
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

    def _attributes(self, decision: RoutingDecision, deployment: Deployment) -> dict[str, Any]:
        return routing_attributes(
            strategy=decision.strategy_name if decision.routed else self.static_name,
            candidates=decision.candidate_ids,
            selected_model=model_name_of(deployment),
            selected_deployment=decision.deployment_id,
            reason=decision.reason.value,
            fallback=decision.fallback,
            score=decision.score,
            latency_ms=decision.latency_ms,
            decision_id=decision.decision_id,
        )
