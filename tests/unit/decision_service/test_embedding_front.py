"""The embedding front: cache and opportunistic batching in front of the encoder."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from decision_service.embedding_front import EmbeddingFront

from ..fakes import FakeEncoder

TEXTS = [f"question number {i}: how do I sort a list of {i} numbers in Python?" for i in range(48)]


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    encoder = FakeEncoder()
    return {t: encoder.encode([t]).embeddings[0] for t in TEXTS}


def test_cache_returns_the_same_embedding_and_counts_hits(encoder, reference):
    front = EmbeddingFront(encoder, cache_size=2)
    first = front.encode([TEXTS[0]])
    again = front.encode([TEXTS[0]])
    np.testing.assert_array_equal(again.embeddings[0], reference[TEXTS[0]])
    assert again.token_counts == first.token_counts
    assert (front.stats.cache_hits, front.stats.cache_misses) == (1, 1)
    assert encoder.runs == 1  # the hit did not run the encoder
    with pytest.raises(ValueError):
        again.embeddings[0][0] = 1.0  # shared between requests, so read-only


def test_cache_is_bounded_lru(encoder):
    front = EmbeddingFront(encoder, cache_size=2)
    for t in (TEXTS[0], TEXTS[1], TEXTS[0], TEXTS[2], TEXTS[0], TEXTS[1]):
        front.encode([t])
    # TEXTS[1] was evicted by TEXTS[2] (TEXTS[0] had been used more recently).
    assert front.stats.cache_hits == 2 and front.stats.cache_misses == 4
    assert encoder.runs == 4


def test_cached_peeks_without_counting_a_miss_and_counts_a_hit(encoder, reference):
    front = EmbeddingFront(encoder, cache_size=4)
    assert front.cached(TEXTS[0]) is None
    assert (front.stats.cache_hits, front.stats.cache_misses) == (0, 0)  # encode() counts it
    front.encode([TEXTS[0]])
    hit = front.cached(TEXTS[0])
    assert hit is not None
    np.testing.assert_array_equal(hit.embeddings[0], reference[TEXTS[0]])
    assert (front.stats.cache_hits, front.stats.cache_misses) == (1, 1)


def test_no_cache_means_every_prompt_is_encoded(encoder):
    front = EmbeddingFront(encoder, cache_size=0)
    front.encode([TEXTS[0]])
    front.encode([TEXTS[0]])
    assert front.cached(TEXTS[0]) is None
    assert encoder.runs == 2 and front.stats.cache_hits == front.stats.cache_misses == 0


def test_concurrent_prompts_share_runs_and_each_gets_its_own_embedding(reference):
    encoder = FakeEncoder(delay_s=0.005)  # runs take time, so later callers queue behind them
    front = EmbeddingFront(encoder, cache_size=0, max_batch=8, max_parallel=1)
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda t: front.encode([t]), TEXTS))
    for text, got in zip(TEXTS, results, strict=True):
        np.testing.assert_array_equal(got.embeddings[0], reference[text])
    assert front.stats.prompts_encoded == len(TEXTS)
    assert front.stats.runs < len(TEXTS)  # at least some runs carried several prompts
    assert max(encoder.batch_sizes) <= 8


def test_an_int8_encoder_embeds_one_prompt_per_run():
    # Dynamically quantized graphs are not batch-independent: batching would change results.
    encoder = FakeEncoder(variant="int8", delay_s=0.002)
    front = EmbeddingFront(encoder, max_batch=8, max_parallel=1)
    assert front.max_batch == 1
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda t: front.encode([t]), TEXTS[:16]))
    assert set(encoder.batch_sizes) == {1}


def test_an_encoder_failure_reaches_every_caller_of_the_run():
    encoder = FakeEncoder(delay_s=0.005)
    encoder.fail_with = RuntimeError("onnxruntime failed")
    front = EmbeddingFront(encoder, max_batch=8, max_parallel=1)

    def attempt(text: str) -> str:
        try:
            front.encode([text])
        except RuntimeError as exc:
            return str(exc)
        return "no error"

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(attempt, TEXTS[:8])) == {"onnxruntime failed"}
    assert front.stats.runs == 0
