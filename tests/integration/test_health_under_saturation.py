"""Probes and admin calls stay answered while Route is saturated past its admission limit.

The service runs the real int8 encoder with its cache off (every Route is an encoder run),
two workers and ``max_in_flight`` 4. A client *process* (so its own CPU use cannot slow this
process's probes) drives Route with 12 concurrent callers, twice workers + max_in_flight, for
a few seconds; a refused caller pauses 20 ms (a gateway falls back, it does not retry at once).
Meanwhile this process calls ``grpc.health.v1.Health/Check`` every 50 ms on a fresh
connection, as the kubelet's gRPC probe does, and every other time ``AdminService.GetStatus``
and ``ListVersions`` on another connection (one prober thread). Only calls started inside
the load window count.

Every call runs on a thread of the sync server's pool; encoder work needs one of ``workers``
decide slots, at most ``max_in_flight`` calls hold or wait for one, and the pool has 8
threads more, so a probe always finds a free thread and never waits for an encoder run
(onnxruntime releases the GIL during a run): the 100 ms bar is the issue's, well above the
6.7 ms p50 and 29 ms max a probe took here (2026-12-03, machine otherwise idle).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from routeiq.decision.v1 import admin_pb2, admin_pb2_grpc

from .servers import REPO, DecisionServiceProcess

pytestmark = pytest.mark.integration

TOKEN = "saturation-test-token"
AUTH = (("authorization", f"Bearer {TOKEN}"),)
WORKERS = 2
MAX_IN_FLIGHT = 4
CALLERS = 12  # far more than workers + max_in_flight: most calls are refused
REFUSED_PAUSE_S = 0.02  # a refused gateway falls back to its default deployment, no instant retry
LOAD_SECONDS = 4.0
MAX_ROUTES = 5000  # the load is bounded in requests as well as in time
PROBE_INTERVAL_S = 0.05
PROBE_BAR_MS = 100.0  # issue 14: health answered in under 100 ms while Route is saturated

# The load generator, run as its own process: CALLERS asyncio callers over one channel, each
# Route a real encoder run (short and paragraph prompts, the service's cache is off). Prints
# the load window and the latency of every accepted and every refused call. A refused caller
# pauses 20 ms, a gateway does not retry at once but falls back to its default deployment.
LOAD_SCRIPT = """
import asyncio, json, sys, time
import grpc
from routeiq.decision.v1 import decision_pb2 as pb, decision_pb2_grpc as pb_grpc
from tools.bench.prompts import CLASSES

address, callers, seconds, cap = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
pause = float(sys.argv[5])
assert address.startswith("127.0.0.1:")
candidates = [pb.Candidate(id=f"{m}-1", model_name=m) for m in ("gpt-4o", "gpt-4o-mini")]
prompts = CLASSES["short"] + CLASSES["paragraph"]
# Each prompt made unique, so nothing can be answered from a cache.
requests = [pb.RouteRequest(prompt=f"{p} (#{i})", candidates=candidates)
            for i, p in enumerate(prompts * 200)]

async def main():
    accepted, refused, other = [], [], {}
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.DecisionServiceStub(channel)
        await stub.Route(requests[0], timeout=30)  # connected before the window opens
        sent = 0
        stop_at = time.monotonic() + seconds

        async def caller():
            nonlocal sent
            while time.monotonic() < stop_at and sent < cap:
                request = requests[sent % len(requests)]
                sent += 1
                began = time.perf_counter()
                try:
                    await stub.Route(request, timeout=10)
                except grpc.aio.AioRpcError as exc:
                    ms = (time.perf_counter() - began) * 1e3
                    if exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                        refused.append(ms)
                        await asyncio.sleep(pause)
                    else:
                        other[exc.code().name] = other.get(exc.code().name, 0) + 1
                else:
                    accepted.append((time.perf_counter() - began) * 1e3)

        started = time.time()
        await asyncio.gather(*(caller() for _ in range(callers)))
        ended = time.time()
    print(json.dumps({"started": started, "ended": ended, "accepted_ms": accepted,
                      "refused_ms": refused, "other_errors": other}))

