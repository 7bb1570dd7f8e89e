"""Properties of the rendered Kubernetes manifests (deploy/k8s), for every overlay."""

from __future__ import annotations

import kubernetes_validate
import yaml
from jsonschema import Draft7Validator

from decision_service.settings import ServiceSettings

from .conftest import (
    HASH_SUFFIX,
    K8S,
    Obj,
    container,
    containers,
    find,
    load_yaml,
    pod_spec,
    rendered,
)

# The oldest Kubernetes we support (native gRPC probes GA in 1.27, preStop sleep in 1.30) and
# the newest schema kubernetes-validate ships.
K8S_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())

EXPECTED = {
    ("Namespace", None),
    ("ServiceAccount", "decision-service"),
    ("ServiceAccount", "routeiq-trainer"),
    ("ConfigMap", "decision-service-config"),
    ("ConfigMap", "model-sync-config"),
    ("ConfigMap", "training-script"),
    ("ConfigMap", "routeiq-grafana-dashboard"),
    ("ConfigMap", "litellm-proxy-config"),
    ("Deployment", "decision-service"),
    ("Deployment", "litellm-proxy"),
    ("Service", "decision-service"),
    ("Service", "decision-service-headless"),
    ("Service", "litellm-proxy"),
    ("HorizontalPodAutoscaler", "decision-service"),
    ("PodDisruptionBudget", "decision-service"),
    ("NetworkPolicy", "decision-service"),
    ("CronJob", "routeiq-trainer"),
    ("ServiceMonitor", "decision-service"),
    ("ServiceMonitor", "litellm-proxy"),
    ("PrometheusRule", "routeiq-slo"),
}

# Prometheus Operator CRDs are not in the Kubernetes schemas: check the fields we rely on.
_CRD_SCHEMAS: dict[str, dict] = {
    "ServiceMonitor": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "monitoring.coreos.com/v1"},
            "spec": {
                "type": "object",
                "required": ["selector", "endpoints"],
                "additionalProperties": False,
                "properties": {
                    "selector": {"type": "object", "required": ["matchLabels"]},
                    "endpoints": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["port"],
                            "additionalProperties": False,
                            "properties": {
                                "port": {"type": "string"},
                                "path": {"type": "string"},
                                "interval": {"type": "string", "pattern": "^[0-9]+[smh]$"},
                                "scrapeTimeout": {"type": "string", "pattern": "^[0-9]+[smh]$"},
                            },
                        },
                    },
                },
            },
        },
    },
    "PrometheusRule": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "monitoring.coreos.com/v1"},
            "spec": {
                "type": "object",
                "required": ["groups"],
                "additionalProperties": False,
                "properties": {
                    "groups": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["name", "rules"],
                            "additionalProperties": False,
                            "properties": {
                                "name": {"type": "string"},
                                "rules": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "required": ["expr"],
                                        "oneOf": [
                                            {"required": ["alert"]},
                                            {"required": ["record"]},
                                        ],
                                        "additionalProperties": False,
                                        "properties": {
                                            "alert": {"type": "string"},
                                            "record": {"type": "string"},
                                            "expr": {"type": "string", "minLength": 1},
                                            "for": {"type": "string", "pattern": "^[0-9]+[smh]$"},
                                            "labels": {"type": "object"},
                                            "annotations": {"type": "object"},
                                        },
                                    },
                                },
                            },
                        },
                    }
                },
            },
        },
    },
}


def _service_pod_labels(objects: list[Obj]) -> dict[str, str]:
    return find(objects, "Deployment", "decision-service")["spec"]["template"]["metadata"]["labels"]


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def _config(objects: list[Obj]) -> dict[str, str]:
    return find(objects, "ConfigMap", "decision-service-config")["data"]


# -- rendering and schemas --


def test_overlay_renders_exactly_the_expected_objects(objects: list[Obj]) -> None:
    rendered = set()
    for obj in objects:
        name = obj["metadata"]["name"]
        if obj["kind"] == "ConfigMap":
            name = HASH_SUFFIX.sub("", name)
        rendered.add((obj["kind"], None if obj["kind"] == "Namespace" else name))
    assert rendered == EXPECTED


