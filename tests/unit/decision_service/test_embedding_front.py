"""The embedding front: cache and opportunistic batching in front of the real encoder."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from decision_service.embedding_front import EmbeddingFront
from decision_service.encoder import OnnxEncoder

TEXTS = [f"question number {i}: how do I sort a list of {i} numbers in Python?" for i in range(48)]


@pytest.fixture(scope="module")
def encoder(encoder_dir) -> OnnxEncoder:
    return OnnxEncoder(encoder_dir)


@pytest.fixture(scope="module")
def reference(encoder) -> dict[str, np.ndarray]:
    return {t: encoder.encode([t]).embeddings[0] for t in TEXTS}


def test_cache_returns_the_same_embedding_and_counts_hits(encoder, reference):
    front = EmbeddingFront(encoder, cache_size=2)
    first = front.encode([TEXTS[0]])
    again = front.encode([TEXTS[0]])
    np.testing.assert_allclose(again.embeddings[0], reference[TEXTS[0]], atol=1e-6)
    assert again.token_counts == first.token_counts
    assert (front.stats.cache_hits, front.stats.cache_misses) == (1, 1)
    with pytest.raises(ValueError):
        again.embeddings[0][0] = 1.0  # shared between requests, so read-only


def test_cache_is_bounded_lru(encoder):
    front = EmbeddingFront(encoder, cache_size=2)
    for t in (TEXTS[0], TEXTS[1], TEXTS[0], TEXTS[2], TEXTS[0], TEXTS[1]):
        front.encode([t])
    # TEXTS[1] was evicted by TEXTS[2] (TEXTS[0] had been used more recently).
    assert front.stats.cache_hits == 2 and front.stats.cache_misses == 4


def test_concurrent_prompts_share_runs_and_each_gets_its_own_embedding(encoder, reference):
    front = EmbeddingFront(encoder, cache_size=0, max_batch=8, max_parallel=1)
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda t: front.encode([t]), TEXTS))
    for text, got in zip(TEXTS, results, strict=True):
        # Padding in a batch changes float rounding only.
        np.testing.assert_allclose(got.embeddings[0], reference[text], atol=1e-5)
    assert front.stats.prompts_encoded == len(TEXTS)
    assert front.stats.runs < len(TEXTS)  # at least some runs carried several prompts
