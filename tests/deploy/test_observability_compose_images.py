"""The dashboard, the compose stack and the Dockerfiles: parse and cross-reference (no Docker)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from .conftest import DEPLOY, REPO, load_yaml
from .metric_refs import EXTERNAL, METRIC, dashboard, expressions, referenced

COMPOSE_DIR = DEPLOY / "compose"
COMPOSE = COMPOSE_DIR / "docker-compose.yaml"
DOCKER = DEPLOY / "docker"
HOST_IN_URL = re.compile(r"(?:https?|dns|redis|grpc)://+([A-Za-z0-9_.-]+)(?::\d+)?")

# -- Grafana dashboard --


def test_dashboard_parses_and_covers_the_required_views() -> None:
    board = dashboard()
    assert board["uid"] == "routeiq-decision"
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    exprs_by_title = {
        p["title"]: " ".join(t["expr"] for t in p["targets"]) for p in board["panels"]
    }
    joined = "\n".join(exprs_by_title.values())
    assert "rate(routeiq_decision_latency_seconds_count" in joined  # request rate
    assert "histogram_quantile(0.5," in joined and "histogram_quantile(0.99," in joined
    assert "sum by (code) (rate(routeiq_errors_total" in joined
    assert "sum by (model) (rate(routeiq_selections_total" in joined
    assert "routeiq_gateway_breaker_state" in joined
    assert "count by (version, strategy) (routeiq_active_bundle_info" in joined
    for panel in board["panels"]:
        assert panel["targets"], panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}"


def test_every_queried_metric_is_a_routeiq_metric_or_known_external() -> None:
    for source, expr in expressions():
        assert expr.count("(") == expr.count(")"), source
        assert expr.count("{") == expr.count("}"), source
        bare = {m for m in re.findall(r"\b([a-z_][a-z0-9_]*)\{", expr) if not METRIC.fullmatch(m)}
        assert bare <= EXTERNAL, f"{source} queries {bare - EXTERNAL}"
    names = referenced()
    assert any(n.startswith("routeiq_gateway_") for n in names)
    assert any(not n.startswith("routeiq_gateway_") for n in names)


# -- compose --


def _compose() -> dict:
    return load_yaml(COMPOSE)


def test_compose_has_the_full_stack() -> None:
    services = set(_compose()["services"])
    assert {
        "decision-service",
        "model-sync",
        "redis",
        "s3",
        "jaeger",
        "otel-collector",
        "prometheus",
        "grafana",
        "litellm",
    } <= services


def test_compose_references_only_services_that_exist() -> None:
    compose = _compose()
    services = set(compose["services"])
    volumes = set(compose.get("volumes") or {})
    texts: list[tuple[str, str]] = []
    for name, service in compose["services"].items():
        for dep in service.get("depends_on") or {}:
            assert dep in services, f"{name} depends on unknown service {dep}"
        env = service.get("environment") or {}
        texts += [(name, str(v)) for v in (env.values() if isinstance(env, dict) else env)]
        command = service.get("command") or []
        texts += [(name, c) for c in ([command] if isinstance(command, str) else command)]
        for volume in service.get("volumes") or []:
            source = volume.split(":", 1)[0]
            if source.startswith((".", "/")):
                assert (COMPOSE_DIR / source).resolve().exists(), f"{name} mounts missing {source}"
            else:
                assert source in volumes, f"{name} uses undeclared volume {source}"
        build = service.get("build")
        if build:
            context = (COMPOSE_DIR / build["context"]).resolve()
            assert context == REPO
            assert (context / build["dockerfile"]).is_file()
    # Files the stack's services read: every host they name is a compose service.
    for path in (
        "prometheus.yml",
        "otel-collector.yaml",
        "grafana/provisioning/datasources/prometheus.yaml",
    ):
        texts.append((path, (COMPOSE_DIR / path).read_text()))
    prometheus = load_yaml(COMPOSE_DIR / "prometheus.yml")
    for job in prometheus["scrape_configs"]:
        for static in job["static_configs"]:
            for target in static["targets"]:
                texts.append((f"prometheus job {job['job_name']}", f"http://{target}"))
    otel = load_yaml(COMPOSE_DIR / "otel-collector.yaml")
    for exporter in otel["exporters"].values():
        if exporter and "endpoint" in exporter:
            texts.append(("otel exporter", f"grpc://{exporter['endpoint']}"))
    hosts_seen = set()
    for where, text in texts:
        for host in HOST_IN_URL.findall(text):
            if host in {"localhost", "127.0.0.1", "0.0.0.0"}:
                continue
            assert host in services, f"{where} names {host}, which is not a compose service"
            hosts_seen.add(host)
    assert {"decision-service", "otel-collector", "prometheus", "s3", "redis"} <= hosts_seen


def test_compose_gateway_uses_dns_round_robin_and_the_shared_hook() -> None:
    litellm = _compose()["services"]["litellm"]
    assert litellm["environment"]["ROUTEIQ_GATEWAY_TARGET"] == "dns:///decision-service:50051"
    # The hook is the image's installed gateway_client package: only the config is mounted.
    assert litellm["volumes"] == ["./litellm-config.yaml:/app/config/config.yaml:ro"]
    config = load_yaml(COMPOSE_DIR / "litellm-config.yaml")
    assert config["litellm_settings"]["callbacks"] == [
        "gateway_client.proxy.handler",
        "otel",
    ]
    assert all(d["model_info"]["id"] for d in config["model_list"])


def test_compose_grafana_loads_the_same_dashboard() -> None:
    grafana = _compose()["services"]["grafana"]
    assert any(v.startswith("../k8s/base/grafana:") for v in grafana["volumes"])


# -- Dockerfiles --


def _instructions(path: Path) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", path.read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines
        if line and not line.startswith("#")
    ]


def test_dockerfiles_are_multistage_nonroot_and_cache_dependencies() -> None:
    dockerfiles = sorted(DOCKER.glob("*.Dockerfile"))
    assert {p.name for p in dockerfiles} >= {"decision-service.Dockerfile", "trainer.Dockerfile"}
    for path in dockerfiles:
        steps = _instructions(path)
        froms = [i for i, (op, _) in enumerate(steps) if op == "FROM"]
        assert len(froms) >= 2, f"{path.name} is not multi-stage"
        final = steps[froms[-1] :]
        users = [arg for op, arg in final if op == "USER"]
        assert users and users[-1] not in {"root", "0"}, path.name
        assert any(op == "COPY" and "--from=" in arg for op, arg in final), path.name
        build = steps[: froms[-1]]
        install = next(i for i, (op, a) in enumerate(build) if op == "RUN" and "pip install" in a)
        source = next(
            i for i, (op, a) in enumerate(build) if op == "COPY" and "decision_service" in a
        )
        assert install < source, f"{path.name}: dependencies must be installed before the source"
        assert any(op == "HEALTHCHECK" for op, _ in final), path.name
        for op, arg in steps:
            if op in {"COPY", "ADD"} and "--from=" not in arg:
                for src in arg.split()[:-1]:
                    if not src.startswith("--"):
                        assert (REPO / src).exists(), f"{path.name} copies missing {src}"


def test_serving_image_has_no_torch_and_probes_grpc_health() -> None:
    steps = _instructions(DOCKER / "decision-service.Dockerfile")
    installs = " ".join(a for op, a in steps if op == "RUN" and "pip install" in a)
    assert "'.[service]'" in installs
    assert "trainer]" not in installs and "torch" not in installs
    (health,) = [a for op, a in steps if op == "HEALTHCHECK"]
    assert '"decision_service.probe"' in health
    env = " ".join(a for op, a in steps if op == "ENV")
    assert "ROUTEIQ_BUNDLE_DIR=/models/current" in env
    assert "ROUTEIQ_ENCODER_DIR=/models/encoder" in env


def test_images_run_as_the_uid_the_pods_expect() -> None:
    k8s_uid = yaml.safe_load((DEPLOY / "k8s/base/deployment.yaml").read_text())["spec"]["template"][
        "spec"
    ]["securityContext"]["runAsUser"]
    for path in DOCKER.glob("*.Dockerfile"):
        users = [a for op, a in _instructions(path) if op == "USER"]
        assert users[-1] == str(k8s_uid), path.name
