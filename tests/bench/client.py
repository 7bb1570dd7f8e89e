"""Load generator for `make bench`: runs in its own process, talks to loopback only.

    python -m tests.bench.client --address 127.0.0.1:PORT --klass short --sequential 300
    python -m tests.bench.client --address ... --klass short --concurrency 1 2 4 8 --seconds 5

Every loop is bounded by a request count and a time limit. Prints one JSON document.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import grpc
import numpy as np

from decision_service.api.v1 import decision_pb2 as pb
from decision_service.api.v1 import decision_pb2_grpc as pb_grpc

from .prompts import CLASSES

MODELS = ["gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet", "mistral-small", "qwen2.5-math-72b"]
MAX_REQUESTS_PER_LEVEL = 20_000


def requests_for(klass: str) -> list[pb.RouteRequest]:
    candidates = [pb.Candidate(id=f"{m}-1", model_name=m) for m in MODELS]
    return [pb.RouteRequest(prompt=p, candidates=candidates) for p in CLASSES[klass]]


def percentiles(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms)
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


async def _level(address: str, klass: str, concurrency: int, seconds: float) -> dict[str, object]:
    reqs = requests_for(klass)
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.DecisionServiceStub(channel)
        await stub.Route(reqs[0], timeout=30)

        async def worker(offset: int) -> None:
            nonlocal errors
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

        began = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(concurrency)))
        elapsed = time.perf_counter() - began
    return {
        "concurrency": concurrency,
        "throughput_rps": len(latencies) / elapsed,
        "errors": errors,
        **percentiles(latencies),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--address", required=True)
    parser.add_argument("--klass", default="short", choices=sorted(CLASSES))
    parser.add_argument("--sequential", type=int, default=0)
    parser.add_argument("--concurrency", type=int, nargs="*", default=[])
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    host = args.address.rsplit(":", 1)[0]
    if host not in {"127.0.0.1", "localhost", "[::1]"}:
        raise SystemExit("the load generator targets loopback only")
    out: dict[str, object] = {"klass": args.klass}
    if args.sequential:
        out["sequential"] = sequential(args.address, args.klass, args.sequential)
    if args.concurrency:
        out["levels"] = [
            asyncio.run(_level(args.address, args.klass, c, args.seconds)) for c in args.concurrency
        ]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
