"""Prometheus metrics of the gateway client, in the gateway's own process.

- ``routeiq_gateway_breaker_state{target, routeiq_gateway_breaker_state}``: a state set, 1 for
  the breaker's state (``closed``, ``open`` or ``half_open``) and 0 for the other two (read at
  scrape time from each strategy's breaker, so an open breaker whose cool-down passed shows
  ``half_open``).
- ``routeiq_gateway_fallbacks_total{reason}``: picks the static fallback made in place of the
  service, by reason (``breaker_open``, ``rpc_failure``, ``caller_error``, ...).
- ``routeiq_gateway_picks_total{reason}``: every pick, routed or not, by reason.
- ``routeiq_gateway_route_latency_seconds``: round trip of the ``Route`` calls that were made.
- ``routeiq_gateway_outcome_drops_total``: outcomes not sent to ``RecordOutcome`` because the
  queue was full.
- ``routeiq_gateway_outcomes_total{result}``: outcomes handed to ``RecordOutcome`` (``sent``,
  ``failed``).
- ``routeiq_build_info{version,python,litellm}``: 1, labelled with what is running.

They live on ``prometheus_client.REGISTRY`` unless a registry is given, so any ``/metrics``
endpoint serving that registry in the gateway process exports them (not verified here for the
LiteLLM proxy's own ``/metrics``, which may need its Prometheus callback enabled).
"""

from __future__ import annotations

import platform
import threading
import weakref
from collections.abc import Iterator
from importlib import metadata
from typing import Protocol

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import StateSetMetricFamily
from prometheus_client.registry import Collector

from .breaker import BreakerState

# A state set (what prometheus_client's Enum exports) rather than a 0/1/2 gauge: a query or an
# alert names the state it means, and each state's share of time is avg_over_time of its series.
BREAKER_STATES = tuple(state.value for state in BreakerState)

# Route is expected in single-digit milliseconds; the deadline defaults to 50 ms.
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25)


class _HasState(Protocol):
    @property
    def state(self) -> BreakerState: ...


class BreakerStateCollector(Collector):
    """Reports the state of every registered breaker by target at scrape time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._breakers: dict[str, weakref.ref[_HasState]] = {}

    def track(self, target: str, breaker: _HasState) -> None:
        """Report ``breaker`` under ``target`` (the latest registration for a target wins)."""
        with self._lock:
            self._breakers[target] = weakref.ref(breaker)

    def collect(self) -> Iterator[StateSetMetricFamily]:
        family = StateSetMetricFamily(
            "routeiq_gateway_breaker_state",
            "Circuit breaker state per decision-service target: closed, open or half_open.",
            labels=["target"],
        )
        with self._lock:
            items = list(self._breakers.items())
        for target, ref in items:
            breaker = ref()
            if breaker is None:
                with self._lock:
                    if self._breakers.get(target) is ref:
                        del self._breakers[target]
                continue
            state = breaker.state.value
            family.add_metric([target], {name: name == state for name in BREAKER_STATES})
        yield family


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "unknown"


def build_labels() -> dict[str, str]:
    """``routeiq_build_info``'s labels: the gateway client's, Python's and LiteLLM's versions."""
    return {
        "version": _version("routeiq"),
        "python": platform.python_version(),
        "litellm": _version("litellm"),
    }


class GatewayMetrics:
    """The gateway client's metrics on one registry, with ``routeiq_build_info``.

    A registry other than ``prometheus_client.REGISTRY`` (which has them built in) also gets
    the standard ``process_*``, ``python_info`` and ``python_gc_*`` collectors, so whichever
    registry the gateway serves carries the process and runtime series.
    """

    def __init__(self, registry: CollectorRegistry | None = REGISTRY) -> None:
        self.breakers = BreakerStateCollector()
        if registry is not None:
            registry.register(self.breakers)
            if registry is not REGISTRY:
                ProcessCollector(registry=registry)
                PlatformCollector(registry=registry)
                GCCollector(registry=registry)
        self.build = Info(
            "routeiq_build", "The RouteIQ gateway client's versions.", registry=registry
        )
        self.build.info(build_labels())
        self.fallbacks = Counter(
            "routeiq_gateway_fallbacks_total",
            "Picks the static fallback made in place of the decision service, by reason.",
            ["reason"],
            registry=registry,
        )
        self.picks = Counter(
            "routeiq_gateway_picks_total",
            "Deployment picks by the RouteIQ strategy, by reason (routed, fallbacks, bypasses).",
            ["reason"],
            registry=registry,
        )
        self.route_latency = Histogram(
            "routeiq_gateway_route_latency_seconds",
            "Round trip of DecisionService.Route calls seen by the gateway, failed ones included.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.outcome_drops = Counter(
            "routeiq_gateway_outcome_drops_total",
            "Outcomes not sent to RecordOutcome because the bounded queue was full.",
            registry=registry,
        )
        self.outcomes = Counter(
            "routeiq_gateway_outcomes_total",
            "Outcomes handed to DecisionService.RecordOutcome, by result (sent, failed).",
            ["result"],
            registry=registry,
        )


_default: GatewayMetrics | None = None
_default_lock = threading.Lock()


def default_metrics() -> GatewayMetrics:
    """The process-wide metrics on ``prometheus_client.REGISTRY`` (created on first use)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = GatewayMetrics(REGISTRY)
        return _default
