"""Routing strategies: an ML one per loaded bundle, and static ones that need no model.

Every strategy ranks exactly the request's candidates, best first. Static strategies exist
so an operator can compare the routers against simple baselines in a traffic split and
fall back to something predictable without redeploying.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

from .bundle import RouterBundle
from .domain import CandidateIn, RankedCandidate, StrategyInfo, TrafficArm
from .errors import BundleRefused, InvalidRequest, NotCalibrated, UnknownVersion
from .policy import ModelIndex, rank, selection_reason

CHEAPEST = "cheapest"
FIXED_ORDER = "fixed-order"
ROUND_ROBIN = "round-robin"
STATIC_VERSION = "1"
StickyBy = Literal["user", "team", "request"]
STICKY_CHOICES: tuple[str, ...] = ("user", "team", "request")


@dataclass(frozen=True)
class Ranking:
    ranked: list[RankedCandidate]
    reason: str


class Strategy(Protocol):
    @property
    def info(self) -> StrategyInfo: ...

    @property
    def needs_embedding(self) -> bool: ...

    def rank(
        self,
        candidates: Sequence[CandidateIn],
        embedding: np.ndarray | None,
        cost_weight: float | None,
        prices: ModelIndex | None,
        strong_share: float | None = None,
    ) -> Ranking: ...


class MLStrategy:
    """Ranks by the bundle's predicted quality minus the cost penalty (see ``policy``).

    The weight of a request: its ``cost_weight``; else its ``strong_share`` through this
    bundle's calibration table; else the service's ``strong_share`` the same way; else the
    bundle's ``default_cost_weight``. A service share with a bundle that has no table is
    refused at load (``BundleRefused``): serving some other share than the operator set
    would break the budget silently.
    """

    needs_embedding = True

    def __init__(self, bundle: RouterBundle, strong_share: float | None = None) -> None:
        self.bundle = bundle
        self.index = ModelIndex(bundle.manifest.candidates)
        manifest = bundle.manifest
        self.default_weight = manifest.default_cost_weight
        if strong_share is not None:
            if manifest.strong_share_calibration is None:
                raise BundleRefused(
                    f"bundle {manifest.bundle_version} has no strong_share_calibration, so it "
                    f"cannot serve the configured strong_share {strong_share}; retrain it with "
                    "a trainer that calibrates, or unset ROUTEIQ_STRONG_SHARE"
                )
            self.default_weight = manifest.strong_share_calibration.cost_weight_for(strong_share)
        self.info = StrategyInfo(
            name=manifest.strategy_name,
            version=manifest.bundle_version,
            kind="ml",
            capabilities=("prompt", "embedding", "cost_aware", "quality_prediction"),
            bundle_version=manifest.bundle_version,
            models=tuple(manifest.model_names),
        )

    @property
    def key(self) -> str:
        return f"{self.info.name}@{self.info.version}"

    def rank(
        self,
        candidates: Sequence[CandidateIn],
        embedding: np.ndarray | None,
        cost_weight: float | None,
        prices: ModelIndex | None,
        strong_share: float | None = None,
    ) -> Ranking:
        assert embedding is not None  # the engine embeds for strategies that need it
        weight = self.weight(cost_weight, strong_share)
        quality = self.bundle.head.predict(embedding)[0]
        ranked = rank(candidates, quality, self.index, weight)
        return Ranking(ranked, selection_reason(ranked))

    def weight(self, cost_weight: float | None, strong_share: float | None) -> float:
        """The cost weight a request ranks with (see the class docstring)."""
        if cost_weight is not None:
            return cost_weight
        if strong_share is None:
            return self.default_weight
        table = self.bundle.manifest.strong_share_calibration
        if table is None:
            raise NotCalibrated(
                f"bundle {self.info.version} has no strong_share_calibration: send cost_weight "
                "instead of strong_share, or serve a bundle retrained with calibration"
            )
        return table.cost_weight_for(strong_share)


def _static(ranked: list[RankedCandidate], reason: str) -> Ranking:
    return Ranking(ranked, "only_candidate" if len(ranked) == 1 else reason)


def _price(cand: CandidateIn, prices: ModelIndex | None) -> float | None:
    if prices is None:
        return cand.cost_per_million_tokens
    return prices.price(cand)


class CheapestStrategy:
    """Cheapest price first (request price, else the active bundle's); unpriced ones last."""

    needs_embedding = False
    info = StrategyInfo(CHEAPEST, STATIC_VERSION, "static", ("prompt", "embedding", "cost_aware"))

    def rank(
        self,
        candidates: Sequence[CandidateIn],
        embedding: np.ndarray | None,
        cost_weight: float | None,
        prices: ModelIndex | None,
        strong_share: float | None = None,
    ) -> Ranking:
        priced = [(_price(c, prices), i, c) for i, c in enumerate(candidates)]
        priced.sort(key=lambda t: (t[0] is None, t[0] if t[0] is not None else 0.0, t[1]))
        n = len(priced)
        ranked = [
            RankedCandidate(c.id, c.model_name, float(n - pos), 0.0, cost or 0.0, cost is not None)
            for pos, (cost, _, c) in enumerate(priced)
        ]
        return _static(ranked, "cheapest")


class FixedOrderStrategy:
    """The configured model order (``static_order``); other models after, in request order."""

    needs_embedding = False

    def __init__(self, order: Sequence[str]) -> None:
        self.order = {name: i for i, name in reversed(list(enumerate(order)))}
        self.info = StrategyInfo(
            FIXED_ORDER, STATIC_VERSION, "static", ("prompt", "embedding"), models=tuple(order)
        )

    def _position(self, model_name: str) -> int | None:
        for name in (model_name, model_name.rsplit("/", 1)[-1]):
            if name in self.order:
                return self.order[name]
        return None

    def rank(
        self,
        candidates: Sequence[CandidateIn],
        embedding: np.ndarray | None,
        cost_weight: float | None,
        prices: ModelIndex | None,
        strong_share: float | None = None,
    ) -> Ranking:
        keyed = [(self._position(c.model_name), i, c) for i, c in enumerate(candidates)]
        keyed.sort(key=lambda t: (t[0] is None, t[0] if t[0] is not None else 0, t[1]))
        n = len(keyed)
        ranked = [
            RankedCandidate(
                c.id, c.model_name, float(n - pos), 0.0, _price(c, prices) or 0.0, p is not None
            )
            for pos, (p, _, c) in enumerate(keyed)
        ]
        return _static(ranked, "fixed_order")


class RoundRobinStrategy:
    """Rotates which candidate comes first, request by request (per replica)."""

    needs_embedding = False
    info = StrategyInfo(ROUND_ROBIN, STATIC_VERSION, "static", ("prompt", "embedding"))

    def __init__(self) -> None:
        # next() on itertools.count is atomic under the GIL: no lock on the hot path.
        self._counter = itertools.count()

    def rank(
        self,
        candidates: Sequence[CandidateIn],
        embedding: np.ndarray | None,
        cost_weight: float | None,
        prices: ModelIndex | None,
        strong_share: float | None = None,
    ) -> Ranking:
        n = len(candidates)
        start = next(self._counter) % n
        order = [candidates[(start + k) % n] for k in range(n)]
        ranked = [
            RankedCandidate(c.id, c.model_name, float(n - pos), 0.0, _price(c, prices) or 0.0, True)
            for pos, c in enumerate(order)
        ]
        return _static(ranked, "round_robin")


@dataclass(frozen=True)
class TrafficSplit:
    """Weighted arms; a caller's hash picks the arm, so the same caller stays on it."""

    arms: tuple[TrafficArm, ...]
    sticky_by: StickyBy = "user"
    _bounds: tuple[float, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        total = sum(a.weight for a in self.arms)
        cumulative = list(itertools.accumulate(a.weight / total for a in self.arms))
        object.__setattr__(self, "_bounds", tuple(cumulative))

    def choose(self, user: str, team: str, request: str, fallback_key: str) -> TrafficArm:
        key = {"user": user, "team": team, "request": request}[self.sticky_by] or fallback_key
        # sha256 rather than hash(): stable across processes, so every replica agrees.
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()
        point = int.from_bytes(digest[:8], "big") / 2**64
        for arm, bound in zip(self.arms, self._bounds, strict=True):
            if point < bound:
                return arm
        return self.arms[-1]


def make_split(
    arms: Sequence[tuple[str, str, float]], sticky_by: str, known: Mapping[str, object]
) -> TrafficSplit | None:
    """Validate a split (arm name, strategy, weight); None clears it."""
    if not arms:
        return None
    if sticky_by not in STICKY_CHOICES:
        raise InvalidRequest(f"sticky_by {sticky_by!r} must be one of {list(STICKY_CHOICES)}")
    names: set[str] = set()
    built = []
    for name, strategy, weight in arms:
        if not name:
            raise InvalidRequest("every traffic arm needs a name")
        if name in names:
            raise InvalidRequest(f"traffic arm {name!r} appears twice")
        names.add(name)
        if not (math.isfinite(weight) and weight > 0):
            raise InvalidRequest(f"traffic arm {name!r} weight must be finite and > 0")
        if strategy not in known:
            raise UnknownVersion(
                f"traffic arm {name!r} names strategy {strategy!r}, which is not loaded; "
                f"choose from {sorted(known)}"
            )
        built.append(TrafficArm(name, strategy, float(weight)))
    return TrafficSplit(tuple(built), sticky_by)  # type: ignore[arg-type]
