"""OpenTelemetry for the gateway client: routing attributes, fallback and outcome span events,
the trace context sent to the decision service, and the gateway's resource.

Attributes are RouteIQ's own under ``routeiq.*``, except where the OpenTelemetry GenAI
semantic conventions name the same thing: the model a request is sent to is
``gen_ai.request.model``, the model that answered ``gen_ai.response.model``, and token counts
``gen_ai.usage.input_tokens``/``gen_ai.usage.output_tokens``, so trace backends that understand
GenAI spans read them without a RouteIQ mapping.

Only ``opentelemetry-api`` is used at import: without an SDK configured every call here is a
no-op. :func:`resource_detector` (the SDK's ``opentelemetry_resource_detector`` entry point
``routeiq``) needs the SDK, and is only loaded by it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from importlib import metadata
from typing import TYPE_CHECKING, Any

from opentelemetry import propagate, trace
from opentelemetry.trace import Span, Tracer, TracerProvider

if TYPE_CHECKING:
    from opentelemetry.sdk.resources import ResourceDetector

TRACER_NAME = "routeiq.gateway_client"
ROUTE_SPAN_NAME = "routeiq.route"

# Span attributes of a pick.
ATTR_STRATEGY = "routeiq.strategy"
ATTR_SCORE = "routeiq.score"
ATTR_CANDIDATES = "routeiq.candidates"
ATTR_SELECTED_DEPLOYMENT = "routeiq.selected_deployment"
ATTR_ROUTE_LATENCY_MS = "routeiq.route_latency_ms"  # the Route round trip, not the LLM call
ATTR_DECISION_ID = "routeiq.decision_id"  # the same key the service's span carries
ATTR_FALLBACK = "routeiq.fallback"
ATTR_FALLBACK_REASON = "routeiq.fallback_reason"
ATTR_REASON = "routeiq.reason"
# GenAI semantic conventions.
ATTR_REQUEST_MODEL = "gen_ai.request.model"  # the picked deployment's model: the request goes there
ATTR_RESPONSE_MODEL = "gen_ai.response.model"
ATTR_INPUT_TOKENS = "gen_ai.usage.input_tokens"
ATTR_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
# Outcome payload fields carried under their GenAI names instead of routeiq.<field>.
_GEN_AI_OUTCOME_KEYS = {
    "model_name": ATTR_RESPONSE_MODEL,
    "input_tokens": ATTR_INPUT_TOKENS,
    "output_tokens": ATTR_OUTPUT_TOKENS,
}

FALLBACK_EVENT = "routeiq.fallback"
OUTCOME_EVENT = "routeiq.router_outcome.v1"
OUTCOME_PAYLOAD_KEY = "routeiq.router_outcome.payload"
RESOURCE_SERVICE_NAME = "routeiq-gateway"


def resource_detector() -> ResourceDetector:
    """A detector adding ``service.version`` (the installed ``routeiq`` package's version) and a
    default ``service.name`` to the resource of whatever TracerProvider the gateway process
    builds, which is LiteLLM's when its ``otel`` callback is on. The SDK loads it by the entry
    point name ``routeiq`` listed in ``OTEL_EXPERIMENTAL_RESOURCE_DETECTORS``; an explicit
    name (``OTEL_SERVICE_NAME``, or LiteLLM's own) overrides the default name."""
    from opentelemetry.sdk.resources import Resource, ResourceDetector

    try:
        version = metadata.version("routeiq")
    except metadata.PackageNotFoundError:  # a source tree that was never installed
        version = "0+unknown"

    class _RouteIQDetector(ResourceDetector):
        def detect(self) -> Resource:
            return Resource({"service.name": RESOURCE_SERVICE_NAME, "service.version": version})

    return _RouteIQDetector()


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
    """The span attributes of one pick (``routeiq.*`` and ``gen_ai.request.model``)."""
    attributes: dict[str, Any] = {
        ATTR_STRATEGY: strategy,
        ATTR_CANDIDATES: list(candidates),
        ATTR_REQUEST_MODEL: selected_model,
        ATTR_REASON: reason,
        ATTR_FALLBACK: fallback,
    }
    if selected_deployment is not None:
        attributes[ATTR_SELECTED_DEPLOYMENT] = selected_deployment
    if score is not None:
        attributes[ATTR_SCORE] = score
    if latency_ms is not None:
        attributes[ATTR_ROUTE_LATENCY_MS] = latency_ms
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
    """Flat span-event attributes for an outcome (``routeiq.<field>``, or the field's GenAI name:
    model and token counts), plus its JSON payload (every field under its contract name)."""
    attributes: dict[str, Any] = {
        _GEN_AI_OUTCOME_KEYS.get(key, f"routeiq.{key}"): value
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
