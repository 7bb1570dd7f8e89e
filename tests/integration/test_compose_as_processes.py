"""The compose stack's own service commands, run as local processes, route a chat completion.

Every command and environment comes from ``deploy/compose/docker-compose.yaml`` (and, where a
service sets no entrypoint, from its image's Dockerfile ENTRYPOINT/CMD/ENV/HEALTHCHECK). Only
these are changed, and only by the mapping below:

============================  ==============================================================
compose                       here
============================  ==============================================================
host ``redis``, ``s3``,       ``127.0.0.1`` (``--host 0.0.0.0`` binds become ``127.0.0.1``;
``decision-service``,         the service gets ``ROUTEIQ_HOST=127.0.0.1``, the proxy
``otel-collector``            ``--host 127.0.0.1``)
port 6379 / 5000              the test's ``redis-server`` / moto server ports (free ports)
port 50051 / 9464             the service's gRPC / metrics ports (``ROUTEIQ_PORT``, free)
port 9466 / 9465 / 4000       sync agent metrics / gateway metrics / proxy port (free)
``otel-collector:4317``       an OTLP receiver in the test (the collector binary is not here)
``/models``                   ``<tmp>/models`` (the shared ``models`` volume)
``/tmp/artifacts``,           ``<tmp>/artifacts``, ``<tmp>/probe``
``/tmp/probe``
``/app/config/config.yaml``   ``deploy/compose/litellm-config.yaml`` (the mount's source)
programs                      ``.venv/bin/<name>`` (``python`` included), ``litellm`` from
                              ``.venv-proxy``; the shell is ``/bin/sh``
============================  ==============================================================

The redis service has no command (the image runs ``redis-server``): ``tests/local_redis.py``
starts one; its healthcheck, ``redis-cli ping``, is run when redis-cli is installed.

The registry seed's one shell line is ``create bucket && (pull || (build && publish))``. Its
simple commands run one by one, except ``build`` (minutes of encoder export and training):
``<tmp>/artifacts`` is laid out as ``build`` leaves it (``knn`` and ``encoder``) from the
session's ``trained_artifacts``; the shipped ``publish --bundle ... --promote stable`` line runs
as is. Then the whole shell line runs unchanged once more and must succeed without publishing:
``pull`` now finds ``stable``. The compose config's deployments answer with ``mock_response``,
so the proxy calls no provider and needs no stand-in upstream.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway_client import DecisionClient
from gateway_client.prices import price_function
from gateway_client.request import candidate_for
from routeiq.decision.v1 import decision_pb2
from tests.conftest import TrainedArtifacts
from tests.deploy.test_shipped_commands import _dockerfile, _shell
from tests.local_redis import RedisServer

from .otlp_receiver import OtlpReceiver
from .servers import REPO, free_port, metric_value, metrics_text

pytestmark = pytest.mark.integration

COMPOSE_DIR = REPO / "deploy" / "compose"
COMPOSE = yaml.safe_load((COMPOSE_DIR / "docker-compose.yaml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
VENV_BIN = REPO / ".venv" / "bin"
PROXY_BIN = REPO / ".venv-proxy" / "bin"
DOCKERFILES = {
    "routeiq/decision-service": REPO / "deploy/docker/decision-service.Dockerfile",
    "routeiq/trainer": REPO / "deploy/docker/trainer.Dockerfile",
    "routeiq/litellm-gateway": REPO / "deploy/docker/litellm-gateway.Dockerfile",
}
PROMPTS = [
    "Prove that there are infinitely many primes.",
    "hey! how's it going today?",
    "Write a Python function that checks whether a string is a palindrome.",
]


class Mapping:
    """Compose's hosts, ports and paths -> loopback, free ports, temp dirs (module docstring)."""

    def __init__(self, tmp: Path, redis_port: int, otlp: str) -> None:
        self.tmp = tmp
        self.ports = {
            "6379": redis_port,
            "5000": free_port(),
            "50051": free_port(),
            "9464": free_port(),
            "9465": free_port(),
            "9466": free_port(),
            "4000": free_port(),
        }
        self.hosts = {"redis": "6379", "s3": "5000", "decision-service": "50051"}
        self.otlp = otlp
        self.paths = {
            "/app/config/config.yaml": str(COMPOSE_DIR / "litellm-config.yaml"),
            "/tmp/artifacts": str(tmp / "artifacts"),
            "/tmp/probe": str(tmp / "probe"),
            "/models": str(tmp / "models"),
        }

    def text(self, value: str) -> str:
        value = value.replace("http://otel-collector:4317", f"http://{self.otlp}")
        for host, port in self.hosts.items():
            value = re.sub(rf"\b{re.escape(host)}:{port}\b", f"127.0.0.1:{self.ports[port]}", value)
        for path, local in self.paths.items():
            value = re.sub(rf"(?<![\w/]){re.escape(path)}(?=/|\b|$)", local, value)
        return value

    def port(self, value: str) -> str:
        return str(self.ports[value]) if value in self.ports else value

    def argv(self, argv: list[str]) -> list[str]:
        out: list[str] = []
        for i, arg in enumerate(argv):
            if arg == "0.0.0.0":
                out.append("127.0.0.1")
            elif i > 0 and argv[i - 1] == "--port":
                out.append(self.port(arg))
            else:
                out.append(self.text(arg))
        program = out[0]
        if (PROXY_BIN / program).exists() and program == "litellm":
            out[0] = str(PROXY_BIN / program)
        elif (VENV_BIN / program).exists():
            out[0] = str(VENV_BIN / program)
        return out

    def env(self, env: dict[str, str]) -> dict[str, str]:
        mapped = {}
        for key, value in env.items():
            value = str(value)
            if value == "0.0.0.0":
                mapped[key] = "127.0.0.1"
            else:
                mapped[key] = self.port(value) if key.endswith("_PORT") else self.text(value)
        return mapped


