"""Load generator for `make bench`: runs in its own process, talks to loopback only.

    python -m tools.bench.client --address 127.0.0.1:PORT --klass short --sequential 300
    python -m tools.bench.client --address ... --klass short --concurrency 1 2 4 8 --seconds 5
    python -m tools.bench.client --address ... --concurrency 1 2 4 8 16 32 --until-flat 0.05 \\
        --connections 0

Every loop is bounded by a request count and a time limit. Prints one JSON document.

``--connections N`` opens N channels (TCP connections) and spreads the workers over them;
0 opens one per worker, so SO_REUSEPORT can spread them over processes. By default all
workers share one channel (HTTP/2 streams over one connection, as a gateway would).
``--until-flat G`` stops the sweep after two levels in a row whose throughput is not at
least (1 + G) times the best so far: the service is saturated, higher levels only queue
(two, so one level slowed by a noisy neighbour does not end the sweep).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import grpc
import numpy as np

from routeiq.decision.v1 import decision_pb2 as pb
from routeiq.decision.v1 import decision_pb2_grpc as pb_grpc

from .prompts import CLASSES

MODELS = ["gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet", "mistral-small", "qwen2.5-math-72b"]
MAX_REQUESTS_PER_LEVEL = 20_000
FLAT_LEVELS = 2  # levels in a row that add too little before a sweep stops
# A channel of its own (not shared through the global subchannel pool) is its own connection.
OWN_CONNECTION = [("grpc.use_local_subchannel_pool", 1)]


def requests_for(klass: str) -> list[pb.RouteRequest]:
    candidates = [pb.Candidate(id=f"{m}-1", model_name=m) for m in MODELS]
    return [pb.RouteRequest(prompt=p, candidates=candidates) for p in CLASSES[klass]]


Level = dict[str, float]  # concurrency, connections, throughput_rps, errors, percentiles


def percentiles(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms) if ms else np.asarray([float("nan")])
    return {
        "n": len(ms),
        "p50_ms": float(np.percentile(a, 50)),
        "p99_ms": float(np.percentile(a, 99)),
        "p999_ms": float(np.percentile(a, 99.9)),
        "mean_ms": float(a.mean()),
    }


def sequential(address: str, klass: str, n: int) -> dict[str, object]:
    reqs = requests_for(klass)
    with grpc.insecure_channel(address) as channel:
        stub = pb_grpc.DecisionServiceStub(channel)
        for r in reqs:  # connection set-up and first-run costs are not what we measure
            stub.Route(r, timeout=30)
        latencies, service = [], []
        for i in range(n):
            started = time.perf_counter()
            reply = stub.Route(reqs[i % len(reqs)], timeout=30)
            latencies.append((time.perf_counter() - started) * 1e3)
            service.append(reply.timings.total_ms)
    return {"client": percentiles(latencies), "service_total": percentiles(service)}


async def _level(
    address: str, klass: str, concurrency: int, seconds: float, connections: int | None
) -> Level:
    reqs = requests_for(klass)
    latencies: list[float] = []
    errors = 0
    count = 1 if connections is None else (connections or concurrency)
    options = None if connections is None else OWN_CONNECTION
    channels = [grpc.aio.insecure_channel(address, options=options) for _ in range(count)]
    try:
        stubs = [pb_grpc.DecisionServiceStub(c) for c in channels]
        await asyncio.gather(*(s.Route(reqs[0], timeout=30) for s in stubs))  # connect first
        stop_at = time.perf_counter() + seconds

        async def worker(offset: int) -> None:
            nonlocal errors
            stub = stubs[offset % len(stubs)]
            i = offset
            while time.perf_counter() < stop_at and len(latencies) < MAX_REQUESTS_PER_LEVEL:
                started = time.perf_counter()
                try:
                    await stub.Route(reqs[i % len(reqs)], timeout=10)
                except grpc.aio.AioRpcError:
                    errors += 1
                else:
                    latencies.append((time.perf_counter() - started) * 1e3)
                i += 1

        began, started_unix, cpu0 = time.perf_counter(), time.time(), time.process_time()
        await asyncio.gather(*(worker(k) for k in range(concurrency)))
        elapsed, ended_unix = time.perf_counter() - began, time.time()
        # every thread of this process (grpc's own included): what the client takes from
        # the cores it shares with the service
        client_cores = (time.process_time() - cpu0) / elapsed
    finally:
        await asyncio.gather(*(c.close(None) for c in channels))
    return {
        "concurrency": concurrency,
        "connections": count,
        "throughput_rps": len(latencies) / elapsed,
        "errors": errors,
        "client_cores": client_cores,
        "started_unix": started_unix,  # the load window, for probes taken meanwhile
        "ended_unix": ended_unix,
        **percentiles(latencies),
    }


AnyLevel = TypeVar("AnyLevel", bound=Mapping[str, Any])


def rise_until_flat(
    levels: Sequence[int], measure: Callable[[int], AnyLevel], until_flat: float | None = None
) -> list[AnyLevel]:
    """``measure`` each level in turn; with ``until_flat``, stop once levels stop adding
    throughput (``FLAT_LEVELS`` in a row below (1 + until_flat) times the best so far).
    Shared by this client's sweep and the h2load one (tools.bench.h2load)."""
    out: list[AnyLevel] = []
    best, flat = 0.0, 0
    for concurrency in levels:
        level = measure(concurrency)
        out.append(level)
        rps = level["throughput_rps"]
        flat = flat + 1 if out[1:] and rps < best * (1.0 + (until_flat or 0.0)) else 0
        if until_flat is not None and flat >= FLAT_LEVELS:
            break
        best = max(best, rps)
    return out


def sweep(
    address: str,
    klass: str,
    levels: list[int],
    seconds: float,
    *,
    connections: int | None = None,
    until_flat: float | None = None,
) -> list[Level]:
    """Rising concurrency; with ``until_flat``, stop once levels stop adding throughput."""
    return rise_until_flat(
        levels,
        lambda concurrency: asyncio.run(_level(address, klass, concurrency, seconds, connections)),
        until_flat,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--address", required=True)
    parser.add_argument("--klass", default="short", choices=sorted(CLASSES))
    parser.add_argument("--sequential", type=int, default=0)
    parser.add_argument("--concurrency", type=int, nargs="*", default=[])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=None, help="0: one per worker")
    parser.add_argument("--until-flat", type=float, default=None, metavar="GAIN")
    args = parser.parse_args()
    host = args.address.rsplit(":", 1)[0]
    if host not in {"127.0.0.1", "localhost", "[::1]"}:
        raise SystemExit("the load generator targets loopback only")
    out: dict[str, object] = {"klass": args.klass}
    if args.sequential:
        out["sequential"] = sequential(args.address, args.klass, args.sequential)
    if args.concurrency:
        out["levels"] = sweep(
            args.address,
            args.klass,
            args.concurrency,
            args.seconds,
            connections=args.connections,
            until_flat=args.until_flat,
        )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
