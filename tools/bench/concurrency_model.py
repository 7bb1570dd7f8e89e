"""Serving concurrency models side by side, interleaved, so machine noise hits each alike.

    aio (shipped)   grpc.aio server: Route parsed on the event loop, the encoder run on a
                    worker thread (workers=2); health and admin on the loop
    sync 68/2       tools.bench.sync_prototype: a sync grpc.server, each call start to finish
                    on one of 68 pool threads, at most 2 deciding at once (the probe-safe
                    design: threads stay free for health)
    sync 4/4        4 pool threads, all may decide (health can queue behind the encoder)
    sync 2/2        2 pool threads, both may decide

All run at once; every round measures each in turn (the order reversed every other round):
sequential short prompts (p50, p99 from the client) and short prompts at concurrency 8
(throughput). Medians over the rounds, and each model's ratio to the shipped one. Then, for
each, Health/Check every 50 ms on a fresh connection while 32 callers drive Route.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from typing import Any

from decision_service.probe import wait_serving
from tools.local_service import LocalService, free_loopback_port

from .configs import EncoderConfig
from .plan import Plan
from .replica import health_under_saturation
from .service import REPO, client, start_service

# (pool threads, decisions at once): a pool above its slots keeps threads free for probes.
SYNC_MODELS = ((68, 2), (4, 4), (2, 2))
CONCURRENCY = 8
HEALTH_CONCURRENCY = 32  # Route callers while Health/Check is probed


def _start_sync(
    config: EncoderConfig, pool: int, slots: int
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_loopback_port()
    command = [
        sys.executable, "-m", "tools.bench.sync_prototype", "--bundle", str(config.bundle_dir),
        *config.service_args(), "--port", str(port), "--pool", str(pool),
        "--decide-slots", str(slots),
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=REPO, env=dict(os.environ))
    address = f"127.0.0.1:{port}"
    try:
        wait_serving(address, 120, alive=lambda: process.poll() is None)
    except BaseException:
        process.kill()
        raise
    return process, address


def compare(config: EncoderConfig, plan: Plan) -> dict[str, Any]:
    shipped: LocalService | None = None
    syncs: list[subprocess.Popen[bytes]] = []
    addresses: dict[str, str] = {}
    try:
        shipped = start_service(config)
        addresses["aio (shipped)"] = shipped.address
        for pool, slots in SYNC_MODELS:
            process, address = _start_sync(config, pool, slots)
            syncs.append(process)
            addresses[f"sync {pool}/{slots}"] = address
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
        probes = {
            name: health_under_saturation(address, HEALTH_CONCURRENCY, plan.health_seconds)
            for name, address in addresses.items()
        }
    finally:
        if shipped is not None:
            shipped.stop()
        for process in syncs:
            process.terminate()
            process.wait(30)
    keys = ("p50_ms", "p99_ms", "rps")
    medians = {n: {k: statistics.median(r[k] for r in rounds[n]) for k in keys} for n in names}
    base = medians[names[0]]
    models: list[dict[str, Any]] = [
        {
            "model": name,
            **medians[name],
            "p50_ratio": medians[name]["p50_ms"] / base["p50_ms"],
            "p99_ratio": medians[name]["p99_ms"] / base["p99_ms"],
            "rps_ratio": medians[name]["rps"] / base["rps"],
            "rounds": rounds[name],
            "health_saturated": probes[name],
        }
        for name in names
    ]
    return {"config": config.name, "concurrency": CONCURRENCY, "models": models}


def section(cm: dict[str, Any]) -> list[str]:
    out = [
        f"\n== concurrency model ({cm['config']} encoder, short prompts; interleaved rounds, "
        "medians; ratio to the shipped aio server) ==",
        f"  {'model':<15} {'seq p50':>9} {'seq p99':>9} {'q/s at ' + str(cm['concurrency']):>10}"
        f"  {'health max':>10} {'failed':>6}",
    ]
    for m in cm["models"]:
        out.append(
            f"  {m['model']:<15} {m['p50_ms']:6.2f} ms {m['p99_ms']:6.2f} ms {m['rps']:10.0f}"
            f"  {m['health_saturated']['health']['max_ms']:7.1f} ms "
            f"{m['health_saturated']['health']['failed']:>6}"
            f"   ({m['p50_ratio']:.2f}x p50, {m['p99_ratio']:.2f}x p99, {m['rps_ratio']:.2f}x q/s)"
        )
    out.append(
        "  sync P/S: a sync grpc.server, P pool threads, S deciding at once; no interceptors, "
        "no AdminService (tools/bench/sync_prototype.py); health: Health/Check max and failures "
        f"while {HEALTH_CONCURRENCY} callers drive Route"
    )
    return out
