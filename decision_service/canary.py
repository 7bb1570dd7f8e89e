"""Canary: a second bundle version takes a sticky share of traffic and is judged by a rule.

The service holds the stable (active) version and, while one is delivered, a canary version.
A request that names no strategy goes to the canary when the sha256 of its sticky key (user,
team or request id, salted so the canary share is independent of any split arm) falls below
the share. Every canary decision is timed and checked; one that raises or yields a
non-finite quality is answered by the stable default instead (arm ``canary-fallback``), so a
broken canary never fails a request, and the failure is counted against it.

``CanaryMonitor`` keeps per-arm figures over a sliding window (canary and stable decisions,
errors, router time, outcomes with ``fallback``); ``judge`` is the pure rule deciding
withdrawal. The controller (``canary_control``) acts on the verdict.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge

from .domain import CandidateIn, RouteQuery
from .policy import ModelIndex
from .strategies import MLStrategy, Ranking, Strategy

log = logging.getLogger(__name__)

CANARY_ARM = "canary"
CANARY_FALLBACK_ARM = "canary-fallback"
# Windows are bounded by count as well as time: at high rates the figures cover the most
# recent entries only, and memory stays fixed whatever the traffic.
_MAX_WINDOW_ENTRIES = 20_000
_MAX_TRACKED_DECISIONS = 50_000  # decision id -> arm, to attribute RecordOutcome


@dataclass(frozen=True)
class CanaryRule:
    """When a canary is withdrawn (see ``judge``); figures cover the last ``window_s``."""

    window_s: float = 60.0
    min_samples: int = 50
    max_error_rate: float = 0.01
    max_fallback_excess: float = 0.05
    max_latency_ratio: float = 2.0
    latency_slack_ms: float = 5.0


@dataclass(frozen=True)
class ArmFigures:
    """One arm's figures over the window."""

    decisions: int = 0  # attempts: served plus failed
    errors: int = 0
    p99_ms: float | None = None  # router time of served decisions
    timed: int = 0
    outcomes: int = 0
    fallbacks: int = 0


@dataclass(frozen=True)
class Verdict:
    """Why a canary is withdrawn: which figure, its value, the threshold, over what."""

    reason: str  # "error_rate", "fallback_rate" or "latency"
    value: float
    threshold: float
    samples: int
    window_s: float
    detail: str

    def describe(self) -> str:
        unit = " ms" if self.reason == "latency" else ""
        return (
            f"{self.reason} {self.value:.4g}{unit} > threshold {self.threshold:.4g}{unit} "
            f"over the last {self.window_s:g} s ({self.detail})"
        )


def judge(rule: CanaryRule, canary: ArmFigures, stable: ArmFigures) -> Verdict | None:
    """The first figure that crosses its threshold, or None (also while samples are few)."""
    n = rule.min_samples
    if canary.decisions >= n and canary.decisions:
        rate = canary.errors / canary.decisions
        if rate > rule.max_error_rate:
            detail = f"{canary.errors} of {canary.decisions} canary decisions failed"
            return Verdict(
                "error_rate", rate, rule.max_error_rate, canary.decisions, rule.window_s, detail
            )
    if canary.outcomes >= n and canary.outcomes:
        # Judged against stable's own rate: a provider outage raises both, not the canary's.
        base = stable.fallbacks / stable.outcomes if stable.outcomes >= n else 0.0
        threshold = base + rule.max_fallback_excess
        rate = canary.fallbacks / canary.outcomes
        if rate > threshold:
            detail = (
                f"{canary.fallbacks} of {canary.outcomes} canary outcomes fell back; "
                f"stable {base:.4g}"
            )
            return Verdict("fallback_rate", rate, threshold, canary.outcomes, rule.window_s, detail)
    if canary.timed >= n and stable.timed >= n:
        assert canary.p99_ms is not None and stable.p99_ms is not None
        threshold = stable.p99_ms * rule.max_latency_ratio + rule.latency_slack_ms
        if canary.p99_ms > threshold:
            detail = (
                f"router p99 over {canary.timed} canary decisions; stable p99 "
                f"{stable.p99_ms:.4g} ms over {stable.timed}"
            )
            return Verdict("latency", canary.p99_ms, threshold, canary.timed, rule.window_s, detail)
    return None


class _ArmWindow:
    """Timestamped events of one arm; the caller holds the monitor's lock."""

    def __init__(self) -> None:
        self.decisions: deque[tuple[float, float | None]] = deque(maxlen=_MAX_WINDOW_ENTRIES)
        self.outcomes: deque[tuple[float, bool]] = deque(maxlen=_MAX_WINDOW_ENTRIES)

    def trim(self, oldest: float) -> None:
        for events in (self.decisions, self.outcomes):
            while events and events[0][0] < oldest:
                events.popleft()

    def snapshot(self) -> tuple[list[float | None], list[bool]]:
        return [ms for _, ms in self.decisions], [fell_back for _, fell_back in self.outcomes]


def _figures(decisions: list[float | None], outcomes: list[bool]) -> ArmFigures:
    times = [ms for ms in decisions if ms is not None]
    return ArmFigures(
        decisions=len(decisions),
        errors=len(decisions) - len(times),
        p99_ms=float(np.percentile(times, 99)) if times else None,
        timed=len(times),
        outcomes=len(outcomes),
        fallbacks=sum(outcomes),
    )


