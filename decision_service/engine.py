"""The decision engine: validate a query, embed it, pick a strategy, rank candidates.

It also holds the loaded bundle versions (the last K stay ready), the strategy registry and
the traffic split. Everything here is synchronous and transport-free; the gRPC servicer
runs ``decide`` on a worker thread so the event loop never waits on onnxruntime.

The hot path takes no lock: every change (a new version, a rollback, a split) builds a new
immutable ``_Routing`` snapshot under a lock and publishes it with one reference
assignment, so a request sees the old or the new routing, never half of each, and a
request in flight finishes on the version it started with.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from .bundle import RouterBundle, reverify
from .embedding_front import EmbeddingFront
from .encoder import EncodedBatch, OnnxEncoder
from .errors import DeadlineTooShort, InvalidRequest, NotReady, UnknownVersion
from .policy import CandidateIn, ModelIndex, RankedCandidate
from .strategies import (
    CHEAPEST,
    FIXED_ORDER,
    ROUND_ROBIN,
    CheapestStrategy,
    FixedOrderStrategy,
    MLStrategy,
    RoundRobinStrategy,
    Strategy,
    StrategyInfo,
    TrafficSplit,
    make_split,
)

PREVIOUS = "previous"


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
    strategy: str = ""


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
    # The query embedding, kept only when telemetry asked for it (never sent to the caller).
    embedding: np.ndarray | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class LoadedVersion:
    bundle: RouterBundle
    strategy: MLStrategy
    loaded_utc: str

    @property
    def version(self) -> str:
        return self.bundle.version


@dataclass(frozen=True)
class _Routing:
    """Everything one decision needs, immutable."""

    strategies: dict[str, Strategy]  # every name a request or split may use
    listed: tuple[StrategyInfo, ...]
    default: Strategy
    default_name: str
    active: LoadedVersion | None
    prices: ModelIndex | None
    split: TrafficSplit | None


class DecisionEngine:
    def __init__(
        self,
        encoder: OnnxEncoder,
        bundle: RouterBundle | None = None,
        limits: RequestLimits | None = None,
        *,
        keep_versions: int = 3,
        static_order: Sequence[str] = (),
        default_strategy: str = "",
        decision_delay_s: float = 0.0,
        keep_embeddings: bool = False,
        front: EmbeddingFront | None = None,
    ) -> None:
        self.encoder = encoder
        # The hot path embeds through the front (cache, batching); bundle validation always
        # uses the encoder itself.
        self.front = front or EmbeddingFront(encoder)
        self.limits = limits or RequestLimits()
        self.keep_versions = keep_versions
        self.default_strategy = default_strategy
        self._delay_s = decision_delay_s
        self._keep_embeddings = keep_embeddings
        self._statics: dict[str, Strategy] = {
            CHEAPEST: CheapestStrategy(),
            FIXED_ORDER: FixedOrderStrategy(static_order),
            ROUND_ROBIN: RoundRobinStrategy(),
        }
        self._lock = threading.RLock()
        self._versions: OrderedDict[str, LoadedVersion] = OrderedDict()  # oldest load first
        self._history: list[str] = []  # activations, oldest first
        self._active: str | None = None
        self._split: TrafficSplit | None = None
        self._routing: _Routing | None = None
        self.decisions_total = 0
        if bundle is not None:
            self.activate(bundle)

    # ---- versions -------------------------------------------------------------------

    @property
    def bundle(self) -> RouterBundle | None:
        routing = self._routing
        return routing.active.bundle if routing and routing.active else None

    @property
    def active_version(self) -> str | None:
        return self._active

    def versions(self) -> list[LoadedVersion]:
        with self._lock:
            return list(self._versions.values())

    def has_version(self, version: str) -> bool:
        return version in self._versions

    def activate(self, bundle: RouterBundle) -> RouterBundle | None:
        """Add ``bundle`` (already validated) and make it the default; returns the previous one."""
        with self._lock:
            previous = self.bundle
            loaded = self._versions.get(bundle.version)
            # Same version re-delivered: the freshly validated object replaces the old one.
            if loaded is None or loaded.bundle is not bundle:
                self._versions[bundle.version] = LoadedVersion(
                    bundle, MLStrategy(bundle), datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                )
            self._set_active(bundle.version)
            return previous

    def rollback(self, to: str) -> tuple[str | None, str]:
        """Re-activate a loaded version (``"previous"`` or a name) after replaying its samples."""
        with self._lock:
            current = self._active
            if to == PREVIOUS:
                target = next(
                    (v for v in reversed(self._history) if v != current and v in self._versions),
                    None,
                )
                if target is None:
                    raise UnknownVersion("no previous version is loaded to roll back to")
            else:
                target = to
                if target not in self._versions:
                    raise UnknownVersion(
                        f"version {to!r} is not loaded; loaded: {list(self._versions)}"
                    )
            # Validated before activation: the bundle must still compute its samples.
            reverify(self._versions[target].bundle, self.encoder)
            self._set_active(target)
            return current, target

    def _set_active(self, version: str) -> None:
        self._active = version
        if version in self._history:
            self._history.remove(version)
        self._history.append(version)
        self._versions.move_to_end(version)
        self._evict()
        self._publish()

    def _evict(self) -> None:
        pinned = {self._active}
        if self._split is not None:
            routing = self._routing
            for arm in self._split.arms:
                strategy = routing.strategies.get(arm.strategy) if routing else None
                if isinstance(strategy, MLStrategy):
                    pinned.add(strategy.bundle.version)
        for version in list(self._versions):
            if len(self._versions) <= self.keep_versions:
                break
            if version not in pinned:
                del self._versions[version]
                if version in self._history:
                    self._history.remove(version)

    # ---- strategies and splits ------------------------------------------------------

    def set_split(self, arms: Sequence[tuple[str, str, float]], sticky_by: str) -> None:
        with self._lock:
            routing = self._require_routing()
            self._split = make_split(arms, sticky_by, routing.strategies)
            # Splits name strategies by key; pin what they resolve to now so a later reload
            # does not silently move an arm ("routeiq-knn" is resolved to a version here).
            if self._split is not None:
                resolved = []
                for arm in self._split.arms:
                    strategy = routing.strategies[arm.strategy]
                    key = strategy.key if isinstance(strategy, MLStrategy) else arm.strategy
                    resolved.append((arm.name, key, arm.weight))
                self._split = make_split(resolved, sticky_by, routing.strategies)
            self._publish()

    @property
    def split(self) -> TrafficSplit | None:
        return self._split

    def strategies(self) -> tuple[tuple[StrategyInfo, ...], str]:
        routing = self._require_routing()
        return routing.listed, routing.default_name

    def active_versions(self) -> list[str]:
        """The default version first, then any other version a split routes to."""
        routing = self._routing
        if routing is None or routing.active is None:
            return []
        found = [routing.active.version]
        for arm in routing.split.arms if routing.split else ():
            strategy = routing.strategies.get(arm.strategy)
            if isinstance(strategy, MLStrategy) and strategy.bundle.version not in found:
                found.append(strategy.bundle.version)
        return found

    def _require_routing(self) -> _Routing:
        routing = self._routing
        if routing is None:
            raise NotReady("no valid router bundle is loaded")
        return routing

    def _publish(self) -> None:
        active = self._versions.get(self._active) if self._active else None
        strategies: dict[str, Strategy] = dict(self._statics)
        listed: list[StrategyInfo] = []
        ordered = [active] if active else []
        ordered += [v for v in reversed(self._versions.values()) if v is not active]
        for loaded in ordered:
            ml = loaded.strategy
            strategies[ml.key] = ml
            strategies.setdefault(loaded.version, ml)
            # The bare name means the active version of that strategy, else the newest one.
            strategies.setdefault(ml.info.name, ml)
            listed.append(ml.info)
        listed += [s.info for s in self._statics.values()]
        if self.default_strategy:
            if self.default_strategy not in strategies:
                raise UnknownVersion(
                    f"default_strategy {self.default_strategy!r} is not a strategy; "
                    f"choose from {sorted(strategies)}"
                )
            default: Strategy | None = strategies[self.default_strategy]
            default_name = self.default_strategy
        else:
            default = active.strategy if active else None
            default_name = active.strategy.key if active else ""
        if default is None:
            self._routing = None
            return
        self._routing = _Routing(
            strategies=strategies,
            listed=tuple(listed),
            default=default,
            default_name=default_name,
            active=active,
            prices=active.strategy.index if active else None,
            split=self._split,
        )

    # ---- the hot path ---------------------------------------------------------------

    def cached_embedding(self, query: RouteQuery) -> EncodedBatch | None:
        """The prompt's embedding if the cache holds it: ``decide(query, cached=...)`` is then
        cheap (~0.2 ms) instead of an encoder run (milliseconds)."""
        if self._delay_s or query.prompt is None:
            return None
        return self.front.cached(query.prompt)

    def decides_quickly(self, query: RouteQuery) -> bool:
        """Whether ``decide(query)`` needs no encoder run at all: the caller sent an embedding."""
        return not self._delay_s and query.prompt is None

    def decide(
        self,
        query: RouteQuery,
        deadline: float | None = None,
        *,
        cached: EncodedBatch | None = None,
    ) -> Decision:
        """Rank the query's candidates; ``deadline`` is a ``time.monotonic()`` instant.

        ``cached``: the prompt's embedding when the caller already has it (``cached_embedding``).
        """
        started = time.perf_counter()
        if deadline is not None and time.monotonic() >= deadline:
            # Queued past its deadline: the caller has given up, so do no work for it.
            raise DeadlineTooShort("the deadline passed while the call waited for a worker")
        routing = self._routing
        if routing is None:
            raise NotReady("no valid router bundle is loaded")
        validate(query, self.limits, self.encoder.dimension)
        decision_id = str(uuid.uuid4())

        arm = ""
        if query.strategy:
            strategy = routing.strategies.get(query.strategy)
            if strategy is None:
                raise InvalidRequest(
                    f"unknown strategy {query.strategy!r}; ListStrategies names the "
                    f"available ones: {sorted(routing.strategies)}"
                )
        elif routing.split is not None:
            chosen = routing.split.choose(
                query.user_id_hash, query.team_id_hash, query.request_id, decision_id
            )
            strategy, arm = routing.strategies[chosen.strategy], chosen.name
        else:
            strategy = routing.default

        tokens, truncated = 0, False
        embedding: np.ndarray | None = None
        if query.embedding is not None:
            embedding = np.asarray(query.embedding, dtype=np.float32).reshape(1, -1)
        elif strategy.needs_embedding or self._keep_embeddings:
            assert query.prompt is not None  # validate() guarantees one of the two
            encoded = cached if cached is not None else self.front.encode([query.prompt])
            embedding = encoded.embeddings
            tokens, truncated = encoded.token_counts[0], encoded.truncated[0]
        embedded = time.perf_counter()

        ranking = strategy.rank(query.candidates, embedding, query.cost_weight, routing.prices)
        if self._delay_s:
            time.sleep(self._delay_s)
        finished = time.perf_counter()
        info = strategy.info
        self.decisions_total += 1  # approximate under threads; a status figure, not billing
        return Decision(
            ranked=ranking.ranked,
            decision_id=decision_id,
            strategy_name=info.name,
            strategy_version=info.version,
            bundle_version=(
                info.bundle_version
                if info.bundle_version
                else (routing.active.version if routing.active else "")
            ),
            arm=arm,
            timings=Timings(
                total_ms=(finished - started) * 1e3,
                embedding_ms=(embedded - started) * 1e3,
                strategy_ms=(finished - embedded) * 1e3,
            ),
            selection_reason=ranking.reason,
            prompt_tokens=tokens,
            prompt_truncated=truncated,
            embedding=embedding[0] if self._keep_embeddings and embedding is not None else None,
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
