"""Decision events (``routeiq.router_decision.v1``) on the server span, and tracing setup.

The payload follows the v1 contract field by field (``seeds/002``): no prompt text, only
its length. ``event_id`` is the decision id, so the gateway's outcome (reported under the
same id) and the decision join in the trainer. The experiment arm, bundle version and,
when an operator opts in, the int8-quantized query embedding travel as attributes of the
same event, beside the payload, so the v1 payload stays exactly as specified.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import time
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

import numpy as np
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from .domain import Decision, RouteQuery

log = logging.getLogger(__name__)

CONTRACT_VERSION = "v1"
CONTRACT_NAME = "routeiq.router_decision.v1"
ROUTER_DECISION_EVENT_NAME = "routeiq.router_decision.v1"
ROUTER_DECISION_PAYLOAD_KEY = "routeiq.router_decision.payload"
ATTR_DECISION_ID = "routeiq.decision_id"
ATTR_ARM = "routeiq.experiment_arm"
ATTR_BUNDLE_VERSION = "routeiq.bundle_version"
ATTR_EMBEDDING_INT8 = "routeiq.query_embedding.int8_b64"
ATTR_EMBEDDING_SCALE = "routeiq.query_embedding.scale"
SERVICE_NAME = "routeiq-decision-service"


def routeiq_version() -> str:
    """The installed ``routeiq`` distribution's version (what the wheel and images carry)."""
    try:
        return metadata.version("routeiq")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "0+unknown"


def tracing_resource() -> Resource:
    """``service.name`` (unless ``OTEL_SERVICE_NAME`` names it) and ``service.version`` over the
    standard detectors' attributes (``OTEL_RESOURCE_ATTRIBUTES`` adds the deployment's own)."""
    # Resource.create lets explicit attributes beat the environment's, so the name is only a
    # default; the version is always the installed package's.
    attributes = {"service.version": routeiq_version()}
    if not os.environ.get("OTEL_SERVICE_NAME"):
        attributes["service.name"] = SERVICE_NAME
    return Resource.create(attributes)


def decision_payload(
    decision: Decision, query: RouteQuery, *, trace_id: str, span_id: str, now: float | None = None
) -> dict[str, Any]:
    """The v1 payload of one decision."""
    now = time.time() if now is None else now
    stamp = datetime.fromtimestamp(now, UTC)
    provider = {c.id: c.provider for c in query.candidates}
    top = decision.ranked[0]
    return {
        "contract_version": CONTRACT_VERSION,
        "contract_name": CONTRACT_NAME,
        "event_id": decision.decision_id,
        "trace_id": trace_id,
        "span_id": span_id,
        "timestamp_utc": stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z",
        "timestamp_unix_ms": int(now * 1000),
        "input": {
            "query_length": len(query.prompt) if query.prompt is not None else 0,
            "requested_model": query.requested_model or None,
            "user_id": query.user_id_hash or None,
            "team_id": query.team_id_hash or None,
        },
        "strategy_name": decision.strategy_name,
        "strategy_version": decision.strategy_version or None,
        "candidate_deployments": [
            {
                "model_name": r.model_name,
                "provider": provider.get(r.id, ""),
                "score": r.score,
                # The gateway sends only deployments it can use now.
                "available": True,
            }
            for r in decision.ranked
        ],
        "selected_deployment": top.model_name,
        "selection_reason": decision.selection_reason,
        "timings": {
            "total_ms": decision.timings.total_ms,
            "strategy_ms": decision.timings.strategy_ms,
            "embedding_ms": decision.timings.embedding_ms,
        },
        # The service decides; the LLM call has not happened yet. "success" means a decision
        # was made; tokens are unknown here (null, not a made-up 0) and arrive with the
        # gateway's outcome under the same event_id.
        "outcome": {
            "status": "success",
            "input_tokens": None,
            "output_tokens": None,
            "total_tokens": None,
        },
        "fallback": {"fallback_triggered": False, "original_model": None, "fallback_reason": None},
    }


def quantize(embedding: np.ndarray) -> tuple[str, float]:
    """Symmetric int8 quantization: values = int8 * scale. Base64 of the int8 bytes."""
    peak = float(np.max(np.abs(embedding))) if embedding.size else 0.0
    scale = peak / 127.0 if peak > 0 else 1.0
    q = np.clip(np.rint(embedding / scale), -127, 127).astype(np.int8)
    return base64.b64encode(q.tobytes()).decode("ascii"), scale


def emit_decision_event(decision: Decision, query: RouteQuery) -> None:
    """Add the decision event to the current span (a no-op when tracing is off)."""
    span = trace.get_current_span()
    if not span.is_recording():
        return
    ctx = span.get_span_context()
    payload = decision_payload(
        decision, query, trace_id=f"{ctx.trace_id:032x}", span_id=f"{ctx.span_id:016x}"
    )
    attributes: dict[str, Any] = {
        ROUTER_DECISION_PAYLOAD_KEY: json.dumps(payload, separators=(",", ":")),
        ATTR_DECISION_ID: decision.decision_id,
        ATTR_ARM: decision.arm,
        ATTR_BUNDLE_VERSION: decision.bundle_version,
    }
    if decision.embedding is not None:
        packed, scale = quantize(decision.embedding)
        attributes[ATTR_EMBEDDING_INT8] = packed
        attributes[ATTR_EMBEDDING_SCALE] = scale
    span.add_event(ROUTER_DECISION_EVENT_NAME, attributes)
    span.set_attribute(ATTR_DECISION_ID, decision.decision_id)
    span.set_attribute(ATTR_ARM, decision.arm)


def configure_tracing() -> TracerProvider | None:
    """An OTLP-exporting provider when the standard OTel environment asks for one.

    Export is on when ``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``
    is set, unless ``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none``. The exporter
    and resource read the rest (headers, protocol, service name, resource attributes).
    """
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return None
    if os.environ.get("OTEL_TRACES_EXPORTER", "otlp").lower() == "none":
        return None
    if not (
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    ):
        return None
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    provider = TracerProvider(resource=tracing_resource())
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    log.info("exporting traces over OTLP")
    return provider
