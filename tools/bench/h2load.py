"""Saturation with h2load (nghttp2's C load generator) instead of the Python client.

On this 2-core machine the Python grpc.aio client (tools.bench.client) shares the cores with
the service it loads (the bench prints the cores each used, per level), so the saturation
it measures is partly the client's own cost. h2load is C and needs a few hundredths of a
core for the same load. It speaks gRPC
well enough for a unary call: the request body is one gRPC message frame (a 0 byte, the
4-byte big-endian length, the serialized RouteRequest), sent with ``content-type:
application/grpc``, ``te: trailers`` and ``grpc-timeout`` (a deadline, as the gateway and
the Python client send), all streams over one connection (``-c 1 -m N``, as a gateway
multiplexes), for ``-D`` seconds per level, to loopback only.

h2load counts HTTP 2xx, but a gRPC error is an HTTP 200 with a non-zero ``grpc-status``
trailer, so its count is not the success count. Throughput is therefore counted from the
service's own Prometheus metrics, scraped before and after each level: successful Route
decisions (``routeiq_decision_latency_seconds_count``, summed over strategies) per second of
the level, and calls answered with an error (``routeiq_errors_total``). Service CPU comes
from /proc; the latency mean / max are h2load's own ("time for request").

One prompt is sent over and over (h2load takes one ``-d`` body): fine because `make bench`
runs the service with the embedding cache off (ROUTEIQ_EMBEDDING_CACHE_SIZE=0, run.py), so
every call runs the encoder. It is the short class's first prompt, "hey, how's it going?":
10 tokens, the class median (the in-process rate it is compared with rotates all eight
short prompts, 8-16 tokens, mean 10.75). Without ``h2load`` on PATH (Debian:
``nghttp2-client``), the sweep says so and `make bench` judges saturation on the Python
client's figure.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from .client import requests_for, rise_until_flat
from .service import children_cpu_seconds, cpu_seconds

ROUTE_PATH = "/routeiq.decision.v1.DecisionService/Route"
DECISIONS = "routeiq_decision_latency_seconds_count"  # one sample per successful decision
ERRORS = "routeiq_errors_total"  # calls answered with a non-OK status
IN_FLIGHT = "routeiq_in_flight_requests"
DEADLINE = "10S"  # grpc-timeout header; the Python client's deadline too
DRAIN_S = 10.0  # at most this long for calls h2load left behind to finish between levels
MISSING = "h2load not on PATH (Debian package nghttp2-client)"


def grpc_frame(message: bytes) -> bytes:
    """One uncompressed gRPC length-prefixed message, the body of a unary call."""
    return b"\0" + struct.pack(">I", len(message)) + message


_UNIT_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3}
_DURATION = r"([\d.]+)(us|ms|s)"


def _ms(value: str, unit: str) -> float:
    return float(value) * _UNIT_MS[unit]


def parse_output(text: str) -> dict[str, float]:
    """h2load's summary: its own request counts, req/s, and time for request (ms)."""
    out: dict[str, float] = {}
    finished = re.search(r"finished in " + _DURATION + r", ([\d.]+) req/s", text)
    requests = re.search(
        r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
        r"(\d+) errored, (\d+) timeout",
        text,
    )
    status = re.search(r"status codes: (\d+) 2xx", text)
    timing = re.search(r"time for request:\s+" + r"\s+".join([_DURATION] * 3), text)
    if not (finished and requests and status and timing):
        raise ValueError(f"unexpected h2load output: {text[-800:]!r}")
    out["elapsed_ms"] = _ms(finished[1], finished[2])
    out["rps"] = float(finished[3])
    for i, key in enumerate(("total", "started", "done", "succeeded", "failed", "errored")):
        out[f"requests_{key}"] = float(requests[i + 1])
    out["requests_timeout"] = float(requests[7])
    out["status_2xx"] = float(status[1])
    for i, key in enumerate(("min_ms", "max_ms", "mean_ms")):
        out[key] = _ms(timing[2 * i + 1], timing[2 * i + 2])
    return out


