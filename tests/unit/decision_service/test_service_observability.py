"""Service-wide observability conventions: the trace resource and the standard metrics."""

from __future__ import annotations

import platform
from importlib import metadata

import onnxruntime
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from decision_service.metrics import ServiceMetrics
from decision_service.telemetry import tracing_resource


def test_tracing_resource_names_the_service_and_its_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    attributes = tracing_resource().attributes
    assert attributes["service.name"] == "routeiq-decision-service"
    assert attributes["service.version"] == metadata.version("routeiq")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "routeiq-eu")
    assert tracing_resource().attributes["service.name"] == "routeiq-eu"


def test_registry_has_process_runtime_and_build_info() -> None:
    text = generate_latest(ServiceMetrics().registry).decode()
    names = {s.name for f in text_string_to_metric_families(text) for s in f.samples}
    assert {"process_cpu_seconds_total", "process_resident_memory_bytes", "python_info"} <= names
    assert "python_gc_collections_total" in names
    (build,) = [
        s for f in text_string_to_metric_families(text) for s in f.samples
        if s.name == "routeiq_build_info"
    ]  # fmt: skip
    assert build.value == 1
    assert build.labels == {
        "version": metadata.version("routeiq"),
        "python": platform.python_version(),
        "onnxruntime": onnxruntime.__version__,
    }
