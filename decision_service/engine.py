"""The decision engine: validate a query, embed it, run the router head, rank candidates.

Everything here is synchronous, CPU-bound and transport-free; the gRPC servicer runs
``decide`` on a worker thread so the event loop never waits on onnxruntime.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .bundle import RouterBundle
from .encoder import OnnxEncoder
from .errors import InvalidRequest, NotReady
from .policy import CandidateIn, ModelIndex, RankedCandidate, rank, selection_reason


@dataclass(frozen=True)
class RequestLimits:
    max_prompt_chars: int = 200_000
    max_candidates: int = 256
    max_id_chars: int = 256


@dataclass(frozen=True)
class RouteQuery:
    candidates: Sequence[CandidateIn]
    prompt: str | None = None
    embedding: Sequence[float] | None = None
    requested_model: str = ""
    user_id_hash: str = ""
    team_id_hash: str = ""
    request_id: str = ""
    cost_weight: float | None = None


@dataclass(frozen=True)
class Timings:
    total_ms: float
    embedding_ms: float
    strategy_ms: float


@dataclass(frozen=True)
class Decision:
    ranked: list[RankedCandidate]
    decision_id: str
    strategy_name: str
    strategy_version: str
    bundle_version: str
    arm: str
    timings: Timings
    selection_reason: str
    prompt_tokens: int
    prompt_truncated: bool


@dataclass(frozen=True)
class _ActiveRouter:
    """A bundle plus what is derived from it, swapped as one reference."""

    bundle: RouterBundle
    index: ModelIndex


class DecisionEngine:
    def __init__(
        self,
        encoder: OnnxEncoder,
        bundle: RouterBundle | None = None,
        limits: RequestLimits | None = None,
    ) -> None:
        self.encoder = encoder
        self.limits = limits or RequestLimits()
        self._active: _ActiveRouter | None = None
        if bundle is not None:
            self.activate(bundle)

    @property
    def bundle(self) -> RouterBundle | None:
        active = self._active
        return active.bundle if active else None

    def activate(self, bundle: RouterBundle) -> RouterBundle | None:
        """Make ``bundle`` the one new requests use; requests in flight keep theirs."""
        previous = self.bundle
        # One reference assignment: atomic under the GIL, so a request sees old or new, never half.
        self._active = _ActiveRouter(bundle, ModelIndex(bundle.manifest.candidates))
        return previous

    def decide(self, query: RouteQuery) -> Decision:
        started = time.perf_counter()
        active = self._active
        if active is None:
            raise NotReady("no valid router bundle is loaded")
        validate(query, self.limits, self.encoder.dimension)
        manifest = active.bundle.manifest

        tokens, truncated = 0, False
        if query.embedding is not None:
            embedding = np.asarray(query.embedding, dtype=np.float32).reshape(1, -1)
        else:
            assert query.prompt is not None  # validate() guarantees one of the two
            encoded = self.encoder.encode([query.prompt])
            embedding = encoded.embeddings
            tokens, truncated = encoded.token_counts[0], encoded.truncated[0]
        embedded = time.perf_counter()

        quality = active.bundle.head.predict(embedding)[0]
        cost_weight = (
            query.cost_weight if query.cost_weight is not None else manifest.default_cost_weight
        )
        ranked = rank(query.candidates, quality, active.index, cost_weight)
        finished = time.perf_counter()
        return Decision(
            ranked=ranked,
            decision_id=str(uuid.uuid4()),
            strategy_name=manifest.strategy_name,
            strategy_version=manifest.bundle_version,
            bundle_version=manifest.bundle_version,
            arm="",
            timings=Timings(
                total_ms=(finished - started) * 1e3,
                embedding_ms=(embedded - started) * 1e3,
                strategy_ms=(finished - embedded) * 1e3,
            ),
            selection_reason=selection_reason(ranked),
            prompt_tokens=tokens,
            prompt_truncated=truncated,
        )


def validate(query: RouteQuery, limits: RequestLimits, dimension: int) -> None:
    """Raise ``InvalidRequest`` naming the first thing the caller must fix."""
    if (query.prompt is None) == (query.embedding is None):
        raise InvalidRequest("send exactly one of prompt or embedding")
    if query.prompt is not None:
        if not query.prompt.strip():
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
