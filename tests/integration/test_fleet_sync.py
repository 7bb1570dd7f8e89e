"""A fleet rollout: 3 decision services with their sync agents plus 20 more agents, a real
redis-server and an S3 endpoint (moto) on loopback.

* Promote to ``stable`` and a channel rollback reach every replica within 5 s (an agent
  when its ``current`` pointer names the version, a service when its Route answers carry
  it); p50 and max are printed.
* Downloads in flight at the store never exceed the fleet's slot count (measured at the S3
  server, not by the agents).
* Degraded mode: with S3 down then Redis down the agents keep the last good bundle, converge
  by polling when S3 returns, refuse a tampered object without ever making it visible, and
  converge by notification again when Redis returns.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import boto3
import grpc
import pytest
import redis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from decision_service.bundle_registry import Registry, S3Store
from decision_service.bundle_registry.notify import RedisKeys, announce
from decision_service.manifest import BUNDLE_MANIFEST
from decision_service.signing import sign_bundle
from routeiq.decision.v1 import decision_pb2 as pb
from routeiq.decision.v1 import decision_pb2_grpc as pb_grpc
from tests.local_redis import RedisServer
from tools.local_service import free_loopback_port
from trainer.cli import main as trainer_cli

from .fleet import Agents, CountingS3, wait_until
from .otlp_receiver import OtlpReceiver
from .servers import DecisionServiceProcess, copy_bundle, metric_value, metrics_text

pytestmark = pytest.mark.integration

BUCKET = "routeiq-fleet"
NAME = "router"
SLOTS = 3
GROUPS, PER_GROUP = 2, 10  # the 20 agents without a service
BOUND_S = 5.0  # the propagation bound
TOKEN = "fleet-admin-token"
ROUTE_METHOD = "/routeiq.decision.v1.DecisionService/Route"  # the service's span name
T = TypeVar("T")
AWS = {"AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t", "AWS_DEFAULT_REGION": "us-east-1"}


@dataclass
class Fleet:
    root: Path
    s3: CountingS3
    redis: RedisServer
    registry: Registry
    versions: dict[str, str]  # label -> published version
    services: list[DecisionServiceProcess]
    agents: list[Agents]  # the services' agents first, then the groups
    agent_metrics: list[int]  # /metrics ports of the services' agents
    agent_dirs: list[Path]  # every agent's models dir (23)
    otlp: OtlpReceiver  # where the services export their spans (restartable on its port)
    stubs: list[pb_grpc.DecisionServiceStub] = field(default_factory=list)
    bootstrap: dict[str, object] = field(default_factory=dict)

    def cli(self, *args: str) -> int:
        common = ["--registry", f"s3://{BUCKET}/reg", "--name", NAME]
        return trainer_cli([args[0], *common, "--s3-endpoint", self.s3.endpoint, *args[1:]])

    def pointers(self) -> dict[str, str | None]:
        found = {}
        for directory in self.agent_dirs:
            link = directory / "current"
            found[str(directory)] = os.readlink(link) if link.is_symlink() else None
        return found

    def served(self) -> list[str]:
        request = pb.RouteRequest(
            prompt="Summarise the fleet test.",
            candidates=[pb.Candidate(id="a", model_name="gpt-4o-mini")],
            requested_model="auto",
        )
        return [stub.Route(request, timeout=5).bundle_version for stub in self.stubs]

    def everywhere(self, version: str) -> bool:
        return set(self.pointers().values()) == {version} and set(self.served()) == {version}

    def propagate(self, version: str, action: Callable[[], None]) -> dict[str, list[float]]:
        """Run ``action`` and time when each agent and each service first shows ``version``."""
        start = time.monotonic()
        action()
        agents: dict[str, float] = {}
        services: dict[int, float] = {}
        while len(agents) < len(self.agent_dirs) or len(services) < len(self.stubs):
            if time.monotonic() - start > 60:
                raise AssertionError(f"{version} did not reach every replica in 60 s")
            now = time.monotonic() - start
            for directory, current in self.pointers().items():
                if current == version:
                    agents.setdefault(directory, now)
            for index, served in enumerate(self.served()):
                if served == version:
                    services.setdefault(index, now)
            time.sleep(0.01)
        return {"agents": sorted(agents.values()), "services": sorted(services.values())}

    def restart_otlp(self) -> None:
        port = int(self.otlp.address.rsplit(":", 1)[1])
        self.otlp = OtlpReceiver(port)

    def agent_metric(self, index: int, name: str, **labels: str) -> float:
        return metric_value(metrics_text(self.agent_metrics[index]), name, **labels)


def _signed_copy(source: Path, built: Path, key: Ed25519PrivateKey, version: str = "") -> str:
    """Copy a bundle into ``built`` (beside ``built/encoder``), renamed to ``version``, signed."""
    raw = json.loads((source / BUNDLE_MANIFEST).read_text())
    version = version or raw["bundle_version"]
    bundle = copy_bundle(source, built / version)
    (bundle / "manifest.sig").unlink(missing_ok=True)
    raw["bundle_version"] = version
    (bundle / BUNDLE_MANIFEST).write_text(json.dumps(raw, indent=2))
    sign_bundle(bundle, key)
    return version


def _figures(label: str, times: dict[str, list[float]]) -> str:
    every = times["agents"] + times["services"]
    parts = [
        f"{what} p50 {statistics.median(t):.2f}s max {max(t):.2f}s" for what, t in times.items()
    ]
    return f"{label}: {len(every)} replicas, {'; '.join(parts)}; overall max {max(every):.2f}s"


@pytest.fixture(scope="module")
def fleet(trained_artifacts, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    root = tmp_path_factory.mktemp("fleet")
    for name, value in AWS.items():
        os.environ.setdefault(name, value)
    s3 = CountingS3(latency_s=0.02).start()
    otlp = OtlpReceiver()
    redis_server = RedisServer(root / "redis").start()
    boto3.client("s3", endpoint_url=s3.endpoint).create_bucket(Bucket=BUCKET)
    key = Ed25519PrivateKey.generate()
    public_key = root / "bundles.pub.pem"
    public_key.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    built = root / "built"
    built.mkdir()
    (built / "encoder").symlink_to(trained_artifacts.encoder_dir, target_is_directory=True)
    knn, mlp = (trained_artifacts.bundle_dirs[k].resolve() for k in ("knn", "mlp"))
    versions = {"a": _signed_copy(knn, built, key), "b": _signed_copy(mlp, built, key)}
    for label in ("c", "d", "e"):
        versions[label] = _signed_copy(knn, built, key, f"{versions['a']}-{label}")
    registry = Registry(S3Store(BUCKET, "reg", endpoint_url=s3.endpoint), NAME)
    for version in versions.values():
        registry.publish(built / version)
    registry.promote(versions["a"], "stable", force=True, reason="fleet start")

    env = {
        **AWS,
        "ROUTEIQ_REGISTRY": f"s3://{BUCKET}/reg",
        "ROUTEIQ_REGISTRY_NAME": NAME,
        "ROUTEIQ_S3_ENDPOINT": s3.endpoint,
        "ROUTEIQ_REDIS_URL": redis_server.url,
        "ROUTEIQ_SYNC_SLOTS": str(SLOTS),
        "ROUTEIQ_SYNC_FALLBACK_INTERVAL_S": "1.0",
        "ROUTEIQ_SYNC_RETRY_MAX_S": "4.0",
        "ROUTEIQ_BUNDLE_PUBLIC_KEY_FILE": str(public_key),
        "ROUTEIQ_REQUIRE_SIGNED_BUNDLES": "true",
        "ROUTEIQ_ADMIN_TOKEN": TOKEN,
    }
    models = root / "models"
    # The services trace to an OTLP endpoint the degraded test takes away and brings back.
    traced = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{otlp.address}",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }
    services = [
        DecisionServiceProcess(
            models / f"svc-{i}" / "current", models / f"svc-{i}" / "encoder", **env, **traced
        )
        for i in range(3)
    ]
    agents: list[Agents] = []
    agent_metrics = []
    for i, service in enumerate(services):
        port = free_loopback_port()
        agent_metrics.append(port)
        extra = {
            "ROUTEIQ_MODELS_DIR": str(models / f"svc-{i}"),
            "ROUTEIQ_SYNC_METRICS_PORT": str(port),
        }
        if i == 0:  # one replica is told through AdminService.Reload, two by their watcher
            extra["ROUTEIQ_SYNC_RELOAD_ADDRESS"] = service.address
        log = root / f"agent-svc-{i}.log"
        agents.append(Agents(log, {**env, **extra}, script=i == 1))
    for g in range(GROUPS):
        group_env = {**env, "ROUTEIQ_MODELS_DIR": str(models / f"group-{g}")}
        agents.append(Agents(root / f"agents-group-{g}.log", group_env, count=PER_GROUP))
    agent_dirs = [models / f"svc-{i}" for i in range(3)] + [
        models / f"group-{g}" / f"agent-{i}" for g in range(GROUPS) for i in range(PER_GROUP)
    ]
    fleet = Fleet(
        root,
        s3,
        redis_server,
        registry,
        versions,
        services,
        agents,
        agent_metrics,
        agent_dirs,
        otlp,
    )
    channels: list[grpc.Channel] = []
    try:
        s3.reset_counts()
        started = time.monotonic()
        for agent in agents:
            agent.start()
        # A service boots once its own agent delivered (as after an init container); the
        # other agents keep bootstrapping meanwhile.
        wait_until(
            lambda: all((models / f"svc-{i}" / "current").exists() for i in range(3)),
            180,
            "the services' agents' first sync",
            poll_s=0.1,
        )
        _each(services, DecisionServiceProcess.start)
        wait_until(
            lambda: set(fleet.pointers().values()) == {versions["a"]},
            180,
            "the first sync of every agent (bundle and encoder)",
            poll_s=0.1,
        )
        fleet.bootstrap = {
            "seconds": time.monotonic() - started,
            "most_in_flight": s3.most_in_flight,
            "busiest": s3.busiest,
            "gets": dict(s3.gets),
        }
        channels = [grpc.insecure_channel(s.address) for s in services]
        fleet.stubs = [pb_grpc.DecisionServiceStub(c) for c in channels]
        yield fleet
    finally:
        for channel in channels:
            channel.close()
        _each([*services, *agents], lambda process: process.stop())
        redis_server.stop()
        s3.stop()
        fleet.otlp.close()


def _each(items: Sequence[T], call: Callable[[T], object]) -> None:
    """``call`` on every item at once (starting or draining processes one by one is slow)."""
    with ThreadPoolExecutor(max_workers=max(1, len(items))) as pool:
        for future in [pool.submit(call, item) for item in items]:
            future.result()


def test_promote_and_rollback_reach_every_replica_within_the_bound(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = fleet.versions["a"], fleet.versions["b"]
    replicas = len(fleet.agent_dirs)
    # Bootstrap: every agent fetched the bundle and the 90 MB encoder once, under the slots.
    boot = fleet.bootstrap
    per_bundle = {v: len(fleet.registry.manifest(v).files) + 2 for v in (a, b)}  # + manifest, sig
    assert boot["gets"] == {"bundle": replicas * per_bundle[a], "encoder": replicas * 3}
    assert boot["most_in_flight"] <= SLOTS, boot["busiest"]
    wait_until(lambda: set(fleet.served()) == {a}, 60, "every service serving the first version")

    monkeypatch.setenv("ROUTEIQ_REDIS_URL", fleet.redis.url)
    fleet.s3.reset_counts()
    promote = fleet.propagate(
        b, lambda: fleet.cli("promote", "--version", b, "--force", "--reason", "fleet test")
    )
    promote_gets, promote_most = dict(fleet.s3.gets), fleet.s3.most_in_flight
    printed = capsys.readouterr().out
    assert f"notified {replicas} sync agent(s) through Redis" in printed

    fleet.s3.reset_counts()
    rollback = fleet.propagate(a, lambda: fleet.cli("rollback", "--reason", "fleet test"))
    rollback_gets = dict(fleet.s3.gets)

    with capsys.disabled():
        print()
        print(
            f"bootstrap: {replicas} agents fetched bundle + encoder (3 services starting "
            f"meanwhile) in "
            f"{boot['seconds']:.1f}s, at most {boot['most_in_flight']} artifact GETs in "
            f"flight (bound {SLOTS})"
        )
        print(_figures("promote", promote))
        print(f"promote: {promote_gets} artifact GETs, at most {promote_most} in flight")
        print(_figures("rollback", rollback))
        print(f"rollback: {rollback_gets or 'no'} artifact GETs (versions kept on disk)")
    for times in (promote, rollback):
        assert len(times["agents"]) == replicas and len(times["services"]) == 3
        assert max(times["agents"] + times["services"]) < BOUND_S
    # Each agent downloaded the new bundle (manifest, signature, 4 files) and no encoder...
    assert promote_gets == {"bundle": replicas * per_bundle[b]}
    # ...with at most SLOTS downloads at the store at once, and contention up to it.
    assert 2 <= promote_most <= SLOTS
    assert rollback_gets == {}
    assert fleet.everywhere(a)
    # The first service heard of each swap through AdminService.Reload, the others by watching.
    reloads = re.findall(r"reloaded: active (\S+)", fleet.agents[0].log())
    assert reloads[-2:] == [b, a]
    for i in range(len(fleet.services)):  # bootstrap and promote took a slot; rollback none
        assert fleet.agent_metric(i, "routeiq_sync_leases_total", result="acquired") == 2
        assert fleet.agent_metric(i, "routeiq_sync_lock_wait_seconds_count") == 2
        assert fleet.agent_metric(i, "routeiq_sync_active_version_info", version=a) == 1


_REFUSAL = re.compile(r"refused a download; keeping \S+: (\S+)/\.[^/\s]+\.tmp-\S+: router\.onnx")


class RouteStream:
    """A steady stream of Routes to every service while dependencies come and go: each
    answer's bundle version, and every failure with its status code."""

    def __init__(self, stubs: Sequence[pb_grpc.DecisionServiceStub]) -> None:
        self._stubs = stubs
        self._stop = threading.Event()
        self.served: list[str] = []
        self.failed: list[str] = []
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set() and n < 100_000:
            request = pb.RouteRequest(
                prompt=f"Steady request {n}: summarise the outage drill.",
                candidates=[
                    pb.Candidate(id="a", model_name="gpt-4o-mini"),
                    pb.Candidate(id="b", model_name="gpt-4o"),
                ],
                requested_model="auto",
            )
            try:
                self.served.append(
                    self._stubs[n % len(self._stubs)].Route(request, timeout=10).bundle_version
                )
            except grpc.RpcError as exc:
                self.failed.append(exc.code().name)
            n += 1
            time.sleep(0.005)

    def __enter__(self) -> RouteStream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)


