"""Decision events over a real (in-process) gRPC server, captured with the OTel SDK.

The caller's trace context travels in ``traceparent`` metadata; the server span continues
it, and carries one ``routeiq.router_decision.v1`` event per decision whose payload matches
the v1 contract (seeds/002) field by field.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from decision_service.server import DecisionServer, build_decider
from decision_service.settings import ServiceSettings
from routeiq.decision.v1 import decision_pb2 as pb
from routeiq.decision.v1 import decision_pb2_grpc as pb_grpc

pytestmark = pytest.mark.integration

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN_ID = "00f067aa0ba902b7"
PROMPT = "Prove that the square root of two is irrational, step by step."

CONTRACT_KEYS = {
    "contract_version",
    "contract_name",
    "event_id",
    "trace_id",
    "span_id",
    "timestamp_utc",
    "timestamp_unix_ms",
    "input",
    "strategy_name",
    "strategy_version",
    "candidate_deployments",
    "selected_deployment",
    "selection_reason",
    "timings",
    "outcome",
    "fallback",
}


def _serve(
    bundle: Path, encoder: Path, exporter: InMemorySpanExporter, **settings: object
) -> DecisionServer:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    config = ServiceSettings(
        bundle_dir=bundle,
        encoder_dir=encoder,
        host="127.0.0.1",
        port=0,
        reload_poll_ms=0,
        **settings,  # type: ignore[arg-type]
    )
    server = DecisionServer(config, build_decider(config), tracer_provider=provider)
    server.start()
    return server


@pytest.fixture
def traced(knn_bundle_dir, encoder_dir) -> Iterator[tuple[str, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    server = _serve(knn_bundle_dir, encoder_dir, exporter)
    try:
        yield f"127.0.0.1:{server.port}", exporter
    finally:
        server.stop()


def _request(**kwargs: object) -> pb.RouteRequest:
    return pb.RouteRequest(
        prompt=PROMPT,
        candidates=[
            pb.Candidate(id="a", model_name="gpt-4o", provider="openai"),
            pb.Candidate(id="b", model_name="gpt-4o-mini", provider="openai"),
            pb.Candidate(id="c", model_name="claude-3-5-sonnet", provider="anthropic"),
        ],
        requested_model="auto",
        user_id_hash="u-9f2c",
        team_id_hash="t-17",
        request_id="req-1",
        **kwargs,
    )


def test_decision_event_matches_the_v1_contract_field_by_field(traced):
    address, exporter = traced
    with grpc.insecure_channel(address) as channel:
        reply = pb_grpc.DecisionServiceStub(channel).Route(
            _request(),
            metadata=(("traceparent", f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01"),),
            timeout=30,
        )
    spans = [s for s in exporter.get_finished_spans() if s.name.endswith("/Route")]
    assert len(spans) == 1
    span = spans[0]
    # Trace context taken from the caller.
    assert f"{span.context.trace_id:032x}" == TRACE_ID
    assert span.parent is not None and f"{span.parent.span_id:016x}" == PARENT_SPAN_ID
    events = [e for e in span.events if e.name == "routeiq.router_decision.v1"]
    assert len(events) == 1
    attributes = events[0].attributes
    assert attributes is not None
    raw = str(attributes["routeiq.router_decision.payload"])
    assert PROMPT not in raw and "irrational" not in raw  # no prompt text
    payload = json.loads(raw)

    assert set(payload) == CONTRACT_KEYS
    assert payload["contract_version"] == "v1"
    assert payload["contract_name"] == "routeiq.router_decision.v1"
    assert payload["event_id"] == reply.decision_id
    assert payload["trace_id"] == TRACE_ID
    assert payload["span_id"] == f"{span.context.span_id:016x}"
    assert payload["timestamp_utc"].endswith("Z") and len(payload["timestamp_utc"]) == 24
    assert isinstance(payload["timestamp_unix_ms"], int)
    assert payload["input"] == {
        "query_length": len(PROMPT),
        "requested_model": "auto",
        "user_id": "u-9f2c",
        "team_id": "t-17",
    }
    assert payload["strategy_name"] == reply.strategy_name
    assert payload["strategy_version"] == reply.strategy_version
    providers = {"gpt-4o": "openai", "gpt-4o-mini": "openai", "claude-3-5-sonnet": "anthropic"}
    assert payload["candidate_deployments"] == [
        {
            "model_name": r.model_name,
            "provider": providers[r.model_name],
            "score": pytest.approx(r.score),
            "available": True,
        }
        for r in reply.ranked
    ]
    assert payload["selected_deployment"] == reply.ranked[0].model_name
    assert payload["selection_reason"] == reply.selection_reason == "highest_score"
    assert set(payload["timings"]) == {"total_ms", "strategy_ms", "embedding_ms"}
    assert payload["timings"]["total_ms"] == pytest.approx(reply.timings.total_ms)
    assert payload["outcome"] == {
        "status": "success",
        "input_tokens": None,
        "output_tokens": None,
        "total_tokens": None,
    }
    assert payload["fallback"] == {
        "fallback_triggered": False,
        "original_model": None,
        "fallback_reason": None,
    }
    assert attributes["routeiq.decision_id"] == reply.decision_id
    assert attributes["routeiq.bundle_version"] == reply.bundle_version
    assert attributes["routeiq.experiment_arm"] == ""
    assert "routeiq.query_embedding.int8_b64" not in attributes  # off unless opted in


def test_quantized_embedding_is_attached_only_when_opted_in(knn_bundle_dir, encoder_dir):
    from decision_service.encoder import OnnxEncoder

    exporter = InMemorySpanExporter()
    server = _serve(knn_bundle_dir, encoder_dir, exporter, telemetry_embedding=True)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            pb_grpc.DecisionServiceStub(channel).Route(_request(), timeout=30)
    finally:
        server.stop()
    (span,) = [s for s in exporter.get_finished_spans() if s.name.endswith("/Route")]
    (event,) = [e for e in span.events if e.name == "routeiq.router_decision.v1"]
    assert event.attributes is not None
    packed = base64.b64decode(str(event.attributes["routeiq.query_embedding.int8_b64"]))
    scale = float(event.attributes["routeiq.query_embedding.scale"])  # type: ignore[arg-type]
    restored = np.frombuffer(packed, dtype=np.int8).astype(np.float32) * scale
    exact = OnnxEncoder(encoder_dir).encode([PROMPT]).embeddings[0]
    assert restored.shape == exact.shape
    cosine = float(restored @ exact / (np.linalg.norm(restored) * np.linalg.norm(exact)))
    assert cosine > 0.99


def test_record_outcome_is_accepted_and_validated(traced):
    address, exporter = traced
    with grpc.insecure_channel(address) as channel:
        stub = pb_grpc.DecisionServiceStub(channel)
        reply = stub.Route(_request(), timeout=30)
        stub.RecordOutcome(
            pb.RecordOutcomeRequest(
                decision_id=reply.decision_id,
                deployment_id=reply.ranked[0].id,
                model_name=reply.ranked[0].model_name,
                status="success",
                input_tokens=12,
                output_tokens=40,
                latency_ms=812.0,
            ),
            timeout=10,
        )
        with pytest.raises(grpc.RpcError) as err:
            stub.RecordOutcome(
                pb.RecordOutcomeRequest(decision_id=reply.decision_id, status="great"), timeout=10
            )
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    (span,) = [s for s in exporter.get_finished_spans() if s.name.endswith("/RecordOutcome")][:1]
    assert span.attributes is not None
    assert span.attributes["routeiq.decision_id"] == reply.decision_id
    assert span.attributes["routeiq.outcome.status"] == "success"
