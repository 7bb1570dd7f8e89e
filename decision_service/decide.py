"""The decide path: validate a query, pick its strategy, embed the prompt, rank candidates.

Synchronous and transport-free. ``Decider.start`` does everything that is cheap and
returns a ``Decision``, or, when the rest needs an encoder run (milliseconds of CPU), a
``Deferred`` whose ``finish()`` the caller runs once it holds a decide slot (``runner.py``),
so at most one encoder run per core is under way. The routing snapshot is read once, in
``start``: a deferred decision finishes on the version it started with.

Cheap means no encoder run: the caller sent an embedding, the strategy needs none, or the
prompt's embedding is in the cache. The cache is looked up once per request (in ``start``;
a miss is counted by the encode in ``finish``), so an entry evicted in between cannot send
an encoder run past the slots.
"""

from __future__ import annotations

import math
import time
import uuid
from dataclasses import dataclass, replace

import numpy as np

from .domain import Decision, RequestLimits, RouteQuery, Timings
from .embedding_front import EmbeddingFront
from .encoder import EncodedBatch, Encoder
from .errors import DeadlineTooShort, InvalidRequest
from .policy import explore
from .strategies import Strategy
from .versions import Routing, VersionRegistry


@dataclass(frozen=True)
class _Started:
    """What ``start`` settled: the snapshot, the strategy, the ids and the time spent so far."""

    query: RouteQuery
    routing: Routing
    strategy: Strategy
    arm: str
    decision_id: str
    needs_embedding: bool
    started: float  # perf_counter() when start() began
    spent_s: float  # time start() took, counted into the decision's timings


@dataclass(frozen=True)
class Deferred:
    """A decision that needs a decide slot: call ``finish()`` while holding one.

    ``deadline`` is a ``time.monotonic()`` instant: a call that waited for a slot past it
    is refused (``DeadlineTooShort``) before any work is done for it.
    """

    decider: Decider
    work: _Started
    deadline: float | None

    def finish(self) -> Decision:
        if self.deadline is not None and time.monotonic() >= self.deadline:
            # Queued past its deadline: the caller has given up, so do no work for it.
            raise DeadlineTooShort("the deadline passed while the call waited for a decide slot")
        return self.decider._finish(self.work)


class Decider:
    def __init__(
        self,
        registry: VersionRegistry,
        front: EmbeddingFront | None = None,
        limits: RequestLimits | None = None,
        *,
        decision_delay_s: float = 0.0,
        keep_embeddings: bool = False,
        exploration_rate: float = 0.0,
    ) -> None:
        self.registry = registry
        # The hot path embeds through the front (cache, batching); bundle validation always
        # uses the encoder itself.
        self.front = front or EmbeddingFront(registry.encoder)
        self.limits = limits or RequestLimits()
        self._delay_s = decision_delay_s
        self._keep_embeddings = keep_embeddings
        if not 0.0 <= exploration_rate <= 0.2:
            raise ValueError(f"exploration_rate {exploration_rate} must be within [0, 0.2]")
        self.exploration_rate = exploration_rate
        self.decisions_total = 0

    @property
    def encoder(self) -> Encoder:
        return self.registry.encoder

    def start(self, query: RouteQuery, deadline: float | None = None) -> Decision | Deferred:
        """Decide ``query`` now if that needs no encoder run, else hand back the rest.

        Raises NotReady (nothing loaded) and InvalidRequest (naming what to fix) at once.
        """
        started = time.perf_counter()
        routing = self.registry.routing()
        validate(query, self.limits, self.encoder.dimension)
        decision_id = str(uuid.uuid4())
        strategy, arm = routing.choose(query, decision_id)
        needs_embedding = query.embedding is None and (
            strategy.needs_embedding or self._keep_embeddings
        )
        work = _Started(
            query, routing, strategy, arm, decision_id, needs_embedding, started, spent_s=0.0
        )
        if self._delay_s:
            # The debug delay holds the call in flight (drain and overload tests): it holds a
            # slot like the encoder run it stands in for.
            return self._defer(work, deadline)
        cached = None
        if needs_embedding:
            assert query.prompt is not None  # validate() guarantees one of the two
            cached = self.front.cached(query.prompt)
            if cached is None:
                return self._defer(work, deadline)
        return self._rank(work, started, cached)

    def decide(self, query: RouteQuery, deadline: float | None = None) -> Decision:
        """``start`` and finish in this thread (benchmarks, tests, offline use)."""
        step = self.start(query, deadline)
        return step.finish() if isinstance(step, Deferred) else step

    def _defer(self, work: _Started, deadline: float | None) -> Deferred:
        spent = time.perf_counter() - work.started
        return Deferred(self, replace(work, spent_s=spent), deadline)

    def _finish(self, work: _Started) -> Decision:
        resumed = time.perf_counter()
        encoded = None
        if work.needs_embedding:
            assert work.query.prompt is not None
            # Counts the cache hit or miss: start() left the miss uncounted.
            encoded = self.front.encode([work.query.prompt])
        return self._rank(work, resumed, encoded)

    def _rank(self, work: _Started, resumed: float, encoded: EncodedBatch | None) -> Decision:
        """Rank with the embedding in hand; timings count start() and this, not queueing."""
        query = work.query
        tokens, truncated = 0, False
        embedding: np.ndarray | None = None
        if query.embedding is not None:
            embedding = np.asarray(query.embedding, dtype=np.float32).reshape(1, -1)
        elif encoded is not None:
            embedding = encoded.embeddings
            tokens, truncated = encoded.token_counts[0], encoded.truncated[0]
        embedded = time.perf_counter()
        # The snapshot ranks: with a canary it may answer with another strategy and arm
        # (a failed canary decision is answered by the stable version).
        strategy, arm, ranking = work.routing.rank(
            work.strategy, work.arm, query, embedding, work.decision_id
        )
        if self._delay_s:
            time.sleep(self._delay_s)
        finished = time.perf_counter()
        info = strategy.info
        self.decisions_total += 1  # approximate under threads; a status figure, not billing
        # Only an ML ranking is explored: a static strategy's order is the operator's rule.
        rate = self.exploration_rate if info.kind == "ml" else 0.0
        served = explore(ranking.ranked, rate, work.decision_id)
        return Decision(
            ranked=served.ranked,
            decision_id=work.decision_id,
            strategy_name=info.name,
            strategy_version=info.version,
            bundle_version=work.routing.bundle_version_of(info),
            arm=arm,
            timings=Timings(
                total_ms=(work.spent_s + finished - resumed) * 1e3,
                embedding_ms=(work.spent_s + embedded - resumed) * 1e3,
                strategy_ms=(finished - embedded) * 1e3,
            ),
            selection_reason="explored" if served.explored else ranking.reason,
            prompt_tokens=tokens,
            prompt_truncated=truncated,
            propensity=served.propensity,
            explored=served.explored,
            embedding=embedding[0] if self._keep_embeddings and embedding is not None else None,
        )


