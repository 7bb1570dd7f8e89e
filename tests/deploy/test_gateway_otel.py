"""The gateway's OpenTelemetry as shipped: the image's SDK/exporter pins, the OTEL_* settings of
the k8s and compose gateways, and the ``routeiq`` resource detector they name."""

from __future__ import annotations

import re
from importlib import metadata

import pytest
import yaml
from opentelemetry.sdk.resources import Resource

from .conftest import DEPLOY, K8S, REPO, load_yaml

OTEL_PACKAGES = ("opentelemetry-sdk", "opentelemetry-exporter-otlp-proto-grpc")


def _pins(text: str) -> dict[str, str]:
    return dict(re.findall(r"'?([A-Za-z0-9_.\-]+)==([0-9][^\s']*)'?", text))


@pytest.mark.parametrize("path", ["deploy/docker/litellm-gateway.Dockerfile", "Makefile"])
def test_gateway_installs_the_otel_sdk_and_exporter_at_the_constraint_pins(path: str) -> None:
    constraints = _pins((REPO / "constraints.txt").read_text())
    pins = _pins((REPO / path).read_text())
    for package in OTEL_PACKAGES:
        assert pins.get(package) == constraints[package], (path, package)


def _k8s_gateway_env() -> dict[str, str]:
    docs = list(yaml.safe_load_all((K8S / "gateway" / "litellm-proxy.yaml").read_text()))
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    return {e["name"]: e["value"] for e in env if "value" in e}


def _k8s_service_env() -> dict[str, str]:
    deployment = load_yaml(K8S / "base" / "deployment.yaml")
    (service,) = [c for c in deployment["spec"]["template"]["spec"]["containers"]
                  if c["name"] == "decision-service"]  # fmt: skip
    return {e["name"]: e["value"] for e in service["env"] if "value" in e}


def test_gateways_export_otlp_grpc_with_the_routeiq_resource() -> None:
    compose = load_yaml(DEPLOY / "compose" / "docker-compose.yaml")["services"]
    for env, service_env in (
        (_k8s_gateway_env(), _k8s_service_env()),
        (compose["litellm"]["environment"], compose["decision-service"]["environment"]),
    ):
        assert env["OTEL_SERVICE_NAME"] == "routeiq-gateway"
        assert env["OTEL_EXPERIMENTAL_RESOURCE_DETECTORS"] == "routeiq"
        # LiteLLM's otel callback defaults to OTLP/HTTP; the collector port is OTLP/gRPC's.
        assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "grpc"
        # One collector for both sides, so one backend holds the whole trace.
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == service_env["OTEL_EXPORTER_OTLP_ENDPOINT"]
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"].endswith(":4317")


def test_the_routeiq_resource_detector_adds_the_package_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    monkeypatch.setenv("OTEL_EXPERIMENTAL_RESOURCE_DETECTORS", "routeiq")
    version = metadata.version("routeiq")
    # As LiteLLM's otel callback builds its resource: an explicit service.name, plus detectors.
    named = Resource.create({"service.name": "routeiq-gateway"}).attributes
    assert (named["service.name"], named["service.version"]) == ("routeiq-gateway", version)
    # Without an explicit name the detector's default names the gateway.
    assert Resource.create({}).attributes["service.name"] == "routeiq-gateway"
    monkeypatch.delenv("OTEL_EXPERIMENTAL_RESOURCE_DETECTORS")
    assert "service.version" not in Resource.create({}).attributes
