"""Which threading/process model uses both cores best, measured at saturation.

    threads:     1 process, workers=2, intra_op_threads=1 (the default)
    intra-op:    1 process, workers=1, intra_op_threads=2
    reuseport:   2 processes on one port (gRPC sets SO_REUSEPORT on Linux), workers=1 each

Every model gets the same short-prompt sweep with one client connection per concurrent
worker, so the kernel can spread connections over the reuseport processes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tools.local_service import LocalService

from .client import OWN_CONNECTION
from .configs import EncoderConfig
from .plan import Plan
from .service import cpu_seconds, rss_mb, start_service, sweep


@dataclass(frozen=True)
class ProcessModel:
    name: str
    description: str
    processes: int
    workers: int
    intra_op_threads: int

    def env(self) -> dict[str, str]:
        return {
            "ROUTEIQ_WORKERS": str(self.workers),
            "ROUTEIQ_INTRA_OP_THREADS": str(self.intra_op_threads),
        }


MODELS = (
    ProcessModel("threads", "1 process, workers=2, intra_op_threads=1 (default)", 1, 2, 1),
    ProcessModel("intra-op", "1 process, workers=1, intra_op_threads=2", 1, 1, 2),
    ProcessModel("reuseport", "2 processes, one port (SO_REUSEPORT), workers=1 each", 2, 1, 1),
)


class ReusePortUnavailable(RuntimeError):
    """A second service process could not bind the port the first one serves on."""


def _listeners(port: int) -> int:
    """Sockets listening on ``port`` (any address), from /proc/net/tcp{,6}."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        path = Path(table)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                count += 1
    return count


def _all_answer(address: str, connections: int = 8, timeout_s: float = 60.0) -> None:
    """Until health checks over ``connections`` fresh connections all succeed in one round.

    The kernel spreads new connections over every socket bound to the port, so once a round
    of eight passes, every process (almost surely) accepts and serves.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            for _ in range(connections):
                with grpc.insecure_channel(address, options=OWN_CONNECTION) as channel:
                    health_pb2_grpc.HealthStub(channel).Check(
                        health_pb2.HealthCheckRequest(), timeout=1.0
                    )
            return
        except grpc.RpcError:
            time.sleep(0.2)
    raise TimeoutError(f"not every process on {address} answered within {timeout_s:.0f}s")


def _start_group(config: EncoderConfig, model: ProcessModel) -> list[LocalService]:
    first = start_service(config, env=model.env())
    group = [first]
    try:
        for _ in range(model.processes - 1):
            extra = LocalService(
                config.bundle_dir,
                "--log-level",
                "WARNING",
                *config.service_args(),
                env=model.env(),
                cwd=first.cwd,
                port=first.port,
            )
            group.append(extra.start())  # returns at once: the first answers the probe
            deadline = time.monotonic() + 120
            while _listeners(first.port) < len(group):
                if extra.process is None or extra.process.poll() is not None:
                    raise ReusePortUnavailable(
                        f"a second `python -m decision_service` could not bind {first.address}"
                    )
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the second process never listened on {first.address}")
                time.sleep(0.1)
        _all_answer(first.address)
    except BaseException:
        for service in group:
            service.stop()
        raise
    return group


def measure(config: EncoderConfig, model: ProcessModel, plan: Plan) -> dict[str, object]:
    out: dict[str, object] = {
        "model": model.name,
        "description": model.description,
        "processes": model.processes,
        "workers": model.workers,
        "intra_op_threads": model.intra_op_threads,
    }
    try:
        group = _start_group(config, model)
    except ReusePortUnavailable as exc:
        return {**out, "error": str(exc)}
    try:
        pids = [s.pid for s in group]
        cpu0, t0 = [cpu_seconds(p) for p in pids], time.perf_counter()
        levels = sweep(group[0].address, plan, plan.model_seconds, connections=0)
        wall = time.perf_counter() - t0
        cpu = [cpu_seconds(p) - c for p, c in zip(pids, cpu0, strict=True)]
        best = max(levels, key=lambda lv: lv["throughput_rps"])
        return {
            **out,
            "levels_short": levels,
            "saturation": best,
            "rss_mb_total": sum(rss_mb(p) for p in pids),
            "service_cpu_s": cpu,  # per process, over the sweep: how the load was spread
            "service_cores": sum(cpu) / wall,
        }
    finally:
        for service in group:
            service.stop()


def compare(config: EncoderConfig, plan: Plan) -> dict[str, object]:
    results = [measure(config, model, plan) for model in MODELS]
    measured = [r for r in results if "saturation" in r]
    best = max(measured, key=_saturation_rps) if measured else None
    return {
        "config": config.name,
        "models": results,
        "best": best["model"] if best else None,
    }


def _saturation_rps(result: dict[str, object]) -> float:
    saturation = result["saturation"]
    assert isinstance(saturation, dict)
    return float(saturation["throughput_rps"])
