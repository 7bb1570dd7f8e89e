"""The version registry: loaded bundle versions, the strategies and the traffic split.

The last ``keep_versions`` validated bundles stay loaded so a rollback is instant. Every
change (a new version, a rollback, a split) builds a new immutable ``Routing`` snapshot
under a lock and publishes it with one reference assignment: the decide path reads the
snapshot once per request without a lock, so a request sees the old or the new routing,
never half of each, and a request in flight finishes on the version it started with.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from .bundle import RouterBundle, reverify
from .canary import CANARY_ARM, CanaryArm, CanaryMonitor
from .domain import LoadedVersion, RouteQuery, StrategyInfo, StrategyListing
from .encoder import Encoder
from .errors import InvalidRequest, NotReady, UnknownVersion
from .policy import ModelIndex
from .strategies import (
    CHEAPEST,
    FIXED_ORDER,
    ROUND_ROBIN,
    STICKY_CHOICES,
    CheapestStrategy,
    FixedOrderStrategy,
    MLStrategy,
    Ranking,
    RoundRobinStrategy,
    Strategy,
    TrafficSplit,
    make_split,
)

PREVIOUS = "previous"


@dataclass(frozen=True)
class Routing:
    """Everything one decision needs, immutable."""

    strategies: dict[str, Strategy]  # every name a request or split may use
    listed: tuple[StrategyInfo, ...]
    default: Strategy
    default_name: str
    active: LoadedVersion | None
    prices: ModelIndex | None
    split: TrafficSplit | None
    canary: CanaryArm | None = None

    def choose(self, query: RouteQuery, decision_id: str) -> tuple[Strategy, str]:
        """The strategy for ``query`` and the split arm that chose it ("" when none did)."""
        if query.strategy:
            strategy = self.strategies.get(query.strategy)
            if strategy is None:
                raise InvalidRequest(
                    f"unknown strategy {query.strategy!r}; ListStrategies names the "
                    f"available ones: {sorted(self.strategies)}"
                )
            return strategy, ""
        # The canary takes its share first, of everything a split or the default would get.
        if self.canary is not None and self.canary.takes(query, decision_id):
            return self.canary.strategy, CANARY_ARM
        if self.split is not None:
            arm = self.split.choose(
                query.user_id_hash, query.team_id_hash, query.request_id, decision_id
            )
            return self.strategies[arm.strategy], arm.name
        return self.default, ""

    def rank(
        self,
        strategy: Strategy,
        arm: str,
        query: RouteQuery,
        embedding: np.ndarray | None,
        decision_id: str,
    ) -> tuple[Strategy, str, Ranking]:
        """Rank with the chosen strategy; with a canary, timed and guarded (see ``canary``)."""
        if self.canary is None:
            ranking = strategy.rank(
                query.candidates, embedding, query.cost_weight, self.prices, query.strong_share
            )
            return strategy, arm, ranking
        # A failed canary decision is answered by the default (the stable version unless
        # default_strategy says otherwise); latency is compared with the stable version's.
        baseline = self.active.strategy if self.active is not None else None
        return self.canary.rank(
            strategy, arm, self.default, baseline, query, embedding, self.prices, decision_id
        )

    def bundle_version_of(self, info: StrategyInfo) -> str:
        """The bundle a decision by ``info`` reports: its own, else the active one's."""
        if info.bundle_version:
            return info.bundle_version
        return self.active.version if self.active else ""


class VersionRegistry:
    def __init__(
        self,
        encoder: Encoder,
        bundle: RouterBundle | None = None,
        *,
        keep_versions: int = 3,
        static_order: Sequence[str] = (),
        default_strategy: str = "",
        strong_share: float | None = None,
    ) -> None:
        # Bundles are validated against this encoder, and a rollback replays samples with it.
        self.encoder = encoder
        self.keep_versions = keep_versions
        self.default_strategy = default_strategy
        # The service-wide share of strong-model calls (ROUTEIQ_STRONG_SHARE): each version
        # turns it into a cost weight with its own calibration table.
        self.strong_share = strong_share
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
        self._canary: CanaryArm | None = None
        self._routing: Routing | None = None
        if bundle is not None:
            self.activate(bundle)

    # ---- what the decide path reads -------------------------------------------------

    def routing(self) -> Routing:
        """The current snapshot; raises NotReady while no strategy can decide."""
        routing = self._routing
        if routing is None:
            raise NotReady("no valid router bundle is loaded")
        return routing

    # ---- versions -------------------------------------------------------------------

    @property
    def bundle(self) -> RouterBundle | None:
        """The active (default) bundle."""
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
                    bundle,
                    MLStrategy(bundle, self.strong_share),
                    datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
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
            routing = self.routing()
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

    # ---- the canary -----------------------------------------------------------------

    @property
    def canary(self) -> CanaryArm | None:
        return self._canary

    def set_canary(
        self, bundle: RouterBundle, share: float, sticky_by: str, monitor: CanaryMonitor
    ) -> CanaryArm:
        """Send ``share`` of the requests that name no strategy to ``bundle`` (validated).

        The canary is held beside the loaded versions, not among them: it is not addressable
        by name or by a split arm, so withdrawing it leaves no strategy dangling.
        """
        if not (math.isfinite(share) and 0.0 < share <= 1.0):
            raise InvalidRequest(f"canary share {share} must be within (0, 1]")
        if sticky_by not in STICKY_CHOICES:
            raise InvalidRequest(f"sticky_by {sticky_by!r} must be one of {list(STICKY_CHOICES)}")
        with self._lock:
            self._canary = CanaryArm(
                MLStrategy(bundle, self.strong_share), share, sticky_by, monitor
            )
            self._publish()
            return self._canary

    def clear_canary(self, version: str | None = None) -> CanaryArm | None:
        """Stop the canary (only if it is ``version``, when given); returns what was removed."""
        with self._lock:
            removed = self._canary
            if removed is None or (version is not None and removed.version != version):
                return None
            self._canary = None
            self._publish()
            return removed

    def listing(self) -> StrategyListing:
        """What ListStrategies answers, from one snapshot."""
        routing = self.routing()
        split = routing.split
        return StrategyListing(
            strategies=routing.listed,
            default=routing.default_name,
            split=split.arms if split else (),
            sticky_by=split.sticky_by if split else "",
        )

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
        if routing.canary is not None and routing.canary.version not in found:
            found.append(routing.canary.version)
        return found

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
        self._routing = Routing(
            strategies=strategies,
            listed=tuple(listed),
            default=default,
            default_name=default_name,
            active=active,
            prices=active.strategy.index if active else None,
            split=self._split,
            canary=self._canary,
        )