def validate(query: RouteQuery, limits: RequestLimits, dimension: int) -> None:
    """Raise ``InvalidRequest`` naming the first thing the caller must fix."""
    if (query.prompt is None) == (query.embedding is None):
        raise InvalidRequest("send exactly one of prompt or embedding")
    if query.prompt is not None:
        # isspace() stops at the first visible character; strip() would copy the prompt.
        if not query.prompt or query.prompt.isspace():
            raise InvalidRequest("prompt is empty: send the user's message text")
        if len(query.prompt) > limits.max_prompt_chars:
            raise InvalidRequest(
                f"prompt has {len(query.prompt)} characters, more than the limit of "
                f"{limits.max_prompt_chars}; send the last user message, not the whole history"
            )
    if query.embedding is not None:
        values = query.embedding
        if len(values) != dimension:
            raise InvalidRequest(
                f"embedding has {len(values)} values; the loaded encoder produces {dimension}"
            )
        if not all(math.isfinite(v) for v in values):
            raise InvalidRequest("embedding holds NaN or infinite values")
    if not query.candidates:
        raise InvalidRequest("no candidates: send the deployments the gateway can use now")
    if len(query.candidates) > limits.max_candidates:
        raise InvalidRequest(
            f"{len(query.candidates)} candidates exceed the limit of {limits.max_candidates}"
        )
    seen: set[str] = set()
    for position, cand in enumerate(query.candidates):
        if not cand.id:
            raise InvalidRequest(f"candidate {position} has an empty id")
        if len(cand.id) > limits.max_id_chars:
            raise InvalidRequest(f"candidate {position} id is longer than {limits.max_id_chars}")
        if cand.id in seen:
            raise InvalidRequest(f"candidate id {cand.id!r} appears twice; ids must be unique")
        seen.add(cand.id)
        if not cand.model_name:
            raise InvalidRequest(f"candidate {cand.id!r} has an empty model_name")
        cost = cand.cost_per_million_tokens
        if cost is not None and (not math.isfinite(cost) or cost < 0):
            raise InvalidRequest(
                f"candidate {cand.id!r} cost_per_million_tokens must be finite and >= 0"
            )
    if query.cost_weight is not None and not (
        math.isfinite(query.cost_weight) and 0.0 <= query.cost_weight <= 1.0
    ):
        raise InvalidRequest(f"cost_weight {query.cost_weight} must be within [0, 1]")
    if query.strong_share is not None:
        if query.cost_weight is not None:
            raise InvalidRequest(
                "send one of cost_weight and strong_share, not both: strong_share is turned "
                "into a cost_weight by the bundle's calibration"
            )
        if not (math.isfinite(query.strong_share) and 0.0 <= query.strong_share <= 1.0):
            raise InvalidRequest(
                f"strong_share {query.strong_share} must be within [0, 1] (a share of calls)"
            )