def test_every_object_validates_against_its_schema(objects: list[Obj]) -> None:
    for obj in objects:
        if obj["kind"] in _CRD_SCHEMAS:
            errors = list(Draft7Validator(_CRD_SCHEMAS[obj["kind"]]).iter_errors(obj))
            assert not errors, f"{obj['kind']}/{obj['metadata']['name']}: {errors[0].message}"
            continue
        for version in K8S_VERSIONS:
            # strict: unknown fields are errors too (a typo is not silently dropped).
            kubernetes_validate.validate(obj, version, strict=True)


def test_every_namespaced_object_lands_in_the_overlay_namespace(objects: list[Obj]) -> None:
    (namespace,) = [o["metadata"]["name"] for o in objects if o["kind"] == "Namespace"]
    for obj in objects:
        if obj["kind"] != "Namespace":
            assert obj["metadata"].get("namespace") == namespace, obj["metadata"]["name"]


def test_images_are_tagged_and_never_latest(objects: list[Obj]) -> None:
    for obj in objects:
        if obj["kind"] in ("Deployment", "CronJob"):
            for c in containers(obj):
                image = c["image"]
                assert ":" in image.rsplit("/", 1)[-1] or "@sha256:" in image, image
                assert not image.endswith(":latest"), image


# -- decision-service Deployment --


