"""An on-disk embedding cache keyed by encoder identity and text hash.

Embedding a data set of long prompts is the slow part of training (tens of ms a prompt
on two cores), so vectors are kept under ``<root>/<encoder digest>/`` in chunk files
(``chunk-<hash>.npz`` holding ``keys`` (sha256 of the UTF-8 text, hex) and ``vectors``
float32 [n, dim]). A different encoder (weights, tokenizer or token limit) has a different
digest, hence a different folder: a cached vector is only ever reused for the exact encoder
that made it. Chunks are written to a temporary name and renamed, so a crash mid-run
leaves whole chunks only and the next run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from decision_service.encoder import OnnxEncoder
from trainer.embed import embed_texts

log = logging.getLogger(__name__)

CHUNK_ROWS = 512


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    def __init__(self, root: Path, encoder: OnnxEncoder) -> None:
        self.encoder = encoder
        self.directory = Path(root) / encoder.identity.digest
        self.directory.mkdir(parents=True, exist_ok=True)
        self._vectors: dict[str, np.ndarray] = {}
        self._load()

    def _load(self) -> None:
        for path in sorted(self.directory.glob("chunk-*.npz")):
            with np.load(path, allow_pickle=False) as chunk:
                keys, vectors = chunk["keys"], chunk["vectors"]
            if vectors.ndim != 2 or vectors.shape[1] != self.encoder.dimension:
                log.warning("ignoring %s: vectors of shape %s", path, vectors.shape)
                continue
            for key, vector in zip(keys.tolist(), vectors, strict=True):
                self._vectors[str(key)] = vector

    def __len__(self) -> int:
        return len(self._vectors)

    def embed(self, texts: Sequence[str], *, batch_size: int = 32) -> np.ndarray:
        """float32 [len(texts), dim]; only texts not in the cache go through the encoder."""
        keys = [text_key(t) for t in texts]
        missing: dict[str, str] = {}
        for key, text in zip(keys, texts, strict=True):
            if key not in self._vectors:
                missing.setdefault(key, text)
        if missing:
            log.info("embedding %d texts (%d cached)", len(missing), len(texts) - len(missing))
            started = time.perf_counter()
            items = sorted(missing.items(), key=lambda kv: len(kv[1]))
            for start in range(0, len(items), CHUNK_ROWS):
                part = items[start : start + CHUNK_ROWS]
                vectors = embed_texts(self.encoder, [t for _, t in part], batch_size=batch_size)
                self._write_chunk([k for k, _ in part], vectors)
                for (key, _), vector in zip(part, vectors, strict=True):
                    self._vectors[key] = vector
                log.info(
                    "embedded %d/%d in %.0fs",
                    min(start + CHUNK_ROWS, len(items)),
                    len(items),
                    time.perf_counter() - started,
                )
        if not keys:
            return np.zeros((0, self.encoder.dimension), np.float32)
        return np.stack([self._vectors[k] for k in keys]).astype(np.float32)

    def _write_chunk(self, keys: list[str], vectors: np.ndarray) -> None:
        name = hashlib.sha256("".join(keys).encode()).hexdigest()[:16]
        fd, tmp = tempfile.mkstemp(prefix=".chunk-", suffix=".npz", dir=self.directory)
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, keys=np.array(keys), vectors=vectors.astype(np.float32))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.directory / f"chunk-{name}.npz")


def embed_with_cache(
    encoder: OnnxEncoder, texts: Sequence[str], cache_dir: Path | None
) -> np.ndarray:
    """Embed through ``EmbeddingCache`` when ``cache_dir`` is given, else directly."""
    if cache_dir is None:
        return embed_texts(encoder, texts)
    return EmbeddingCache(cache_dir, encoder).embed(texts)
