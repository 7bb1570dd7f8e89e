"""What the LiteLLM strategy adds over a bare ``Route`` call, and what the open-breaker path costs.

Starts ``python -m decision_service`` on a free loopback port with the given bundle, then, for
the same prompts (round-robin over a fixed set), measures:

- ``route``: a bare ``DecisionClient.route`` call;
- ``strategy``: ``RouteIQRoutingStrategy.get_available_deployment`` (cooldown read, candidate
  building, the same Route call, mapping back, metrics, telemetry, metadata);
- ``no-rpc``: the strategy's pick with a client that answers at once (its own work alone);
- ``open``: the same pick with the breaker forced open (static fallback, no call).

Prints p50/p99 in milliseconds and the strategy's added p50, and its own work around a real
call (each routed pick's time less the ``Route`` round trip it recorded): the same code as
``no-rpc``, but run after a wait while the service ran, so with cold caches. Bounded: ``--n``
picks each.
Usage: ``python -m tools.bench.gateway_overhead --bundle artifacts/knn [--n 500]``.
``measure(address, model_names)`` takes the same figures against a service already running
(``make bench`` calls it) and returns them.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from .client import percentiles

PROMPTS = [
    "Write a Python function that checks whether a string is a palindrome.",
    "What is the integral of x^2 * sin(x) dx? Show the steps.",
    "hey! how's it going today?",
    "Translate into French: 'The meeting has been moved to Thursday morning.'",
    "Summarize the plot of Romeo and Juliet in two sentences.",
    "Write a SQL query returning the top 5 customers by total order value.",
]


def _p50_p99(samples: list[float]) -> tuple[float, float]:
    figures = percentiles(samples)
    return figures["p50_ms"], figures["p99_ms"]


def _time(fn: Callable[[int], object], n: int) -> list[float]:
    samples = []
    for i in range(n):
        started = time.perf_counter()
        fn(i)
        samples.append((time.perf_counter() - started) * 1000.0)
    return samples


def measure(address: str, model_names: Sequence[str], n: int = 500) -> dict[str, float]:
    """Figures in ms for the four paths against the service at ``address``, ``n`` picks each.

    Keys: ``<path>_p50_ms`` / ``<path>_p99_ms`` for ``route``, ``strategy``, ``no_rpc`` and
    ``open``; ``added_p50_ms`` (strategy minus route); ``around_call_p50_ms`` /
    ``around_call_p99_ms`` (each routed pick less its recorded Route round trip); ``picks``;
    ``candidates``.
    """
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    from gateway_client.breaker import CircuitBreaker
    from gateway_client.client import DecisionClient
    from gateway_client.request import candidate_for
    from gateway_client.settings import GatewayClientSettings
    from gateway_client.strategy import RouteIQRoutingStrategy
    from routeiq.decision.v1 import decision_pb2

    logging.getLogger("LiteLLM").setLevel(logging.ERROR)
    model_list = [
        {
            "model_name": "auto",
            "litellm_params": {"model": f"openai/{name}", "api_key": "x", "mock_response": "ok"},
            "model_info": {"id": f"{name}-1"},
        }
        for name in model_names
    ]
    router = litellm.Router(model_list=model_list)
    settings = GatewayClientSettings(target=address, deadline_ms=1000)
    client = DecisionClient.from_settings(settings)
    try:
        routed = RouteIQRoutingStrategy(router, settings, client)
        opened = CircuitBreaker(1, 3600.0)
        opened.record_failure()
        open_ = RouteIQRoutingStrategy(router, settings, client, breaker=opened)
        candidates = [c for c in (candidate_for(d) for d in model_list) if c is not None]
        requests = [
            decision_pb2.RouteRequest(prompt=p, candidates=candidates, requested_model="auto")
            for p in PROMPTS
        ]
        messages = [[{"role": "user", "content": p}] for p in PROMPTS]

        def bare(i: int) -> object:
            return client.route(requests[i % len(requests)], 1.0)

        around_call: list[float] = []

        def pick(i: int) -> object:
            started = time.perf_counter()
            picked = routed.get_available_deployment(
                "auto", messages[i % len(messages)], request_kwargs={"metadata": {}}
            )
            decision = routed.last_decision
            if decision is not None and decision.latency_ms is not None:
                wall_ms = (time.perf_counter() - started) * 1000.0
                around_call.append(wall_ms - decision.latency_ms)
            return picked

        canned = client.route(requests[0], 5.0)

        class InstantClient:
            """Answers at once: what the strategy costs by itself, with no network."""

            def route(self, *args: object) -> decision_pb2.RouteResponse:
                return canned

            async def route_async(self, *args: object) -> decision_pb2.RouteResponse:
                return canned

        instant = RouteIQRoutingStrategy(router, settings, InstantClient())

        def pick_instant(i: int) -> object:
            return instant.get_available_deployment(
                "auto", messages[i % len(messages)], request_kwargs={"metadata": {}}
            )

        def pick_open(i: int) -> object:
            return open_.get_available_deployment(
                "auto", messages[i % len(messages)], request_kwargs={"metadata": {}}
            )

        for fn in (bare, pick, pick_instant, pick_open):  # warm up connections and code paths
            _time(fn, 30)
        around_call.clear()
        # Interleave rounds so drift on a shared machine hits each path alike.
        paths = {"route": bare, "strategy": pick, "no_rpc": pick_instant, "open": pick_open}
        samples: dict[str, list[float]] = {key: [] for key in paths}
        rounds = 5
        per_round = max(1, n // rounds)
        for _ in range(rounds):
            for key, fn in paths.items():
                samples[key] += _time(fn, per_round)
        picks = per_round * rounds
        assert routed.recorder.stats.routed >= picks and open_.recorder.stats.fallbacks >= picks
    finally:
        client.close()
    figures: dict[str, float] = {"picks": picks, "candidates": len(candidates)}
    for key, values in samples.items():
        figures[f"{key}_p50_ms"], figures[f"{key}_p99_ms"] = _p50_p99(values)
    figures["added_p50_ms"] = figures["strategy_p50_ms"] - figures["route_p50_ms"]
    figures["around_call_p50_ms"], figures["around_call_p99_ms"] = _p50_p99(around_call)
    return figures


def format_figures(figures: dict[str, float]) -> str:
    lines = [
        f"{figures['candidates']:.0f} candidates, {figures['picks']:.0f} picks each, loopback, "
        "prompts of 5-15 words",
        f"{'path':<10}{'p50 ms':>10}{'p99 ms':>10}",
    ]
    for key in ("route", "strategy", "no_rpc", "open"):
        p50, p99 = figures[f"{key}_p50_ms"], figures[f"{key}_p99_ms"]
        lines.append(f"{key.replace('_', '-'):<10}{p50:>10.3f}{p99:>10.3f}")
    lines += [
        f"strategy adds {figures['added_p50_ms']:.3f} ms p50 over the bare Route call",
        f"the strategy's own work (instant client): {figures['no_rpc_p50_ms']:.3f} ms p50",
        f"its work around a real call (pick less its Route round trip): "
        f"{figures['around_call_p50_ms']:.3f} ms p50, {figures['around_call_p99_ms']:.3f} ms p99",
        f"open-breaker pick: {figures['open_p50_ms']:.3f} ms p50",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--bundle", type=Path, default=Path("artifacts/knn"))
    parser.add_argument("--encoder", type=Path, default=None)
    parser.add_argument("--n", type=int, default=500)
    args = parser.parse_args(argv)
    from decision_service.bundle import read_manifest
    from tools.local_service import LocalService

    names = read_manifest(args.bundle).model_names
    extra = ["--log-level", "WARNING"]
    if args.encoder is not None:
        extra += ["--encoder", str(args.encoder)]
    # Cache off, as in `make bench`: the prompts repeat, and a hit would time the cache.
    with LocalService(args.bundle, *extra, env={"ROUTEIQ_EMBEDDING_CACHE_SIZE": "0"}) as service:
        figures = measure(service.address, names, args.n)
    print(format_figures(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