def _image_info(service: dict[str, Any]) -> dict[str, Any]:
    image = service["image"].rsplit(":", 1)[0]
    return _dockerfile(DOCKERFILES[image]) if image in DOCKERFILES else {}


def service_command(name: str) -> tuple[list[str], dict[str, str]]:
    """(argv, env) of a compose service as its container would exec it, before mapping."""
    service = SERVICES[name]
    info = _image_info(service)
    entrypoint = service.get("entrypoint")
    command = service.get("command")
    if entrypoint is None:
        entrypoint = info["entrypoint"]
        command = info["cmd"] if command is None else command
    argv = [str(a).replace("$$", "$") for a in [*entrypoint, *(command or [])]]
    env = {**info.get("env", {}), **{k: str(v) for k, v in service.get("environment", {}).items()}}
    env.pop("PATH", None)
    return argv, env


class Stack:
    def __init__(self, tmp: Path, mapping: Mapping) -> None:
        self.tmp = tmp
        self.mapping = mapping
        self.processes: list[tuple[str, subprocess.Popen[bytes]]] = []

    def environ(self, env: dict[str, str]) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("ROUTEIQ_", "OTEL_"))}
        path = f"{VENV_BIN}:{base.get('PATH', '')}"
        return {**base, "HOME": str(self.tmp), "PATH": path, **self.mapping.env(env)}

    def log(self, name: str) -> Path:
        return self.tmp / f"{name}.log"

    def run(self, name: str, argv: list[str], env: dict[str, str], timeout: float = 120) -> str:
        result = subprocess.run(
            self.mapping.argv(argv),
            env=self.environ(env),
            cwd=self.tmp,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert result.returncode == 0, f"{name} {argv} failed:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        with self.log(name).open("ab") as log:
            process = subprocess.Popen(
                self.mapping.argv(argv),
                env=self.environ(env),
                cwd=self.tmp,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.processes.append((name, process))

    def alive(self, name: str) -> None:
        (process,) = [p for n, p in self.processes if n == name]
        assert process.poll() is None, f"{name} exited:\n{self.log(name).read_text()[-4000:]}"

    def stop(self) -> None:
        for _name, process in reversed(self.processes):
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait(what: str, ready: Any, alive: Any, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        alive()
        try:
            if ready():
                return
        except OSError:
            pass
        assert time.monotonic() < deadline, f"{what} not ready in {timeout_s} s"
        time.sleep(0.3)


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as reply:
        return bool(reply.status == 200)


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, trained_artifacts: TrainedArtifacts
) -> Iterator[tuple[Stack, Mapping, OtlpReceiver]]:
    if not (PROXY_BIN / "litellm").exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{PROXY_BIN / 'litellm'} is missing; CI must have it")
        pytest.skip("run `make proxy-venv`: the proxy runs from .venv-proxy")
    tmp = tmp_path_factory.mktemp("compose")
    receiver = OtlpReceiver()
    redis = RedisServer(tmp / "redis").start()
    mapping = Mapping(tmp, redis.port, receiver.address)
    stack = Stack(tmp, mapping)
    try:
        yield stack, mapping, receiver
    finally:
        stack.stop()
        redis.stop()
        receiver.close()


def test_the_compose_stack_routes_a_chat_completion_through_the_service(
    stack: tuple[Stack, Mapping, OtlpReceiver], trained_artifacts: TrainedArtifacts
) -> None:
    procs, mapping, receiver = stack
    tmp = mapping.tmp

    # redis: its healthcheck, when the client is installed.
    health = SERVICES["redis"]["healthcheck"]["test"]
    if shutil.which(health[1]):
        ping = [health[1], "-p", str(mapping.ports["6379"]), *health[2:]]
        assert subprocess.run(ping, capture_output=True, text=True).stdout.strip() == "PONG"

    # s3: moto's server with the compose entrypoint's flags.
    argv, env = service_command("s3")
    procs.start("s3", argv, env)
    s3_url = f"http://127.0.0.1:{mapping.ports['5000']}"
    _wait("s3", lambda: _http_ok(f"{s3_url}/moto-api/"), lambda: procs.alive("s3"))

    # registry-seed: its shell line's simple commands, `build` replaced by the fixture.
    argv, seed_env = service_command("registry-seed")
    assert argv[:2] == ["/bin/sh", "-c"]
    steps = _shell(argv[2], dict(seed_env), "registry-seed")
    programs = [(s.program, s.args[:1]) for s in steps]
    assert programs == [
        ("python", ["-c"]),
        ("routeiq-trainer", ["pull"]),
        ("routeiq-trainer", ["build"]),
        ("routeiq-trainer", ["publish"]),
    ]
    bucket, pull, build, publish = steps
    procs.run("seed: bucket", [bucket.program, *bucket.args], seed_env)
    result = subprocess.run(
        mapping.argv([pull.program, *pull.args]),
        env=procs.environ(seed_env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0, "an empty registry has no stable channel to pull"
    artifacts = Path(mapping.text(build.args[build.args.index("--out") + 1]))
    artifacts.mkdir(parents=True)
    (artifacts / "knn").symlink_to(trained_artifacts.bundle_dirs["knn"].resolve())
    (artifacts / "encoder").symlink_to((trained_artifacts.root / "encoder").resolve())
    out = procs.run("seed: publish", [publish.program, *publish.args], seed_env)
    assert "stable -> " in out, out
    version = out.split("stable -> ")[1].split()[0]
    # The whole line, unchanged, once more: the guard finds stable and publishes nothing.
    out = procs.run("seed: again", argv, seed_env)
    assert "published" not in out and f"-> {version}" in out, out

    # model-sync-init: one verified pass into the models volume.
    argv, env = service_command("model-sync-init")
    procs.run("model-sync-init", argv, env)
    models = tmp / "models"
    assert (models / "current").resolve().name == version
    assert (models / "encoder" / "encoder.onnx").is_file()

    # model-sync: the long-running agent, Redis notifications on.
    argv, env = service_command("model-sync")
    procs.start("model-sync", argv, env)
    sync_metrics = mapping.ports["9466"]
    _wait(
        "model-sync /metrics",
        lambda: _http_ok(f"http://127.0.0.1:{sync_metrics}/metrics"),
        lambda: procs.alive("model-sync"),
    )

    # decision-service: the image's entrypoint and ENV with the compose environment.
    argv, env = service_command("decision-service")
    env = {**env, "ROUTEIQ_HOST": "0.0.0.0", "ROUTEIQ_PORT": "50051"}
    procs.start("decision-service", argv, env)
    probe = _dockerfile(DOCKERFILES["routeiq/decision-service"])["healthcheck"]
    probe = [a.replace("127.0.0.1:50051", "decision-service:50051") for a in probe]

    def serving() -> bool:
        check = subprocess.run(
            mapping.argv(probe), env=procs.environ({}), capture_output=True, timeout=10
        )
        return check.returncode == 0

    _wait("decision-service", serving, lambda: procs.alive("decision-service"))
    service_address = f"127.0.0.1:{mapping.ports['50051']}"

    # litellm: the gateway image's entrypoint + CMD with the compose environment and config.
    argv, env = service_command("litellm")
    argv = [*argv, "--host", "0.0.0.0"]
    procs.start("litellm", argv, env)
    proxy = f"http://127.0.0.1:{mapping.ports['4000']}"
    _wait(
        "litellm",
        lambda: _http_ok(f"{proxy}/health/liveliness"),
        lambda: procs.alive("litellm"),
        timeout_s=240,
    )

    # What the service ranks first for each prompt, asked directly with the config's groups.
    config = yaml.safe_load((COMPOSE_DIR / "litellm-config.yaml").read_text())
    # Priced as the gateway prices them (LiteLLM's catalogue; the config sets no prices).
    priced = [candidate_for(d, price_function(True)) for d in config["model_list"]]
    candidates = [c for c in priced if c is not None]
    assert len(candidates) == len(config["model_list"]) >= 2
    service_metrics = mapping.ports["9464"]
    before = metric_value(metrics_text(service_metrics), "routeiq_decision_latency_seconds_count")
    key = SERVICES["litellm"]["environment"]["LITELLM_MASTER_KEY"]
    served = []
    with DecisionClient(service_address) as client:
        for prompt in PROMPTS:
            route = decision_pb2.RouteRequest(
                prompt=prompt, candidates=candidates, requested_model="auto"
            )
            expected = client.route(route, timeout_s=10.0).ranked[0].id
            request = urllib.request.Request(
                f"{proxy}/v1/chat/completions",
                data=json.dumps(
                    {"model": "auto", "messages": [{"role": "user", "content": prompt}]}
                ).encode(),
                headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=60) as reply:
                body = json.loads(reply.read())
                deployment = reply.headers["x-litellm-model-id"]
            served.append(deployment)
            assert body["choices"][0]["message"]["content"] == f"mock answer from {deployment}"
            assert deployment == expected, (
                f"{prompt!r}: proxy served {deployment}, service {expected}"
            )

    gateway = metrics_text(mapping.ports["9465"])
    assert metric_value(gateway, "routeiq_gateway_picks_total", reason="routed") == len(PROMPTS)
    after = metric_value(metrics_text(service_metrics), "routeiq_decision_latency_seconds_count")
    assert after - before >= 2 * len(PROMPTS)  # ours and the gateway's
    assert receiver.wait_for("routeiq.route", timeout_s=30)  # the gateway's spans reached OTLP
    assert (
        metric_value(metrics_text(service_metrics), "routeiq_active_bundle_info", version=version)
        == 1
    )