asyncio.run(main())
"""


@dataclass
class Sample:
    at: float  # unix time the call started
    ms: float
    ok: bool
    detail: str = ""


class Prober(threading.Thread):
    """One thread (two would compete for this process's GIL and slow each other's calls):
    every ``interval_s`` a health probe, and every ``admin_every``-th time the admin calls
    after it; one Sample per call, kept apart."""

    def __init__(
        self,
        health: Callable[[], tuple[bool, str]],
        admin: Callable[[], tuple[bool, str]],
        interval_s: float,
        admin_every: int = 2,
    ) -> None:
        super().__init__(daemon=True)
        self.calls = {"health": health, "admin": admin}
        self.interval_s = interval_s
        self.admin_every = admin_every
        self.samples: dict[str, list[Sample]] = {"health": [], "admin": []}
        self.stopped = threading.Event()

    def _take(self, name: str) -> None:
        at, began = time.time(), time.perf_counter()
        try:
            ok, detail = self.calls[name]()
        except grpc.RpcError as exc:
            ok, detail = False, f"{exc.code().name}: {exc.details()}"
        self.samples[name].append(Sample(at, (time.perf_counter() - began) * 1e3, ok, detail))

    def run(self) -> None:
        tick = 0
        while not self.stopped.is_set():
            self._take("health")
            if tick % self.admin_every == 0:
                self._take("admin")
            tick += 1
            self.stopped.wait(self.interval_s)

    def within(self, name: str, start: float, end: float) -> list[Sample]:
        return [s for s in self.samples[name] if start <= s.at <= end]


@pytest.fixture(scope="module")
def service(knn_bundle_dir: Path, encoder_dir: Path) -> Iterator[DecisionServiceProcess]:
    with DecisionServiceProcess(
        knn_bundle_dir,
        encoder_dir,
        "--workers",
        str(WORKERS),
        ROUTEIQ_MAX_IN_FLIGHT=str(MAX_IN_FLIGHT),
        ROUTEIQ_EMBEDDING_CACHE_SIZE="0",
        ROUTEIQ_ADMIN_TOKEN=TOKEN,
        ROUTEIQ_RELOAD_POLL_MS="0",
    ) as proc:
        yield proc


def _health_check(address: str) -> tuple[bool, str]:
    # A fresh channel (its own TCP connection and HTTP/2 handshake) per probe, as the kubelet.
    with grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)]) as ch:
        reply = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=1.0)
    serving = reply.status == health_pb2.HealthCheckResponse.SERVING
    return serving, health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


def _drive_load(address: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", LOAD_SCRIPT, address, str(CALLERS), str(LOAD_SECONDS),
         str(MAX_ROUTES), str(REFUSED_PAUSE_S)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout)
    assert isinstance(answer, dict)
    return answer


def test_health_and_admin_answer_fast_while_route_is_saturated(service):
    admin_channel = grpc.insecure_channel(service.address)
    admin = admin_pb2_grpc.AdminServiceStub(admin_channel)

    def admin_calls() -> tuple[bool, str]:
        status = admin.GetStatus(admin_pb2.GetStatusRequest(), metadata=AUTH, timeout=2.0)
        versions = admin.ListVersions(admin_pb2.ListVersionsRequest(), metadata=AUTH, timeout=2.0)
        ok = bool(status.active_versions) and bool(versions.versions)
        return ok, f"in_flight={status.in_flight}"

    prober = Prober(lambda: _health_check(service.address), admin_calls, PROBE_INTERVAL_S)
    prober.start()
    try:
        load = _drive_load(service.address)
    finally:
        prober.stopped.set()
        prober.join(10)
        admin_channel.close()

    start, end = float(load["started"]), float(load["ended"])  # type: ignore[arg-type]
    accepted: list[float] = load["accepted_ms"]  # type: ignore[assignment]
    refused: list[float] = load["refused_ms"]  # type: ignore[assignment]
    assert load["other_errors"] == {}, load["other_errors"]
    assert end - start >= LOAD_SECONDS * 0.9 or len(accepted) + len(refused) >= MAX_ROUTES

    # Saturated: past the admission limit, so some calls were refused, and some were served.
    assert len(accepted) >= 20, f"only {len(accepted)} Routes served"
    assert len(refused) >= 20, f"only {len(refused)} Routes refused: the load never saturated"
    # A refusal is decided before any work: it comes back well before a decision does (the
    # decision waits for a decide slot and runs the encoder).
    refused_p50, accepted_p50 = statistics.median(refused), statistics.median(accepted)
    assert refused_p50 < accepted_p50 / 2, (refused_p50, accepted_p50)

    probes = prober.within("health", start, end)
    # One probe every 50 ms plus its own time: at least half the window's worth.
    assert len(probes) >= (end - start) / PROBE_INTERVAL_S / 2, len(probes)
    failed = [s for s in probes if not s.ok]
    assert not failed, f"probes not SERVING under load: {failed[:5]}"
    slowest = max(probes, key=lambda s: s.ms)
    assert slowest.ms < PROBE_BAR_MS, (
        f"Health/Check took {slowest.ms:.1f} ms under saturation (bar {PROBE_BAR_MS:.0f} ms); "
        f"p50 {statistics.median(s.ms for s in probes):.1f} ms over {len(probes)} probes"
    )

    admin_samples = prober.within("admin", start, end)
    assert len(admin_samples) >= 5, len(admin_samples)
    assert all(s.ok for s in admin_samples), [s for s in admin_samples if not s.ok][:5]
    # Admin calls are not the kubelet's concern, but an operator must get an answer: each of
    # the two calls a sample makes is held to the probe's bar.
    slowest_admin = max(s.ms for s in admin_samples)
    assert slowest_admin < 2 * PROBE_BAR_MS, f"GetStatus+ListVersions took {slowest_admin:.1f} ms"
    print(
        f"\nRoute: {len(accepted)} served (p50 {accepted_p50:.1f} ms), {len(refused)} refused "
        f"(p50 {refused_p50:.2f} ms); Health/Check: {len(probes)} probes, p50 "
        f"{statistics.median(s.ms for s in probes):.1f} ms, max {slowest.ms:.1f} ms; admin: "
        f"{len(admin_samples)} GetStatus+ListVersions, max "
        f"{max(s.ms for s in admin_samples):.1f} ms"
    )
