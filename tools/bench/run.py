"""`make bench`: latency and throughput of routing, in process, over gRPC, and the seeds' way.

On the default configuration (what ``trainer build`` makes: the int8 encoder with the
128-token limit, ARTIFACTS/encoder) and, beside it, the fp32 reference (ARTIFACTS/fp32, built
once, see configs.py): in-process baseline, gRPC from a separate client process (sequential
p50/p99/p99.9 per prompt class, then rising concurrency until saturation, from the Python
client and from h2load, whose figure the saturation target is judged on), Health/Check
probed while Route is saturated, the LiteLLM strategy's overhead against the running
service, cold start to SERVING and RSS after warm-up, and service RSS with three bundles
loaded. Once: the seeds' approach, encoder batching (fp32), a cache hit, and the process
model (threads, intra-op threads, SO_REUSEPORT processes) on the default configuration,
from which the HPA sizing rule comes, and the decide concurrency (the shipped server with
ROUTEIQ_WORKERS 2, 3 and 4, interleaved). Prints a table, every BRIEF §4 target as
MET / NOT MET (judged on the default configuration), and writes every figure as JSON. Every
figure comes from this one run on this machine, so the ratios compare like with like. Load
goes to loopback only, bounded in requests and seconds.

    python -m tools.bench.run --artifacts artifacts --out bench-results.json [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from . import concurrency_model, configs, inprocess, process_model, replica, report, service
from .plan import Plan


def _step(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message} ...", flush=True)


def measure_config(config: configs.EncoderConfig, plan: Plan) -> dict[str, Any]:
    _step(f"{config.name}: in-process baseline")
    out: dict[str, Any] = {
        "default": config.default,
        "encoder_dir": str(config.encoder_dir),
        "bundle_dir": str(config.bundle_dir),
        "in_process": inprocess.in_process(config, plan),
    }
    _step(f"{config.name}: gRPC from a separate client process, then the LiteLLM strategy")
    out["grpc"] = service.over_grpc(config, plan)
    _step(f"{config.name}: {plan.starts} cold starts (spawn to SERVING, RSS after warm-up)")
    out["startup"] = replica.cold_start(config, plan.starts)
    _step(f"{config.name}: RSS with the encoder and three bundles loaded")
    out["rss"] = service.rss_three_bundles(config)
    return out


def main(argv: list[str] | None = None) -> int:
    # The prompt set repeats, so every figure but cache_hit is taken with the cache off.
    os.environ["ROUTEIQ_EMBEDDING_CACHE_SIZE"] = "0"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--artifacts", type=Path, default=Path("artifacts"))
    parser.add_argument("--out", type=Path, default=Path("bench-results.json"))
    parser.add_argument("--quick", action="store_true", help="smoke run: every path, little load")
    parser.add_argument("--seconds", type=float, default=None, help="per throughput level")
    parser.add_argument("--cache", type=Path, default=Path(".cache/embeddings"))
    parser.add_argument("--skip-seeds", action="store_true")
    parser.add_argument("--skip-process-model", action="store_true")
    parser.add_argument("--skip-concurrency-model", action="store_true")
    args = parser.parse_args(argv)
    plan = (Plan.quick() if args.quick else Plan()).with_seconds(args.seconds)
    started = time.perf_counter()
    results: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count() or 1,
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
        "plan": {"quick": args.quick, "seconds": plan.seconds, "levels": list(plan.levels)},
    }
    found = configs.ensure_built(args.artifacts, args.cache)
    default = found[0]
    results["configs"] = {c.name: measure_config(c, plan) for c in found}
    _step(f"{default.name}: cache hit")
    results["cache_hit"] = inprocess.cache_hit_latency(default)
    fp32 = next((c for c in found if c.name == configs.REFERENCE), None)
    if plan.batched_sweep and fp32 is not None:
        _step("fp32: gRPC with encoder batching on")
        results["grpc_batched_levels_short"] = service.batched_sweep(fp32, plan)
    if not args.skip_seeds:
        _step("the seeds' approach (torch sentence-transformers + scikit-learn)")
        results["seeds"] = inprocess.seeds_approach(args.artifacts, plan)
    if not args.skip_process_model:
        _step(f"process model on {default.name}: threads, intra-op threads, SO_REUSEPORT")
        results["process_model"] = process_model.compare(default, plan)
    if not args.skip_concurrency_model:
        _step(f"decide concurrency on {default.name}: ROUTEIQ_WORKERS 2 (default), 3, 4")
        results["concurrency_model"] = concurrency_model.compare(default, plan)
    report.summarize(results)
    results["wall_s"] = time.perf_counter() - started
    print(report.render(results))
    args.out.write_text(json.dumps(results, indent=2))
    print(f"\nfigures written to {args.out} ({results['wall_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
