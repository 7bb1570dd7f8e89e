"""The gateway's telemetry conventions: routeiq.* and GenAI attribute names, build info and
process metrics on its registry."""

from __future__ import annotations

import platform
from importlib import metadata

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from gateway_client.metrics import GatewayMetrics
from gateway_client.telemetry import outcome_attributes, routing_attributes


def test_pick_attributes_are_namespaced_and_name_the_model_the_genai_way() -> None:
    attributes = routing_attributes(
        strategy="knn", candidates=["a", "b"], selected_model="gpt-4o", selected_deployment="a",
        reason="routed", fallback=False, score=0.9, latency_ms=3.0, decision_id="d1",
    )  # fmt: skip
    assert attributes["gen_ai.request.model"] == "gpt-4o"
    assert attributes["routeiq.route_latency_ms"] == 3.0
    assert attributes["routeiq.decision_id"] == "d1"
    assert all(k.startswith(("routeiq.", "gen_ai.")) for k in attributes)


def test_outcome_tokens_and_model_use_genai_names() -> None:
    payload = {"decision_id": "d1", "model_name": "gpt-4o", "input_tokens": 12,
               "output_tokens": 34, "status": "success", "cost_usd": None}  # fmt: skip
    attributes = outcome_attributes(payload)
    assert attributes["gen_ai.usage.input_tokens"] == 12
    assert attributes["gen_ai.usage.output_tokens"] == 34
    assert attributes["gen_ai.response.model"] == "gpt-4o"
    assert attributes["routeiq.status"] == "success"
    assert "routeiq.input_tokens" not in attributes and "routeiq.cost_usd" not in attributes


def test_gateway_registry_has_process_runtime_and_build_info() -> None:
    registry = CollectorRegistry()
    GatewayMetrics(registry)
    families = list(text_string_to_metric_families(generate_latest(registry).decode()))
    samples = {s.name: s for f in families for s in f.samples}
    assert {"process_cpu_seconds_total", "python_info", "python_gc_collections_total"} <= set(
        samples
    )
    assert samples["routeiq_build_info"].labels == {
        "version": metadata.version("routeiq"),
        "python": platform.python_version(),
        "litellm": metadata.version("litellm"),
    }
