"""OpenTelemetry for the gateway client: routing attributes, fallback and outcome span events,
and the trace context sent to the decision service.

Only ``opentelemetry-api`` is used: without an SDK configured every call here is a no-op.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.trace import Span, Tracer, TracerProvider

TRACER_NAME = "routeiq.gateway_client"
ROUTE_SPAN_NAME = "routeiq.route"

# Span attributes (the seeds' D2.1 names, plus decision id and fallback).
ATTR_STRATEGY = "router.strategy"
ATTR_SCORE = "router.score"
ATTR_CANDIDATES = "router.candidates"
ATTR_SELECTED_MODEL = "router.selected_model"
ATTR_SELECTED_DEPLOYMENT = "router.selected_deployment"
ATTR_LATENCY_MS = "router.latency_ms"
ATTR_DECISION_ID = "router.decision_id"
ATTR_FALLBACK = "router.fallback"
ATTR_FALLBACK_REASON = "router.fallback_reason"
ATTR_REASON = "router.reason"

FALLBACK_EVENT = "routeiq.fallback"
OUTCOME_EVENT = "routeiq.router_outcome.v1"
OUTCOME_PAYLOAD_KEY = "routeiq.router_outcome.payload"


def tracer(provider: TracerProvider | None = None) -> Tracer:
    """The gateway client's tracer, from ``provider`` or the global provider."""
    return trace.get_tracer(TRACER_NAME, tracer_provider=provider)


def current_request_span() -> Span | None:
    """The span active when the pick starts (the gateway's request span), if one records."""
    span = trace.get_current_span()
    return span if span.is_recording() else None


def trace_metadata() -> list[tuple[str, str]]:
    """The current trace context as gRPC metadata (W3C ``traceparent``/``tracestate``)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return list(carrier.items())


def routing_attributes(
    *,
    strategy: str,
    candidates: Sequence[str],
    selected_model: str,
    selected_deployment: str | None,
    reason: str,
    fallback: bool,
    score: float | None = None,
    latency_ms: float | None = None,
    decision_id: str = "",
) -> dict[str, Any]:
    """The ``router.*`` attributes of one pick."""
    attributes: dict[str, Any] = {
        ATTR_STRATEGY: strategy,
        ATTR_CANDIDATES: list(candidates),
        ATTR_SELECTED_MODEL: selected_model,
        ATTR_REASON: reason,
        ATTR_FALLBACK: fallback,
    }
    if selected_deployment is not None:
        attributes[ATTR_SELECTED_DEPLOYMENT] = selected_deployment
    if score is not None:
        attributes[ATTR_SCORE] = score
    if latency_ms is not None:
        attributes[ATTR_LATENCY_MS] = latency_ms
    if decision_id:
        attributes[ATTR_DECISION_ID] = decision_id
    if fallback:
        attributes[ATTR_FALLBACK_REASON] = reason
    return attributes


def annotate(spans: Sequence[Span | None], attributes: Mapping[str, Any], error: str = "") -> None:
    """Set ``attributes`` on each recording span; a fallback also gets a ``routeiq.fallback``
    event carrying its reason (and the failed call's status)."""
    fallback = bool(attributes.get(ATTR_FALLBACK))
    for span in spans:
        if span is None or not span.is_recording():
            continue
        span.set_attributes(dict(attributes))
        if fallback:
            event: dict[str, Any] = {"reason": str(attributes.get(ATTR_REASON, ""))}
            if error:
                event["error"] = error
            span.add_event(FALLBACK_EVENT, event)


def outcome_attributes(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Flat ``routeiq.*`` span-event attributes for an outcome, plus its JSON payload."""
    attributes: dict[str, Any] = {
        f"routeiq.{key}": value
        for key, value in payload.items()
        if value is not None and isinstance(value, str | bool | int | float)
    }
    attributes[OUTCOME_PAYLOAD_KEY] = json.dumps(dict(payload), sort_keys=True)
    return attributes


def emit_outcome(
    payload: Mapping[str, Any],
    span: Span | None,
    provider: TracerProvider | None = None,
) -> None:
    """Add the outcome event to the request's ``span``; when that span has already ended (or is
    unknown), to a short ``routeiq.outcome`` child span of it (or of the current context)."""
    attributes = outcome_attributes(payload)
    if span is not None and span.is_recording():
        span.add_event(OUTCOME_EVENT, attributes)
        return
    context = trace.set_span_in_context(span) if span is not None else None
    with tracer(provider).start_as_current_span("routeiq.outcome", context=context) as own:
        own.add_event(OUTCOME_EVENT, attributes)
