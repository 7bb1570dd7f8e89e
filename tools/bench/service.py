"""Figures taken over gRPC: the service in its own process, the load from another one."""

from __future__ import annotations

import json
import os
import resource
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc

from decision_service.bundle import read_manifest
from routeiq.decision.v1 import admin_pb2, admin_pb2_grpc
from tools.local_service import LocalService, free_loopback_port

from .client import Level, requests_for
from .configs import EncoderConfig
from .plan import Plan
from .prompts import CLASSES

REPO = Path(__file__).resolve().parents[2]


def client(address: str, *args: str) -> dict[str, object]:
    """Run the load generator (tools.bench.client) in its own process; its JSON answer."""
    done = subprocess.run(
        [sys.executable, "-m", "tools.bench.client", "--address", address, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench client failed ({done.returncode}): {done.stderr[-2000:]}")
    answer = json.loads(done.stdout)
    assert isinstance(answer, dict)
    return answer


def sweep(
    address: str, plan: Plan, seconds: float, *, connections: int | None = None
) -> list[Level]:
    """Short prompts at rising concurrency until the throughput stops growing."""
    args = ["--klass", "short", "--seconds", str(seconds), "--until-flat", str(plan.until_flat)]
    args += ["--concurrency", *(str(c) for c in plan.levels)]
    if connections is not None:
        args += ["--connections", str(connections)]
    levels = client(address, *args)["levels"]
    assert isinstance(levels, list)
    return levels


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_service(
    config: EncoderConfig, *, bundle: Path | None = None, env: dict[str, str] | None = None
) -> LocalService:
    return LocalService(
        bundle or config.bundle_dir,
        "--log-level",
        "WARNING",
        *config.service_args(),
        env=env,
        cwd=REPO,
    ).start()


class CpuSampler(threading.Thread):
    """The service's CPU seconds every ``interval_s`` (unix time, seconds), so the cores it
    used inside any window (a client level's started/ended_unix) can be read afterwards."""

    def __init__(self, pid: int, interval_s: float = 0.1) -> None:
        super().__init__(name="cpu-sampler", daemon=True)
        self.pid, self.interval_s = pid, interval_s
        self.samples: list[tuple[float, float]] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.samples.append((time.time(), cpu_seconds(self.pid)))
            self._stop_event.wait(self.interval_s)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(10)

    def cores_between(self, start_unix: float, end_unix: float) -> float:
        """CPU seconds per wall second between the samples nearest the window's ends."""
        inside = [s for s in self.samples if start_unix <= s[0] <= end_unix]
        if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
            return float("nan")
        (t0, c0), (t1, c1) = inside[0], inside[-1]
        return (c1 - c0) / (t1 - t0)


def children_cpu_seconds() -> float:
    """User + system CPU time of this process's waited-for children (the load generators)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def python_sweep(service: LocalService, plan: Plan) -> dict[str, object]:
    """The Python client's sweep, with the cores the service used at each level and the
    cores the client process itself used over the sweep (it shares the machine)."""
    sampler = CpuSampler(service.pid)
    sampler.start()
    cpu0, children0, t0 = cpu_seconds(service.pid), children_cpu_seconds(), time.perf_counter()
    try:
        levels = sweep(service.address, plan, plan.seconds)
    finally:
        sampler.stop()
    elapsed = time.perf_counter() - t0
    for level in levels:
        level["service_cores"] = sampler.cores_between(level["started_unix"], level["ended_unix"])
    return {
        "levels_short": levels,
        "sweep_service_cores": (cpu_seconds(service.pid) - cpu0) / elapsed,
        "sweep_client_cores": (children_cpu_seconds() - children0) / elapsed,
    }


def over_grpc(config: EncoderConfig, plan: Plan) -> dict[str, object]:
    """Sequential latency per prompt class, the concurrency sweep (Python client, then
    h2load, tools.bench.h2load), Health/Check probed while Route is saturated (at the
    Python sweep's highest concurrency), and the LiteLLM strategy."""
    from tools.bench import h2load
    from tools.bench.gateway_overhead import measure
    from tools.bench.replica import health_under_saturation

    # Metrics on: the h2load sweep counts successful decisions from the service's counters.
    metrics_port = free_loopback_port()
    metrics_env = {"ROUTEIQ_METRICS_PORT": str(metrics_port), "ROUTEIQ_METRICS_HOST": "127.0.0.1"}
    service = start_service(config, env=metrics_env)
    address = service.address
    try:
        out: dict[str, object] = {"rss_mb": rss_mb(service.pid)}
        for klass in CLASSES:
            n = str(plan.sequential[klass])
            out[klass] = client(address, "--klass", klass, "--sequential", n)["sequential"]
        out.update(python_sweep(service, plan))
        out["rss_mb_after_load"] = rss_mb(service.pid)
        out["h2load"] = h2load.sweep(
            address, metrics_port, service.pid, plan.levels, plan.seconds, plan.until_flat
        )
        levels = out["levels_short"]
        assert isinstance(levels, list)
        past_saturation = max(int(lv["concurrency"]) for lv in levels)
        out["health_saturated"] = health_under_saturation(
            address, past_saturation, plan.health_seconds
        )
        names = read_manifest(config.bundle_dir).model_names
        out["litellm"] = measure(address, names, plan.overhead_picks)
        return out
    finally:
        service.stop()


def batched_sweep(config: EncoderConfig, plan: Plan) -> list[Level]:
    """The same sweep with encoder batching on (8 prompts a run, 8 worker threads)."""
    env = {"ROUTEIQ_ENCODER_BATCH_MAX": "8", "ROUTEIQ_WORKERS": "8"}
    service = start_service(config, env=env)
    try:
        return sweep(service.address, plan, plan.seconds)
    finally:
        service.stop()


def rss_three_bundles(config: EncoderConfig) -> dict[str, object]:
    """RSS with one bundle loaded, then with three versions loaded (keep_versions=3).

    The service serves a pointer symlink in a temp folder; the pointer is moved to each of
    the config's three bundles in turn and AdminService.Reload loads it, so the first two
    stay loaded for rollback. ListVersions confirms what is loaded.
    """
    token = secrets.token_hex(16)
    auth = [("authorization", f"Bearer {token}")]
    env = {
        "ROUTEIQ_ADMIN_TOKEN": token,
        "ROUTEIQ_RELOAD_POLL_MS": "0",  # Reload below is the only way a bundle loads
        "ROUTEIQ_KEEP_VERSIONS": "3",
    }
    bundles = [os.path.realpath(b) for b in config.rss_bundles]
    with tempfile.TemporaryDirectory(prefix="routeiq-bench-") as tmp:
        pointer = Path(tmp) / "current"
        os.symlink(bundles[0], pointer)
        service = start_service(config, bundle=pointer, env=env)
        try:
            with grpc.insecure_channel(service.address) as channel:
                route_each_class(channel)
                one = rss_mb(service.pid)
                admin = admin_pb2_grpc.AdminServiceStub(channel)
                for bundle in bundles[1:]:
                    staged = Path(tmp) / "next"
                    os.symlink(bundle, staged)
                    os.replace(staged, pointer)
                    admin.Reload(
                        admin_pb2.ReloadRequest(reason="bench"), metadata=auth, timeout=120
                    )
                    route_each_class(channel)
                versions = admin.ListVersions(admin_pb2.ListVersionsRequest(), metadata=auth)
                status = admin.GetStatus(admin_pb2.GetStatusRequest(), metadata=auth)
            three = rss_mb(service.pid)
        finally:
            service.stop()
    return {
        "encoder": status.encoder_name,
        "versions_loaded": [
            {"version": v.version, "router_type": v.router_type, "active": v.active}
            for v in versions.versions
        ],
        "rss_mb_one_bundle": one,
        "rss_mb_three_bundles": three,
    }


def route_each_class(channel: grpc.Channel) -> None:
    """A few Route calls of every prompt class: RSS after real work, not just after loading."""
    from routeiq.decision.v1 import decision_pb2_grpc

    stub = decision_pb2_grpc.DecisionServiceStub(channel)
    for klass in CLASSES:
        for request in requests_for(klass):
            stub.Route(request, timeout=30)
