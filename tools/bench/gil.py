"""Does onnxruntime release the GIL during ``run``? And do two threads beat one?

    python -m tools.bench.gil --encoder artifacts/encoder

A pure-Python counter thread runs while the main thread runs the encoder on a long prompt:
if the GIL were held during ``run`` the counter could not advance. Then the same number of
encoder runs is timed on one thread and split over two.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from decision_service.encoder import OnnxEncoder

from .prompts import CLASSES


def counter_progress(encoder: OnnxEncoder, text: str, runs: int) -> dict[str, float]:
    """Python-level increments per ms, with and without encoder runs in another thread."""
    stop = threading.Event()
    count = 0

    def spin() -> None:
        nonlocal count
        while not stop.is_set():
            count += 1

    thread = threading.Thread(target=spin)
    thread.start()
    time.sleep(0.2)
    c0, t0 = count, time.perf_counter()
    time.sleep(0.5)
    idle_rate = (count - c0) / ((time.perf_counter() - t0) * 1e3)
    c0, t0 = count, time.perf_counter()
    for _ in range(runs):
        encoder.encode([text])
    busy_rate = (count - c0) / ((time.perf_counter() - t0) * 1e3)
    stop.set()
    thread.join()
    return {"counter_per_ms_idle": idle_rate, "counter_per_ms_during_runs": busy_rate}


def thread_scaling(encoder: OnnxEncoder, texts: list[str], runs: int) -> dict[str, float]:
    def work(n: int) -> None:
        for i in range(n):
            encoder.encode([texts[i % len(texts)]])

    t0 = time.perf_counter()
    work(runs)
    one = runs / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(work, [runs // 2, runs - runs // 2]))
    two = runs / (time.perf_counter() - t0)
    return {"one_thread_qps": one, "two_threads_qps": two, "speedup": two / one}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--encoder", type=Path, default=Path("artifacts/encoder"))
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    encoder = OnnxEncoder(args.encoder, intra_op_threads=1)
    out = {
        "gil": counter_progress(encoder, CLASSES["long_code"][0], 20),
        "short": thread_scaling(encoder, CLASSES["short"], args.runs),
        "paragraph": thread_scaling(encoder, CLASSES["paragraph"], args.runs // 4),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
