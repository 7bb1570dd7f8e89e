"""What one replica costs the HPA: start-up time, memory, and health answers under load.

* ``cold_start``: spawn ``python -m decision_service`` and time process start to the first
  ``SERVING`` answer of ``grpc.health.v1.Health/Check`` (polled every 20 ms, each check on a
  fresh connection), then warm it up (every prompt class routed a few times) and read its
  RSS; ``starts`` times, medians reported. The HPA adds pods while traffic is already high,
  so this time is seen by users.
* ``HealthProber`` / ``health_under_saturation``: while a client process drives ``Route`` at
  a concurrency past saturation, another thread here calls ``Health/Check`` every 50 ms on a
  fresh connection, as the kubelet's gRPC probe does; only probes inside the load window
  (the client reports it) count.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import threading
import time

import grpc

from decision_service.probe import SERVING, check
from tools.local_service import free_loopback_port

from .client import percentiles
from .configs import EncoderConfig
from .service import REPO, client, route_each_class, rss_mb

POLL_S = 0.02
PROBE_INTERVAL_S = 0.05
WARM_UP_ROUNDS = 3


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _one_start(config: EncoderConfig, timeout_s: float) -> tuple[float, float]:
    """(ms from spawn to SERVING, RSS MB after warm-up) of one fresh service process."""
    address = f"127.0.0.1:{free_loopback_port()}"
    command = [
        sys.executable, "-m", "decision_service", "--bundle", str(config.bundle_dir),
        "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1], "--log-level", "WARNING",
        *config.service_args(),
    ]  # fmt: skip
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO, env=dict(os.environ))
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the service exited ({process.returncode}) before serving")
            try:
                if check(address, timeout_s=1.0) == SERVING:
                    break
            except grpc.RpcError:
                pass
            if time.perf_counter() - started > timeout_s:
                raise TimeoutError(f"not SERVING within {timeout_s:.0f} s")
            time.sleep(POLL_S)
        serving_ms = (time.perf_counter() - started) * 1e3
        with grpc.insecure_channel(address) as channel:
            for _ in range(WARM_UP_ROUNDS):
                route_each_class(channel)
        return serving_ms, rss_mb(process.pid)
    finally:
        _stop(process)


def cold_start(config: EncoderConfig, starts: int, timeout_s: float = 120.0) -> dict[str, object]:
    runs = [_one_start(config, timeout_s) for _ in range(starts)]
    serving = [ms for ms, _ in runs]
    rss = [mb for _, mb in runs]
    return {
        "starts": starts,
        "serving_ms": serving,
        "serving_ms_median": statistics.median(serving),
        "serving_ms_max": max(serving),
        "rss_mb_warm": rss,
        "rss_mb_warm_median": statistics.median(rss),
    }


class HealthProber(threading.Thread):
    """Health/Check every ``interval_s`` on a fresh connection: (unix time, ms, SERVING?)."""

    def __init__(self, address: str, interval_s: float = PROBE_INTERVAL_S) -> None:
        super().__init__(name="health-prober", daemon=True)
        self.address = address
        self.interval_s = interval_s
        self.samples: list[tuple[float, float, bool]] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            at, began = time.time(), time.perf_counter()
            try:
                ok = check(self.address, timeout_s=1.0) == SERVING
            except grpc.RpcError:
                ok = False
            self.samples.append((at, (time.perf_counter() - began) * 1e3, ok))
            self._stop_event.wait(self.interval_s)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(10)

    def within(self, start_unix: float, end_unix: float) -> dict[str, object]:
        """The probes started inside the window: percentiles, max, failures."""
        inside = [(ms, ok) for at, ms, ok in self.samples if start_unix <= at <= end_unix]
        ms = [m for m, _ in inside]
        return {
            **percentiles(ms),
            "max_ms": max(ms) if ms else float("nan"),
            "failed": sum(1 for _, ok in inside if not ok),
            "interval_ms": self.interval_s * 1e3,
        }


def health_under_saturation(address: str, concurrency: int, seconds: float) -> dict[str, object]:
    """Route at ``concurrency`` for ``seconds`` from a client process, Health/Check probed."""
    prober = HealthProber(address)
    prober.start()
    try:
        answer = client(
            address, "--klass", "short", "--concurrency", str(concurrency),
            "--seconds", str(seconds),
        )  # fmt: skip
    finally:
        prober.stop()
    levels = answer["levels"]
    assert isinstance(levels, list) and levels
    level = levels[0]
    return {
        "route": level,
        "health": prober.within(level["started_unix"], level["ended_unix"]),
    }
