"""What stands between a request and the encoder: a bounded cache and opportunistic batching.

*Cache.* System prompts, retries and templated requests repeat. Embeddings are cached in a
bounded LRU keyed by the sha256 of the text (never the text itself) within one encoder; a
different encoder is a different ``EmbeddingFront``, so keys cannot mix across encoders.

*Batching.* On small machines the encoder is bound by reading its weights from memory, so
one run over eight prompts costs little more than a run over one. Threads that arrive while
a run is in progress queue their prompt; when the run ends, the thread that finished it
takes everything queued (up to ``max_batch``) into the next run. Nobody waits for a batch
to fill: at low load every run holds one prompt and latency is unchanged; under load,
requests coalesce by themselves.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .encoder import EncodedBatch, Encoder


@dataclass
class _Pending:
    text: str
    wake: threading.Event = field(default_factory=threading.Event)
    ready: bool = False  # the result (or error) is set
    promoted: bool = False  # asked to run the next batch
    embedding: np.ndarray | None = None
    tokens: int = 0
    truncated: bool = False
    error: BaseException | None = None


@dataclass
class FrontStats:
    cache_hits: int = 0
    cache_misses: int = 0
    runs: int = 0
    prompts_encoded: int = 0


class EmbeddingFront:
    def __init__(
        self,
        encoder: Encoder,
        *,
        cache_size: int = 0,
        max_batch: int = 1,
        max_parallel: int = 2,
    ) -> None:
        self.encoder = encoder
        self.cache_size = cache_size
        self.max_batch = max(1, max_batch) if encoder.identity.batch_independent else 1
        self.max_parallel = max(1, max_parallel)
        self.stats = FrontStats()
        self._cache: OrderedDict[bytes, tuple[np.ndarray, int, bool]] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._queue: list[_Pending] = []
        self._queue_lock = threading.Lock()
        self._running = 0  # encoder runs in progress, at most max_parallel

    def encode(self, texts: Sequence[str]) -> EncodedBatch:
        """Same contract as ``OnnxEncoder.encode``."""
        if len(texts) != 1:
            return self.encoder.encode(texts)
        text = texts[0]
        key = _key(text)
        cached = self._lookup(key, count_miss=True)
        if cached is not None:
            return cached
        pending = self._encode_one(text)
        assert pending.embedding is not None
        self._store(key, (pending.embedding, pending.tokens, pending.truncated))
        return EncodedBatch(pending.embedding[None, :], [pending.tokens], [pending.truncated])

    def cached(self, text: str) -> EncodedBatch | None:
        """``encode([text])`` if the cache holds it (a hit), else None (the miss is counted by
        the ``encode`` that follows)."""
        return self._lookup(_key(text), count_miss=False)

    # ---- cache ----------------------------------------------------------------------

    def _lookup(self, key: bytes, *, count_miss: bool) -> EncodedBatch | None:
        if self.cache_size <= 0:
            return None
        with self._cache_lock:
            hit = self._cache.get(key)
            if hit is None:
                if count_miss:
                    self.stats.cache_misses += 1
                return None
            self._cache.move_to_end(key)
            self.stats.cache_hits += 1
        embedding, tokens, truncated = hit
        return EncodedBatch(embedding[None, :], [tokens], [truncated])

    def _store(self, key: bytes, value: tuple[np.ndarray, int, bool]) -> None:
        if self.cache_size <= 0:
            return
        value[0].setflags(write=False)  # shared between requests: nobody may change it
        with self._cache_lock:
            self._cache[key] = value
            self._cache.move_to_end(key)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)

    # ---- batching -------------------------------------------------------------------

    def _encode_one(self, text: str) -> _Pending:
        mine = _Pending(text)
        if self.max_batch == 1:
            self._run([mine])
        else:
            with self._queue_lock:
                self._queue.append(mine)
                lead = self._running < self.max_parallel
                if lead:
                    self._running += 1
            while True:
                if lead:
                    self._lead()
                    lead = False
                if mine.ready:
                    break
                mine.wake.wait()
                with self._queue_lock:
                    mine.wake.clear()
                    lead, mine.promoted = mine.promoted, False
        if mine.error is not None:
            raise mine.error
        return mine

    def _lead(self) -> None:
        """Run one batch from the head of the queue, then hand the run slot on."""
        with self._queue_lock:
            batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
        if batch:
            self._run(batch)
        with self._queue_lock:
            successor = next((p for p in self._queue if not p.promoted), None)
            if successor is None:
                self._running -= 1
            else:
                successor.promoted = True
                successor.wake.set()

    def _run(self, batch: list[_Pending]) -> None:
        try:
            encoded = self.encoder.encode([p.text for p in batch])
        except Exception as exc:  # every waiter learns of it, not just the one running it
            for p in batch:
                p.error, p.ready = exc, True
                p.wake.set()
            return
        self.stats.runs += 1
        self.stats.prompts_encoded += len(batch)
        for row, p in enumerate(batch):
            p.embedding = encoded.embeddings[row].copy()
            p.tokens = encoded.token_counts[row]
            p.truncated = encoded.truncated[row]
            p.ready = True
            p.wake.set()


def _key(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()
