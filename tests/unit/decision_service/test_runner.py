"""The runner: encoder work goes to worker threads, cheap decisions are made on the loop."""

from __future__ import annotations

import asyncio
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from decision_service.bundle import load_bundle
from decision_service.embedding_front import EmbeddingFront
from decision_service.encoder import OnnxEncoder
from decision_service.engine import DecisionEngine, RouteQuery
from decision_service.errors import InvalidRequest
from decision_service.metrics import ServiceMetrics
from decision_service.policy import CandidateIn
from decision_service.runner import RouteRunner

CANDIDATES = [CandidateIn("a", "gpt-4o"), CandidateIn("b", "gpt-4o-mini")]


class CountingExecutor(ThreadPoolExecutor):
    def __init__(self) -> None:
        super().__init__(max_workers=2)
        self.submitted = 0

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.submitted += 1
        return super().submit(fn, *args, **kwargs)


@pytest.fixture(scope="module")
def encoder(encoder_dir: Path) -> OnnxEncoder:
    return OnnxEncoder(encoder_dir)


def make_runner(encoder: OnnxEncoder, bundle_dir: Path, **engine_kwargs: Any) -> RouteRunner:
    engine = DecisionEngine(
        encoder,
        load_bundle(bundle_dir, encoder),
        front=EmbeddingFront(encoder, cache_size=16),
        **engine_kwargs,
    )
    return RouteRunner(
        engine, CountingExecutor(), ServiceMetrics(), max_in_flight=8, min_deadline_s=0.001
    )


def route(runner: RouteRunner, query: RouteQuery) -> Any:
    return asyncio.run(runner.route(query, 5.0))


def test_a_cached_prompt_is_decided_without_a_worker_and_ranks_the_same(encoder, knn_bundle_dir):
    runner = make_runner(encoder, knn_bundle_dir)
    executor = runner.executor
    assert isinstance(executor, CountingExecutor)
    query = RouteQuery(candidates=CANDIDATES, prompt="Sort a list in Python")

    first = route(runner, query)
    assert executor.submitted == 1  # a miss runs the encoder on a worker
    again = route(runner, query)
    assert executor.submitted == 1  # the hit did not leave the loop
    assert [c.id for c in again.ranked] == [c.id for c in first.ranked]
    assert [c.score for c in again.ranked] == pytest.approx([c.score for c in first.ranked])

    other = RouteQuery(candidates=CANDIDATES, prompt="Prove that sqrt(2) is irrational")
    route(runner, other)
    assert executor.submitted == 2


def test_a_given_embedding_is_decided_on_the_loop(encoder, knn_bundle_dir):
    runner = make_runner(encoder, knn_bundle_dir)
    embedding = encoder.encode(["Sort a list in Python"]).embeddings[0]
    decision = route(
        runner, RouteQuery(candidates=CANDIDATES, embedding=embedding.astype(np.float32).tolist())
    )
    assert decision.ranked and runner.executor.submitted == 0  # type: ignore[attr-defined]


def test_errors_on_the_quick_path_are_the_same_errors(encoder, knn_bundle_dir):
    runner = make_runner(encoder, knn_bundle_dir)
    with pytest.raises(InvalidRequest, match="the loaded encoder produces 384"):
        route(runner, RouteQuery(candidates=CANDIDATES, embedding=[0.1, 0.2]))


def test_a_debug_delay_always_goes_to_a_worker(encoder, knn_bundle_dir):
    # The delay holds calls in flight for drain/overload tests; it must never block the loop.
    runner = make_runner(encoder, knn_bundle_dir, decision_delay_s=0.001)
    query = RouteQuery(candidates=CANDIDATES, prompt="Sort a list in Python")
    route(runner, query)
    route(runner, query)
    assert runner.executor.submitted == 2  # type: ignore[attr-defined]