def test_probes_use_grpc_health_on_the_grpc_port(objects: list[Obj]) -> None:
    service = container(find(objects, "Deployment", "decision-service"), "decision-service")
    (grpc_port,) = [p["containerPort"] for p in service["ports"] if p["name"] == "grpc"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        spec = service[probe]
        # Kubelet's gRPC probe is grpc.health.v1.Health/Check; no exec/http/tcp fallback.
        assert set(spec) & {"exec", "httpGet", "tcpSocket", "grpc"} == {"grpc"}, probe
        assert spec["grpc"]["port"] == grpc_port, probe
        assert spec["grpc"].get("service", "") == "", probe  # overall server health
    assert _config(objects)["ROUTEIQ_PORT"] == str(grpc_port)


def test_rolling_update_never_reduces_ready_pods(objects: list[Obj]) -> None:
    strategy = find(objects, "Deployment", "decision-service")["spec"]["strategy"]
    assert strategy["type"] == "RollingUpdate"
    assert strategy["rollingUpdate"]["maxUnavailable"] == 0
    assert strategy["rollingUpdate"]["maxSurge"] not in (0, "0%")


def test_grace_period_exceeds_the_service_drain(objects: list[Obj]) -> None:
    deployment = find(objects, "Deployment", "decision-service")
    spec = pod_spec(deployment)
    service = container(deployment, "decision-service")
    drain_s = float(
        _config(objects).get(
            "ROUTEIQ_SHUTDOWN_GRACE_S", ServiceSettings.model_fields["shutdown_grace_s"].default
        )
    )
    pre_stop_s = service.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
    # The kubelet's clock starts at preStop; SIGTERM follows it, then the service drains.
    assert spec["terminationGracePeriodSeconds"] >= pre_stop_s + drain_s + 5


def test_no_container_runs_as_root_and_all_are_locked_down(objects: list[Obj]) -> None:
    for obj in objects:
        if obj["kind"] not in ("Deployment", "CronJob"):
            continue
        pod = pod_spec(obj)["securityContext"]
        assert pod["runAsNonRoot"] is True, obj["metadata"]["name"]
        assert pod.get("runAsUser", 1) != 0
        assert pod["seccompProfile"]["type"] == "RuntimeDefault"
        for c in containers(obj):
            sc = c["securityContext"]
            where = f"{obj['metadata']['name']}/{c['name']}"
            assert sc.get("runAsNonRoot", True) is True and sc.get("runAsUser", 1) != 0, where
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["capabilities"]["drop"] == ["ALL"], where
            assert "add" not in sc["capabilities"], where
            assert not sc.get("privileged", False), where


def test_every_container_has_requests_and_a_memory_limit(objects: list[Obj]) -> None:
    for obj in objects:
        if obj["kind"] in ("Deployment", "CronJob"):
            for c in containers(obj):
                resources = c["resources"]
                assert {"cpu", "memory"} <= set(resources["requests"]), c["name"]
                assert "memory" in resources["limits"], c["name"]


def test_decision_service_is_sized_from_the_benchmark(objects: list[Obj]) -> None:
    resources = container(find(objects, "Deployment", "decision-service"), "decision-service")[
        "resources"
    ]
    assert resources["requests"] == {"cpu": "1", "memory": "512Mi"}
    # No CPU limit: CFS throttling would add to p99 (deploy/README.md, "Sizing").
    assert resources["limits"] == {"memory": "1Gi"}


def test_bundle_volume_is_shared_with_the_model_sync_sidecar(objects: list[Obj]) -> None:
    deployment = find(objects, "Deployment", "decision-service")
    spec = pod_spec(deployment)
    (models,) = [v for v in spec["volumes"] if v["name"] == "models"]
    assert "emptyDir" in models

    def mount(c: Obj) -> Obj:
        (m,) = [m for m in c["volumeMounts"] if m["name"] == "models"]
        return m

    service = container(deployment, "decision-service")
    sidecar = container(deployment, "model-sync")
    (init,) = spec["initContainers"]
    assert mount(service)["readOnly"] is True
    assert not mount(sidecar).get("readOnly") and not mount(init).get("readOnly")
    root = mount(service)["mountPath"]
    assert mount(sidecar)["mountPath"] == mount(init)["mountPath"] == root
    config = _config(objects)
    assert config["ROUTEIQ_BUNDLE_DIR"] == f"{root}/current"
    assert config["ROUTEIQ_ENCODER_DIR"] == f"{root}/encoder"
    # Both run the sync agent from the serving image (no torch): the init container once,
    # the sidecar for the pod's life. tests/deploy/test_shipped_commands.py parses the flags.
    for sync in (sidecar, init):
        assert sync["image"].split(":")[0] == service["image"].split(":")[0]
        assert sync["command"] == ["routeiq-sync-agent"]
        assert sync["args"][sync["args"].index("--models-dir") + 1] == root
    assert "--once" in init["args"] and "--once" not in sidecar["args"]


def test_pods_spread_across_zones(objects: list[Obj]) -> None:
    deployment = find(objects, "Deployment", "decision-service")
    constraints = pod_spec(deployment)["topologySpreadConstraints"]
    zone = [c for c in constraints if c["topologyKey"] == "topology.kubernetes.io/zone"]
    assert zone and zone[0]["maxSkew"] == 1
    assert _selects(zone[0]["labelSelector"]["matchLabels"], _service_pod_labels(objects))


def test_settings_come_from_the_configmap_and_secrets_by_reference(objects: list[Obj]) -> None:
    deployment = find(objects, "Deployment", "decision-service")
    service = container(deployment, "decision-service")
    config_name = find(objects, "ConfigMap", "decision-service-config")["metadata"]["name"]
    assert {"configMapRef": {"name": config_name}} in service["envFrom"]
    # Every ConfigMap key is a ServiceSettings field, and together they validate.
    config = _config(objects)
    for key in config:
        assert key.startswith("ROUTEIQ_") and key[8:].lower() in ServiceSettings.model_fields, key
    settings = ServiceSettings(**{k[8:].lower(): v for k, v in config.items()})
    assert settings.metrics_port is not None
    env = {e["name"]: e for e in service["env"]}
    token = env["ROUTEIQ_ADMIN_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert token["name"] == "routeiq-admin-token"
    (tls,) = [v for v in pod_spec(deployment)["volumes"] if v["name"] == "tls"]
    assert tls["secret"]["secretName"] == "routeiq-decision-tls"
    assert tls["secret"]["optional"] is True
    # Kubelet gRPC probes are plaintext: TLS must not be switched on under them.
    assert not {"ROUTEIQ_TLS_CERT_FILE", "ROUTEIQ_TLS_KEY_FILE"} & (set(env) | set(config))
    assert not [o for o in objects if o["kind"] == "Secret"], "secrets are never in git"


def test_service_account_has_no_api_token(objects: list[Obj]) -> None:
    account = find(objects, "ServiceAccount", "decision-service")
    assert account["automountServiceAccountToken"] is False
    spec = pod_spec(find(objects, "Deployment", "decision-service"))
    assert spec["serviceAccountName"] == "decision-service"


# -- Services, HPA, PDB, NetworkPolicy -----------------------------------------------------------


def test_headless_service_for_client_side_balancing(objects: list[Obj]) -> None:
    headless = find(objects, "Service", "decision-service-headless")["spec"]
    assert headless["clusterIP"] == "None"
    assert not headless.get("publishNotReadyAddresses", False)
    assert headless["selector"] == {"app.kubernetes.io/name": "decision-service"}
    assert _selects(headless["selector"], _service_pod_labels(objects))
    assert [p["targetPort"] for p in headless["ports"]] == ["grpc"]
    # ...and clients re-resolve because the server ages connections out.
    assert float(_config(objects)["ROUTEIQ_MAX_CONNECTION_AGE_S"]) <= 300
    cluster_ip = find(objects, "Service", "decision-service")["spec"]
    assert cluster_ip["type"] == "ClusterIP" and "clusterIP" not in cluster_ip
    assert _selects(cluster_ip["selector"], _service_pod_labels(objects))


def test_hpa_targets_the_deployment_on_cpu_and_a_per_pod_metric(objects: list[Obj]) -> None:
    hpa = find(objects, "HorizontalPodAutoscaler", "decision-service")
    assert hpa["apiVersion"] == "autoscaling/v2"
    spec = hpa["spec"]
    target = spec["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"]) == ("apps/v1", "Deployment")
    find(objects, "Deployment", target["name"])
    assert 1 <= spec["minReplicas"] <= spec["maxReplicas"]
    by_type = {m["type"]: m for m in spec["metrics"]}
    assert by_type["Resource"]["resource"]["name"] == "cpu"
    assert by_type["Resource"]["resource"]["target"]["type"] == "Utilization"
    pods_metric = by_type["Pods"]["pods"]["metric"]["name"]
    # The Prometheus adapter must publish that name.
    adapter = load_yaml(K8S / "prometheus-adapter" / "values.yaml")
    assert pods_metric in {rule["name"]["as"] for rule in adapter["rules"]["custom"]}
    behavior = spec["behavior"]
    assert behavior["scaleUp"]["stabilizationWindowSeconds"] == 0
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] >= 300
    assert behavior["scaleUp"]["policies"] and behavior["scaleDown"]["policies"]


