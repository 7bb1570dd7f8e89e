"""The shipped server's decide concurrency side by side, interleaved, so noise hits each alike.

    workers=2 (default)   ROUTEIQ_WORKERS=2: at most two decisions run the encoder at once
    workers=3             three at once
    workers=4             four at once

The shipped server is a sync ``grpc.server``: each call runs start to finish on a pool thread
(``max_in_flight`` + 8 threads), and ``workers`` bounds how many of them decide (run the
encoder) at once; the rest wait for a slot, or answer health and admin calls. On two cores,
more slots than cores only share the cores among more encoder runs; this measures whether
that costs or gains anything.

All three services run at once; every round measures each in turn (the order reversed
every other round): sequential short prompts (p50, p99 from the Python client) and short
prompts at concurrency 8 (throughput). Medians over the rounds, and each one's ratio to
the default. Then, for each, Health/Check every 50 ms on a fresh connection while 32
callers drive Route.
"""

from __future__ import annotations

import statistics
from typing import Any

from tools.local_service import LocalService

from .configs import EncoderConfig
from .plan import Plan
from .replica import health_under_saturation
from .service import client, start_service

DEFAULT_WORKERS = 2
WORKERS = (DEFAULT_WORKERS, 3, 4)
CONCURRENCY = 8
HEALTH_CONCURRENCY = 32  # Route callers while Health/Check is probed


def model_name(workers: int) -> str:
    return f"workers={workers}" + (" (default)" if workers == DEFAULT_WORKERS else "")


def _rounds(addresses: dict[str, str], plan: Plan) -> dict[str, list[dict[str, float]]]:
    names = list(addresses)
    rounds: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    for r in range(plan.model_rounds):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            answer = client(addresses[name], "--klass", "short", "--sequential",
                            str(plan.model_sequential))  # fmt: skip
            seq = answer["sequential"]
            assert isinstance(seq, dict)
            rounds[name].append(
                {"p50_ms": seq["client"]["p50_ms"], "p99_ms": seq["client"]["p99_ms"]}
            )
        for name in order:
            answer = client(addresses[name], "--klass", "short", "--concurrency",
                            str(CONCURRENCY), "--seconds", str(plan.model_seconds))  # fmt: skip
            levels = answer["levels"]
            assert isinstance(levels, list)
            rounds[name][-1]["rps"] = levels[0]["throughput_rps"]
    return rounds


def compare(config: EncoderConfig, plan: Plan) -> dict[str, Any]:
    services: dict[str, LocalService] = {}
    try:
        for workers in WORKERS:
            env = {"ROUTEIQ_WORKERS": str(workers)}
            services[model_name(workers)] = start_service(config, env=env)
        addresses = {name: s.address for name, s in services.items()}
        rounds = _rounds(addresses, plan)
        probes = {
            name: health_under_saturation(address, HEALTH_CONCURRENCY, plan.health_seconds)
            for name, address in addresses.items()
        }
    finally:
        for service in services.values():
            service.stop()
    names = list(addresses)
    keys = ("p50_ms", "p99_ms", "rps")
    medians = {n: {k: statistics.median(r[k] for r in rounds[n]) for k in keys} for n in names}
    base = medians[names[0]]
    models: list[dict[str, Any]] = [
        {
            "model": name,
            "workers": workers,
            **medians[name],
            "p50_ratio": medians[name]["p50_ms"] / base["p50_ms"],
            "p99_ratio": medians[name]["p99_ms"] / base["p99_ms"],
            "rps_ratio": medians[name]["rps"] / base["rps"],
            "rounds": rounds[name],
            "health_saturated": probes[name],
        }
        for name, workers in zip(names, WORKERS, strict=True)
    ]
    return {"config": config.name, "concurrency": CONCURRENCY, "models": models}


def section(cm: dict[str, Any]) -> list[str]:
    out = [
        f"\n== decide concurrency ({cm['config']} encoder, short prompts; interleaved rounds, "
        "medians; ratio to the default) ==",
        f"  {'model':<20} {'seq p50':>9} {'seq p99':>9} {'q/s at ' + str(cm['concurrency']):>10}"
        f"  {'health max':>10} {'failed':>6}",
    ]
    for m in cm["models"]:
        out.append(
            f"  {m['model']:<20} {m['p50_ms']:6.2f} ms {m['p99_ms']:6.2f} ms {m['rps']:10.0f}"
            f"  {m['health_saturated']['health']['max_ms']:7.1f} ms "
            f"{m['health_saturated']['health']['failed']:>6}"
            f"   ({m['p50_ratio']:.2f}x p50, {m['p99_ratio']:.2f}x p99, {m['rps_ratio']:.2f}x q/s)"
        )
    out.append(
        "  workers=N: the shipped server with ROUTEIQ_WORKERS=N (decisions running the encoder "
        "at once); health: Health/Check max and failures while "
        f"{HEALTH_CONCURRENCY} callers drive Route"
    )
    return out