def _refusers(fleet: Fleet) -> set[str]:
    """Models dirs whose agent logged refusing a download for router.onnx's sha256."""
    return {m for agents in fleet.agents for m in _REFUSAL.findall(agents.log())}


def test_degraded_mode_keeps_the_last_good_bundle_and_recovers(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ROUTEIQ_REDIS_URL", fleet.redis.url)
    start = fleet.registry.channel_version("stable")
    assert start is not None
    wait_until(lambda: fleet.everywhere(start), 60, f"every replica on {start}")
    c, d, e = (fleet.versions[k] for k in ("c", "d", "e"))
    keys = RedisKeys(NAME)
    services_agents = range(len(fleet.services))

    def degraded(dependency: str) -> bool:
        return all(
            fleet.agent_metric(i, "routeiq_sync_degraded", dependency=dependency) == 1
            for i in services_agents
        )

    with RouteStream(fleet.stubs) as stream:
        # S3 down: a notification sends every agent to the store, which does not answer.
        fleet.s3.stop()
        announce(fleet.redis.url, keys, "stable", {"version": start, "action": "probe"})
        wait_until(lambda: degraded("store"), 30, "the agents to find the store down")
        assert fleet.everywhere(start)

        # Redis down too: no notifications, no slots; the agents poll and keep their bundle.
        fleet.redis.stop()
        wait_until(lambda: degraded("redis"), 30, "the agents to lose Redis")
        assert fleet.everywhere(start)
        for i in services_agents:
            assert fleet.agent_metric(i, "routeiq_sync_attempts_total", result="store_unavailable")

        # S3 back, Redis still down: a promotion reaches everyone by polling.
        fleet.s3.start()
        polled_from = time.monotonic()
        assert fleet.cli("promote", "--version", c, "--force", "--reason", "degraded test") == 0
        assert "could not notify sync agents through Redis" in capsys.readouterr().out
        wait_until(lambda: fleet.everywhere(c), 60, f"every replica on {c} by polling")
        polled_s = time.monotonic() - polled_from

        # A tampered object: every agent downloads it, refuses it, and keeps serving c.
        s3 = boto3.client("s3", endpoint_url=fleet.s3.endpoint)
        tampered_key = f"reg/{NAME}/versions/{d}/router.onnx"
        body = bytearray(s3.get_object(Bucket=BUCKET, Key=tampered_key)["Body"].read())
        body[-1] ^= 0xFF
        s3.put_object(Bucket=BUCKET, Key=tampered_key, Body=bytes(body))
        assert fleet.cli("promote", "--version", d, "--force", "--reason", "degraded test") == 0
        every_dir = {str(p) for p in fleet.agent_dirs}
        deadline = time.monotonic() + 60
        while _refusers(fleet) != every_dir:
            assert time.monotonic() < deadline, f"refused by {len(_refusers(fleet))} agents only"
            pointers = fleet.pointers()
            assert d not in pointers.values()
            assert not any((p / d).exists() for p in fleet.agent_dirs)
            time.sleep(0.05)
        assert fleet.everywhere(c)
        assert not any((p / d).exists() for p in fleet.agent_dirs)

        # Redis back: every agent resubscribes and the next promotion arrives by notification.
        fleet.redis.start()
        client = redis.Redis.from_url(fleet.redis.url)
        topic = keys.channel_topic("stable")
        wait_until(
            lambda: client.pubsub_numsub(topic) == [(topic.encode(), len(fleet.agent_dirs))],
            30,
            "every agent to resubscribe",
        )
        client.close()
        capsys.readouterr()
        recovered = fleet.propagate(
            e, lambda: fleet.cli("promote", "--version", e, "--force", "--reason", "recovered")
        )
        assert f"notified {len(fleet.agent_dirs)} sync agent(s)" in capsys.readouterr().out

        # The OTLP endpoint down: spans cannot be exported, Routes must not notice.
        fleet.otlp.close()
        answered = len(stream.served)
        wait_until(lambda: len(stream.served) >= answered + 150, 60, "150 Routes without OTLP")
        # ... and back: the services' exporters reach it again on their own.
        fleet.restart_otlp()
        wait_until(
            lambda: any(s.name == ROUTE_METHOD for s in fleet.otlp.spans()),
            30,
            "Route spans at the restarted OTLP endpoint",
        )
        answered = len(stream.served)
        wait_until(lambda: len(stream.served) >= answered + 50, 60, "50 Routes after OTLP")
    # 0 failed Routes through S3, Redis and OTLP outages, a tampered download and 2 promotions.
    assert stream.failed == []
    assert set(stream.served) <= {start, c, e}
    with capsys.disabled():
        print()
        print(
            f"degraded: S3 and Redis down, every replica kept {start}; S3 back without Redis, "
            f"{c} reached all by polling in {polled_s:.1f}s; tampered {d} refused by "
            f"{len(every_dir)} agents, never visible"
        )
        print(_figures("after Redis returned, promote", recovered))
        print(
            f"Routes while S3, Redis and then the OTLP endpoint were down and back: "
            f"{len(stream.served)} answered, {len(stream.failed)} failed; spans exported "
            f"again after the OTLP endpoint returned"
        )
    assert max(recovered["agents"] + recovered["services"]) < BOUND_S
    assert fleet.everywhere(e)