def metric_sum(text: str, name: str) -> float:
    """The sum of every sample called ``name`` (all label sets) in exposition ``text``."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    )


def scrape(metrics_port: int) -> str:
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as reply:
        return str(reply.read().decode())


class H2LoadSweep:
    """The shipped service (own process, ``pid``, metrics on ``metrics_port``) under h2load."""

    def __init__(self, h2load: str, address: str, metrics_port: int, pid: int, body: Path):
        host = address.rsplit(":", 1)[0]
        if host not in {"127.0.0.1", "localhost", "[::1]"}:
            raise ValueError(f"h2load targets loopback only, not {address}")
        self.h2load, self.metrics_port, self.pid, self.body = h2load, metrics_port, pid, body
        self.url = f"http://{address}{ROUTE_PATH}"

    def command(self, streams: int, seconds: float) -> list[str]:
        return [
            self.h2load, "-c", "1", "-m", str(streams), "-D", f"{round(seconds * 1e3)}ms",
            "-d", str(self.body), "-H", "content-type: application/grpc",
            "-H", "te: trailers", "-H", f"grpc-timeout: {DEADLINE}", self.url,
        ]  # fmt: skip

    def level(self, streams: int, seconds: float) -> dict[str, Any]:
        before = scrape(self.metrics_port)
        cpu0, children0 = cpu_seconds(self.pid), children_cpu_seconds()
        began, started_unix = time.perf_counter(), time.time()
        done = subprocess.run(
            self.command(streams, seconds), capture_output=True, text=True, timeout=seconds + 60
        )
        after = scrape(self.metrics_port)
        elapsed = time.perf_counter() - began
        cpu1, children1 = cpu_seconds(self.pid), children_cpu_seconds()
        if done.returncode != 0:
            raise RuntimeError(f"h2load exited {done.returncode}: {done.stderr[-800:]}")
        printed = parse_output(done.stdout)
        decisions = metric_sum(after, DECISIONS) - metric_sum(before, DECISIONS)
        self._drain()
        return {
            "concurrency": streams,  # streams in flight over the one connection
            "connections": 1,
            "seconds": elapsed,
            "decisions": decisions,
            "throughput_rps": decisions / elapsed,
            "errors": metric_sum(after, ERRORS) - metric_sum(before, ERRORS),
            "service_cores": (cpu1 - cpu0) / elapsed,
            "h2load_cores": (children1 - children0) / elapsed,
            "started_unix": started_unix,
            "h2load": printed,
            "mean_ms": printed["mean_ms"],
            "max_ms": printed["max_ms"],
        }

    def _drain(self) -> None:
        """Wait for the calls h2load abandoned at its deadline, so the next level's count
        holds only its own decisions."""
        stop_at = time.perf_counter() + DRAIN_S
        while time.perf_counter() < stop_at:
            if metric_sum(scrape(self.metrics_port), IN_FLIGHT) == 0:
                return
            time.sleep(0.05)


def sweep(
    address: str,
    metrics_port: int,
    pid: int,
    levels: Sequence[int],
    seconds: float,
    until_flat: float | None,
) -> dict[str, Any]:
    """h2load at rising streams in flight until flat; ``available`` False (with the reason)
    when h2load is missing or fails, so the caller falls back to the Python client."""
    h2load = shutil.which("h2load")
    if h2load is None:
        return {"available": False, "reason": MISSING}
    with tempfile.TemporaryDirectory(prefix="routeiq-h2load-") as tmp:
        body = Path(tmp) / "route.grpc"
        body.write_bytes(grpc_frame(requests_for("short")[0].SerializeToString()))
        run = H2LoadSweep(h2load, address, metrics_port, pid, body)
        try:
            run.level(1, min(seconds, 0.5))  # warm-up: connection, first calls
            swept = rise_until_flat(levels, lambda m: run.level(m, seconds), until_flat)
        except (RuntimeError, ValueError, OSError, subprocess.TimeoutExpired) as exc:
            return {"available": False, "reason": f"h2load failed: {exc}"}
    return {
        "available": True,
        "prompt": requests_for("short")[0].prompt,
        "deadline": DEADLINE,
        "levels": swept,
    }
