"""Embed training prompts through the serving encoder class, so routers see what serving sees."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from decision_service.encoder import OnnxEncoder


def embed_texts(encoder: OnnxEncoder, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
    """float32 [len(texts), dim] unit vectors, in ``texts`` order.

    Prompts are batched by similar length, so padding (masked out of the mean pooling,
    hence not changing the result beyond float rounding) costs little. A dynamically
    quantized encoder (int8) is the exception: its activation scales are computed over the
    whole batch, so a prompt's embedding depends on its batch mates. Such encoders embed one
    prompt per run, exactly as the service does with batching off. (A token limit does not
    change this: ``fp32-t64`` batches, ``int8-t64`` does not.)
    """
    if not encoder.identity.batch_independent:
        batch_size = 1
    out = np.zeros((len(texts), encoder.dimension), dtype=np.float32)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        out[index] = encoder.encode([texts[i] for i in index]).embeddings
    return out
