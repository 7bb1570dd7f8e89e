"""Outcomes, metrics, the cheapest fallback and TLS settings: no sockets."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry, generate_latest
from pydantic import ValidationError

from gateway_client import GatewayClientSettings
from gateway_client.breaker import CircuitBreaker
from gateway_client.fallback import CheapestFallback, make_fallback_policy
from gateway_client.metrics import GatewayMetrics
from gateway_client.outcomes import (
    METADATA_KEY,
    OutcomeReporter,
    outcome_from_logging,
)
from gateway_client.telemetry import OUTCOME_EVENT, emit_outcome
from routeiq.decision.v1 import decision_pb2


def dep(id: str, cost: float | None = None) -> dict[str, Any]:
    info: dict[str, Any] = {"id": id}
    if cost is not None:
        info["input_cost_per_token"] = cost
        info["output_cost_per_token"] = cost
    return {"litellm_params": {"model": f"openai/{id}"}, "model_info": info}


def test_cheapest_fallback_takes_the_lowest_price_and_puts_unpriced_last() -> None:
    policy = make_fallback_policy("cheapest")
    assert isinstance(policy, CheapestFallback)
    group = [dep("free?"), dep("dear", 3e-5), dep("cheap", 1e-7), dep("cheap-too", 1e-7)]
    assert policy.choose(group)["model_info"]["id"] == "cheap"
    assert policy.choose([dep("a"), dep("b")])["model_info"]["id"] == "a"


def test_tls_settings_need_cert_and_key_together(tmp_path: Any) -> None:
    with pytest.raises(ValidationError):
        GatewayClientSettings(tls_cert_file=tmp_path / "c.pem")
    settings = GatewayClientSettings(tls_ca_file=tmp_path / "ca.pem")
    assert settings.uses_tls and not GatewayClientSettings().uses_tls


def test_breaker_state_is_a_state_set_read_at_scrape_time() -> None:
    registry = CollectorRegistry()
    metrics = GatewayMetrics(registry)
    now = [0.0]
    breaker = CircuitBreaker(1, 10.0, clock=lambda: now[0])
    metrics.breakers.track("dns:///svc:50051", breaker)

    def states() -> dict[str, float | None]:
        return {
            name: registry.get_sample_value(
                "routeiq_gateway_breaker_state",
                {"target": "dns:///svc:50051", "routeiq_gateway_breaker_state": name},
            )
            for name in ("closed", "open", "half_open")
        }

    assert states() == {"closed": 1, "open": 0, "half_open": 0}
    breaker.record_failure()
    assert states() == {"closed": 0, "open": 1, "half_open": 0}
    now[0] = 11.0
    assert states() == {"closed": 0, "open": 0, "half_open": 1}
    exposition = generate_latest(registry).decode()
    assert "# TYPE routeiq_gateway_breaker_state gauge" in exposition  # how text format shows it
    assert (
        'routeiq_gateway_breaker_state{routeiq_gateway_breaker_state="half_open",'
        'target="dns:///svc:50051"} 1.0'
    ) in exposition.splitlines()


def logging_kwargs(record: dict[str, Any], **log: Any) -> dict[str, Any]:
    standard = {
        "model_id": "dep-a",
        "prompt_tokens": 12,
        "completion_tokens": 34,
        "response_cost": 0.002,
        "startTime": 100.0,
        "endTime": 100.25,
        "model": "gpt-4o",
        **log,
    }
    return {
        "litellm_params": {"metadata": {METADATA_KEY: record}},
        "standard_logging_object": standard,
        "litellm_call_id": "call-1",
    }


def test_outcome_is_joined_to_the_decision_and_carries_tokens_cost_and_latency() -> None:
    record = {"decision_id": "d-1", "deployment_id": "dep-a", "fallback": False, "reason": "routed"}
    outcome = outcome_from_logging(logging_kwargs(record), None, None, failed=False)
    assert outcome is not None
    assert (outcome.decision_id, outcome.deployment_id, outcome.status) == (
        "d-1",
        "dep-a",
        "success",
    )
    assert (outcome.input_tokens, outcome.output_tokens) == (12, 34)
    assert outcome.latency_ms == pytest.approx(250.0)
    assert outcome.cost_usd == pytest.approx(0.002)
    proto = outcome.to_proto()
    assert proto.decision_id == "d-1" and proto.HasField("cost_usd")


def test_failed_fallback_outcome_names_the_error_and_the_reason() -> None:
    record = {
        "decision_id": "",
        "deployment_id": "dep-a",
        "fallback": True,
        "reason": "breaker_open",
    }
    kwargs = logging_kwargs(record, prompt_tokens=0, completion_tokens=0)
    kwargs["exception"] = TimeoutError("slow provider")
    outcome = outcome_from_logging(kwargs, None, None, failed=True)
    assert outcome is not None
    assert outcome.status == "timeout" and outcome.error_type == "TimeoutError"
    assert outcome.fallback and outcome.fallback_reason == "breaker_open"
    assert outcome.cost_usd is None


def test_a_call_the_strategy_did_not_pick_has_no_outcome() -> None:
    assert outcome_from_logging({"litellm_params": {"metadata": {}}}, 0, 1, failed=False) is None


class BlockingSender:
    def __init__(self) -> None:
        self.release = threading.Event()
        self.sent: list[decision_pb2.RecordOutcomeRequest] = []

    def record_outcome(self, request: decision_pb2.RecordOutcomeRequest, timeout_s: float) -> None:
        self.release.wait(10.0)
        self.sent.append(request)


def test_a_full_outcome_queue_drops_and_counts_without_blocking() -> None:
    registry = CollectorRegistry()
    sender = BlockingSender()
    reporter = OutcomeReporter(sender, GatewayMetrics(registry), max_queue=2)
    record = {"decision_id": "d", "deployment_id": "dep-a", "fallback": False}
    outcome = outcome_from_logging(logging_kwargs(record), None, None, failed=False)
    assert outcome is not None
    accepted = [reporter.submit(outcome) for _ in range(10)]  # the worker holds one, queue 2
    assert accepted.count(False) >= 7
    assert registry.get_sample_value("routeiq_gateway_outcome_drops_total") == reporter.dropped
    sender.release.set()
    assert reporter.flush(10.0)
    assert len(sender.sent) == accepted.count(True)
    reporter.close()


def test_outcome_event_goes_on_the_request_span_or_a_child_of_it() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("request") as open_span:
        emit_outcome({"decision_id": "d-1", "input_tokens": 3}, open_span, provider)
    emit_outcome({"decision_id": "d-2"}, open_span, provider)  # ended: a child span carries it
    spans = {s.name: s for s in exporter.get_finished_spans()}
    (event,) = spans["request"].events
    assert event.name == OUTCOME_EVENT and event.attributes["routeiq.decision_id"] == "d-1"
    late = spans["routeiq.outcome"]
    assert late.parent is not None and late.parent.span_id == spans["request"].context.span_id
    assert late.events[0].attributes["routeiq.decision_id"] == "d-2"
