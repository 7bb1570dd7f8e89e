"""Decision events (``routeiq.router_decision.v1``) on the server span, and tracing setup.

The payload follows the v1 contract field by field (``seeds/002``): no prompt text, only
its length. ``event_id`` is the decision id, so the gateway's outcome (reported under the
same id) and the decision join in the trainer. The experiment arm, bundle version and,
when an operator opts in, the int8-quantized query embedding travel as attributes of the
same event, beside the payload, so the v1 payload stays exactly as specified. So do the
exploration figures (``routeiq.propensity``, ``routeiq.explored``) and, when an operator opts
in, the prompt's sha256: the prompt text itself is never recorded.

Outcomes (``routeiq.router_outcome.v1``, from RecordOutcome) and quality signals
(``routeiq.router_feedback.v1``, from RecordFeedback) are events on their own calls' spans,
each with a JSON payload carrying the ``decision_id`` they join on (docs/learning.md). With
``telemetry_events_file`` set, every event is also appended to a JSON lines file as
``{"name", "time_unix_ms", "attributes"}``, the same attributes the span event carries.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import threading
import time
from dataclasses import asdict
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from .domain import Decision, Feedback, Outcome, RouteQuery

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
ATTR_PROPENSITY = "routeiq.propensity"
ATTR_EXPLORED = "routeiq.explored"
ATTR_SELECTED_ID = "routeiq.selected_deployment_id"
ATTR_PROMPT_SHA256 = "routeiq.prompt.sha256"
OUTCOME_EVENT_NAME = "routeiq.router_outcome.v1"
OUTCOME_PAYLOAD_KEY = "routeiq.router_outcome.payload"
FEEDBACK_EVENT_NAME = "routeiq.router_feedback.v1"
FEEDBACK_PAYLOAD_KEY = "routeiq.router_feedback.payload"
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


class EventFile:
    """Appends events as JSON lines; one lock, one write per line, so lines never interleave."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def write(self, name: str, attributes: dict[str, Any]) -> None:
        line = json.dumps(
            {"name": name, "time_unix_ms": int(time.time() * 1000), "attributes": attributes},
            separators=(",", ":"),
        )
        try:
            with self._lock, self.path.open("a", encoding="utf-8") as fh:
                fh.write(line + "\n")
        except OSError as error:  # a full disk must not fail the decision
            log.warning("could not append to %s: %s", self.path, error)


class _EventOptions:
    file: EventFile | None = None
    prompt_hash: bool = False


_options = _EventOptions()


def configure_events(events_file: Path | None, *, prompt_hash: bool = False) -> None:
    """Where events go besides the current span, and whether decisions carry a prompt hash."""
    _options.file = EventFile(events_file) if events_file is not None else None
    _options.prompt_hash = prompt_hash


def _emit(name: str, attributes: dict[str, Any]) -> bool:
    """Add the event to the current span and the events file; False when neither records."""
    span = trace.get_current_span()
    recording = span.is_recording()
    if recording:
        span.add_event(name, attributes)
    if _options.file is not None:
        _options.file.write(name, attributes)
    return recording or _options.file is not None


def emit_decision_event(decision: Decision, query: RouteQuery) -> None:
    """Add the decision event to the current span and the events file (no-op when neither)."""
    span = trace.get_current_span()
    if not span.is_recording() and _options.file is None:
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
        ATTR_PROPENSITY: decision.propensity,
        ATTR_EXPLORED: decision.explored,
        ATTR_SELECTED_ID: decision.ranked[0].id,
    }
    if decision.embedding is not None:
        packed, scale = quantize(decision.embedding)
        attributes[ATTR_EMBEDDING_INT8] = packed
        attributes[ATTR_EMBEDDING_SCALE] = scale
    if _options.prompt_hash and query.prompt is not None:
        attributes[ATTR_PROMPT_SHA256] = hashlib.sha256(query.prompt.encode("utf-8")).hexdigest()
    _emit(ROUTER_DECISION_EVENT_NAME, attributes)
    if span.is_recording():
        span.set_attribute(ATTR_DECISION_ID, decision.decision_id)
        span.set_attribute(ATTR_ARM, decision.arm)


def emit_outcome_event(outcome: Outcome) -> None:
    """The outcome as a ``routeiq.router_outcome.v1`` event, its payload keyed by decision id."""
    payload = {"contract_version": CONTRACT_VERSION, **asdict(outcome)}
    _emit(
        OUTCOME_EVENT_NAME,
        {
            OUTCOME_PAYLOAD_KEY: json.dumps(payload, separators=(",", ":")),
            ATTR_DECISION_ID: outcome.decision_id,
        },
    )


def emit_feedback_event(feedback: Feedback) -> None:
    """The quality signal as a ``routeiq.router_feedback.v1`` event (no free text exists)."""
    payload = {"contract_version": CONTRACT_VERSION, **asdict(feedback)}
    _emit(
        FEEDBACK_EVENT_NAME,
        {
            FEEDBACK_PAYLOAD_KEY: json.dumps(payload, separators=(",", ":")),
            ATTR_DECISION_ID: feedback.decision_id,
        },
    )


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
