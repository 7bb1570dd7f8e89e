"""deploy/k8s/keda: prod scaled by a KEDA ScaledObject instead of the HPA, on the same signals.

Rendered with ``kubectl kustomize`` like the overlays; the ScaledObject is checked against
KEDA's CRD fields (tests/deploy/keda_scaledobject.schema.yaml, no network), its HPA behaviour
against Kubernetes' own schema, and its signals against the HPA and prometheus-adapter rule
it replaces.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from jsonschema import Draft7Validator

from .conftest import HASH_SUFFIX, K8S, Obj, find, kubectl_or_skip, load_yaml, rendered
from .test_k8s_manifests import K8S_VERSIONS

SCHEMA = load_yaml(Path(__file__).with_name("keda_scaledobject.schema.yaml"))
# Required metadata of the scalers used (KEDA docs: prometheus and cpu scalers).
SCALER_METADATA = {
    "prometheus": ({"serverAddress", "query", "threshold"}, {"activationThreshold"}),
    "cpu": ({"value"}, set()),
}


@pytest.fixture(scope="module")
def keda() -> list[Obj]:
    result = subprocess.run(
        [kubectl_or_skip(), "kustomize", str(K8S / "keda")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def _names(objects: list[Obj]) -> set[tuple[str, str]]:
    return {(o["kind"], HASH_SUFFIX.sub("", o["metadata"]["name"])) for o in objects}


def test_keda_variant_is_prod_with_a_scaled_object_in_place_of_the_hpa(keda: list[Obj]) -> None:
    prod = rendered("prod")
    expected = _names(prod) - {("HorizontalPodAutoscaler", "decision-service")}
    assert _names(keda) == expected | {("ScaledObject", "decision-service")}
    scaled = find(keda, "ScaledObject", "decision-service")
    assert (
        scaled["metadata"]["namespace"]
        == find(prod, "Deployment", "decision-service")["metadata"]["namespace"]
    )


def test_scaled_object_validates_against_keda_crd_fields(keda: list[Obj]) -> None:
    scaled = find(keda, "ScaledObject", "decision-service")
    errors = [e.message for e in Draft7Validator(SCHEMA).iter_errors(scaled)]
    assert not errors, errors
    for trigger in scaled["spec"]["triggers"]:
        required, optional = SCALER_METADATA[trigger["type"]]
        assert required <= set(trigger["metadata"]) <= required | optional, trigger
    behavior = scaled["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "behavior-check"},
        "spec": {
            "scaleTargetRef": {"kind": "Deployment", "name": "x"},
            "maxReplicas": 2,
            "behavior": behavior,
        },
    }
    for version in K8S_VERSIONS:
        kubernetes_validate.validate(hpa, version, strict=True)


def test_scaled_object_scales_like_the_prod_hpa(keda: list[Obj]) -> None:
    hpa = find(rendered("prod"), "HorizontalPodAutoscaler", "decision-service")["spec"]
    scaled = find(keda, "ScaledObject", "decision-service")
    spec = scaled["spec"]
    assert spec["scaleTargetRef"] == hpa["scaleTargetRef"]
    find(keda, "Deployment", spec["scaleTargetRef"]["name"])
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (
        hpa["minReplicas"],
        hpa["maxReplicas"],
    )
    assert spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"] == hpa["behavior"]

    by_type = {t["type"]: t for t in spec["triggers"]}
    assert set(by_type) == {"prometheus", "cpu"}
    hpa_metrics = {m["type"]: m for m in hpa["metrics"]}
    cpu = hpa_metrics["Resource"]["resource"]["target"]
    assert by_type["cpu"]["metricType"] == cpu["type"] == "Utilization"
    assert int(by_type["cpu"]["metadata"]["value"]) == cpu["averageUtilization"]

    # The Prometheus trigger is the HPA's per-pod metric: the series the adapter rule turns
    # into routeiq_decisions_per_second, over the same window, averaged over the pods.
    prometheus = by_type["prometheus"]
    pods = hpa_metrics["Pods"]["pods"]
    assert prometheus["metricType"] == pods["target"]["type"] == "AverageValue"
    assert float(prometheus["metadata"]["threshold"]) == float(pods["target"]["averageValue"])
    adapter = load_yaml(K8S / "prometheus-adapter" / "values.yaml")
    (rule,) = [r for r in adapter["rules"]["custom"] if r["name"]["as"] == pods["metric"]["name"]]
    series = re.match(r"^(\w+)\{", rule["seriesQuery"])
    window = re.search(r"\[(\w+)\]", rule["metricsQuery"])
    assert series and window
    query = prometheus["metadata"]["query"]
    assert re.fullmatch(
        rf"sum\(rate\({series.group(1)}\{{(.*)\}}\[{window.group(1)}\]\)\)", query
    ), query
    # Only this namespace's decision pods count (the adapter matches by namespace and pod).
    assert f'namespace="{scaled["metadata"]["namespace"]}"' in query
    assert 'pod=~"decision-service-.*"' in query