def test_prod_keeps_one_replica_per_zone_at_least() -> None:
    objects = rendered("prod")
    assert find(objects, "HorizontalPodAutoscaler", "decision-service")["spec"]["minReplicas"] >= 3
    deployment = find(objects, "Deployment", "decision-service")
    (zone,) = [
        c
        for c in pod_spec(deployment)["topologySpreadConstraints"]
        if c["topologyKey"] == "topology.kubernetes.io/zone"
    ]
    assert zone["whenUnsatisfiable"] == "DoNotSchedule"


def test_pdb_covers_the_decision_pods(objects: list[Obj]) -> None:
    pdb = find(objects, "PodDisruptionBudget", "decision-service")["spec"]
    assert _selects(pdb["selector"]["matchLabels"], _service_pod_labels(objects))
    assert pdb["maxUnavailable"] == 1


def test_network_policy_admits_only_the_gateway_and_prometheus(objects: list[Obj]) -> None:
    policy = find(objects, "NetworkPolicy", "decision-service")["spec"]
    assert _selects(policy["podSelector"]["matchLabels"], _service_pod_labels(objects))
    assert "Ingress" in policy["policyTypes"]
    gateway_labels = find(objects, "Deployment", "litellm-proxy")["spec"]["template"]["metadata"][
        "labels"
    ]
    rules = policy["ingress"]
    assert len(rules) == 2
    grpc_rule, metrics_rule = rules
    (gateway_peer,) = grpc_rule["from"]
    assert set(gateway_peer) == {"podSelector"}  # same namespace, gateway pods only
    assert _selects(gateway_peer["podSelector"]["matchLabels"], gateway_labels)
    assert [p["port"] for p in grpc_rule["ports"]] == ["grpc"]
    (prometheus_peer,) = metrics_rule["from"]
    assert prometheus_peer["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "prometheus"}
    assert "namespaceSelector" in prometheus_peer
    # The service's metrics and its model-sync sidecar's, nothing else.
    assert [p["port"] for p in metrics_rule["ports"]] == ["metrics", "sync-metrics"]


# -- training CronJob --


def test_training_cronjob_is_weekly_and_runnable_on_demand(
    overlay: str, objects: list[Obj]
) -> None:
    cron = find(objects, "CronJob", "routeiq-trainer")
    _minute, _hour, day_of_month, month, day_of_week = cron["spec"]["schedule"].split()
    assert (day_of_month, month) == ("*", "*") and day_of_week.isdigit()
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    # `kubectl create job --from=cronjob/routeiq-trainer` copies jobTemplate: it must be whole.
    job = cron["spec"]["jobTemplate"]["spec"]
    assert job["template"]["spec"]["restartPolicy"] == "Never"
    (trainer,) = job["template"]["spec"]["containers"]
    assert trainer["image"].startswith("routeiq/trainer:")
    script = find(objects, "ConfigMap", "training-script")
    (volume,) = [v for v in job["template"]["spec"]["volumes"] if v["name"] == "scripts"]
    assert volume["configMap"]["name"] == script["metadata"]["name"]
    text = script["data"]["train-and-publish.sh"]
    assert "trainer train" in text and "trainer publish" in text
    assert cron["spec"].get("suspend", False) is (overlay == "dev")


# -- observability --


def test_service_monitor_scrapes_the_metrics_port(objects: list[Obj]) -> None:
    monitor = find(objects, "ServiceMonitor", "decision-service")["spec"]
    selected = [
        o
        for o in objects
        if o["kind"] == "Service"
        and _selects(monitor["selector"]["matchLabels"], o["metadata"].get("labels", {}))
    ]
    assert [s["metadata"]["name"] for s in selected] == ["decision-service"]
    ports = {p["name"] for p in selected[0]["spec"]["ports"]}
    assert {e["port"] for e in monitor["endpoints"]} <= ports
    container_ports = {
        p["name"]: p["containerPort"]
        for p in container(find(objects, "Deployment", "decision-service"), "decision-service")[
            "ports"
        ]
    }
    assert str(container_ports["metrics"]) == _config(objects)["ROUTEIQ_METRICS_PORT"]
    # The sync sidecar's metrics are scraped too, on the port its settings name.
    assert {e["port"] for e in monitor["endpoints"]} == {"metrics", "sync-metrics"}
    deployment = find(objects, "Deployment", "decision-service")
    sidecar_ports = {
        p["name"]: p["containerPort"] for p in container(deployment, "model-sync")["ports"]
    }
    sync_config = find(objects, "ConfigMap", "model-sync-config")["data"]
    assert str(sidecar_ports["sync-metrics"]) == sync_config["ROUTEIQ_SYNC_METRICS_PORT"]


def test_slo_alerts_exist(objects: list[Obj]) -> None:
    rules = {
        r["alert"]: r
        for g in find(objects, "PrometheusRule", "routeiq-slo")["spec"]["groups"]
        for r in g["rules"]
        if "alert" in r
    }
    p99 = rules["RouteIQDecisionLatencyP99High"]
    assert p99["for"] == "5m" and p99["expr"].rstrip().endswith("> 0.05")
    assert "routeiq_errors_total" in rules["RouteIQDecisionErrorRateHigh"]["expr"]
    assert "routeiq_gateway_fallbacks_total" in rules["RouteIQGatewayFallbackRateHigh"]["expr"]
    assert "routeiq_active_bundle_info" in rules["RouteIQNoValidBundle"]["expr"]
    assert "routeiq_bundles_refused_total" in rules["RouteIQBundleRefused"]["expr"]
    for rule in rules.values():
        assert rule["labels"]["severity"] in {"page", "ticket"}
        assert rule["annotations"]["summary"]
        assert rule["expr"].count("(") == rule["expr"].count(")")


# -- the gateway --


def test_gateway_balances_over_the_headless_service(objects: list[Obj]) -> None:
    proxy = find(objects, "Deployment", "litellm-proxy")
    (litellm,) = pod_spec(proxy)["containers"]
    env = {e["name"]: e for e in litellm["env"]}
    target = env["ROUTEIQ_GATEWAY_TARGET"]["value"]
    assert target.startswith("dns:///decision-service-headless.")
    assert target.endswith(":50051")
    names = [e["name"] for e in litellm["env"]]
    assert names.index("POD_NAMESPACE") < names.index("ROUTEIQ_GATEWAY_TARGET")  # $(VAR) order
    # Caller ids go out as HMACs under a key from a Secret (optional: without it, no ids).
    hash_key = env["ROUTEIQ_GATEWAY_ID_HASH_KEY"]["valueFrom"]["secretKeyRef"]
    assert hash_key == {"name": "litellm-secrets", "key": "id-hash-key", "optional": True}
    config = find(objects, "ConfigMap", "litellm-proxy-config")["data"]
    proxy_config = yaml.safe_load(config["config.yaml"])
    # The hook is the gateway image's installed gateway_client package, not a mounted file.
    assert proxy_config["litellm_settings"]["callbacks"] == [
        "gateway_client.proxy.handler",
        "otel",
    ]
    assert set(config) == {"config.yaml"}
    ids = [d["model_info"]["id"] for d in proxy_config["model_list"]]
    assert len(ids) == len(set(ids)) and all(ids)