class CanaryMetrics:
    """The canary's series, on the service's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.withdrawals = Counter(
            "routeiq_canary_withdrawals",
            "Canaries withdrawn by the rule, by the figure that crossed its threshold.",
            ["reason"],
            registry=registry,
        )
        self.share = Gauge(
            "routeiq_canary_share",
            "Share of requests offered to the canary version (0 while none is serving).",
            registry=registry,
        )
        self.decisions = Counter(
            "routeiq_canary_decisions",
            "Canary decisions: served, or failed (answered by the stable version instead).",
            ["result"],
            registry=registry,
        )


class CanaryMonitor:
    """Per-arm figures over a sliding window, fed by the decide path and RecordOutcome."""

    def __init__(
        self,
        rule: CanaryRule,
        metrics: CanaryMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rule = rule
        self.metrics = metrics
        self._clock = clock
        self._lock = threading.Lock()
        self._arms = {True: _ArmWindow(), False: _ArmWindow()}  # keyed by "is canary"
        self._decisions: OrderedDict[str, bool] = OrderedDict()

    def decided(self, decision_id: str, canary: bool, router_ms: float) -> None:
        with self._lock:
            self._arms[canary].decisions.append((self._clock(), router_ms))
            self._track(decision_id, canary)
        if canary and self.metrics is not None:
            self.metrics.decisions.labels(result="served").inc()

    def failed(self, decision_id: str) -> None:
        """A canary decision that raised or produced non-finite output."""
        with self._lock:
            self._arms[True].decisions.append((self._clock(), None))
        if self.metrics is not None:
            self.metrics.decisions.labels(result="failed").inc()

    def outcome(self, decision_id: str, fallback: bool) -> None:
        """An outcome joined to a decision this monitor saw; others are ignored."""
        with self._lock:
            canary = self._decisions.pop(decision_id, None)
            if canary is not None:
                self._arms[canary].outcomes.append((self._clock(), fallback))

    def _track(self, decision_id: str, canary: bool) -> None:
        self._decisions[decision_id] = canary
        if len(self._decisions) > _MAX_TRACKED_DECISIONS:
            self._decisions.popitem(last=False)

    def figures(self) -> tuple[ArmFigures, ArmFigures]:
        """(canary, stable) over the window ending now."""
        with self._lock:
            oldest = self._clock() - self.rule.window_s
            for window in self._arms.values():
                window.trim(oldest)
            canary, stable = self._arms[True].snapshot(), self._arms[False].snapshot()
        # The percentile is computed outside the lock the decide path takes.
        return _figures(*canary), _figures(*stable)

    def verdict(self) -> Verdict | None:
        canary, stable = self.figures()
        return judge(self.rule, canary, stable)


def _finite(ranking: Ranking) -> bool:
    return all(
        math.isfinite(r.score) and math.isfinite(r.predicted_quality) for r in ranking.ranked
    )


@dataclass(frozen=True)
class CanaryArm:
    """The canary version in a routing snapshot: its strategy, share and monitor."""

    strategy: MLStrategy
    share: float
    sticky_by: str
    monitor: CanaryMonitor = field(compare=False)

    @property
    def version(self) -> str:
        return self.strategy.bundle.version

    def takes(self, query: RouteQuery, decision_id: str) -> bool:
        key = {"user": query.user_id_hash, "team": query.team_id_hash}.get(
            self.sticky_by, query.request_id
        )
        key = key or decision_id
        # Salted: unsalted, the canary's point would coincide with a split's and the canary
        # would take its share from the first split arm only.
        digest = hashlib.sha256(b"routeiq-canary\0" + key.encode("utf-8", "surrogatepass"))
        return int.from_bytes(digest.digest()[:8], "big") / 2**64 < self.share

    def rank(
        self,
        chosen: Strategy,
        arm: str,
        stable: Strategy,
        baseline: MLStrategy | None,
        query: RouteQuery,
        embedding: np.ndarray | None,
        prices: ModelIndex | None,
        decision_id: str,
    ) -> tuple[Strategy, str, Ranking]:
        """Rank with ``chosen``; a canary that fails is replaced by ``stable`` for this call.

        Router time is recorded for canary decisions and for those of ``baseline`` (the
        stable version), which the latency figure is compared against.
        """
        candidates: Sequence[CandidateIn] = query.candidates
        started = time.perf_counter()
        if arm != CANARY_ARM:
            ranking = chosen.rank(
                candidates, embedding, query.cost_weight, prices, query.strong_share
            )
            if baseline is not None and chosen is baseline:
                ms = (time.perf_counter() - started) * 1e3
                self.monitor.decided(decision_id, False, ms)
            return chosen, arm, ranking
        try:
            ranking = self.strategy.rank(
                candidates, embedding, query.cost_weight, prices, query.strong_share
            )
            ok = _finite(ranking)
            problem = "non-finite quality"
        except Exception as exc:  # any failure of the canary's graph: stable answers instead
            ok, problem = False, f"{type(exc).__name__}: {exc}"
        if ok:
            self.monitor.decided(decision_id, True, (time.perf_counter() - started) * 1e3)
            return self.strategy, CANARY_ARM, ranking
        self.monitor.failed(decision_id)
        log.debug("canary %s failed (%s); stable answers", self.version, problem)
        return (
            stable,
            CANARY_FALLBACK_ARM,
            stable.rank(candidates, embedding, query.cost_weight, prices, query.strong_share),
        )
