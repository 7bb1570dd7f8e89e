"""Prometheus metrics of one service instance (names are a contract with the dashboards).

Each instance owns its ``CollectorRegistry`` so in-process tests never share counters. A new
registry gets what ``prometheus_client``'s default one has built in (``process_*``,
``python_info``, ``python_gc_*``), so the service exports the standard process and runtime
series every Prometheus setup expects, plus ``routeiq_build_info``.
"""

from __future__ import annotations

import platform
from collections.abc import Iterator

import onnxruntime
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from .embedding_front import FrontStats
from .telemetry import routeiq_version

# Decision latency is a few ms; buckets resolve 0.5 ms..1 s around the 10 ms p99 target.
_LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
)

METRIC_NAMES = (
    "routeiq_decision_latency_seconds",
    "routeiq_selections_total",
    "routeiq_errors_total",
    "routeiq_in_flight_requests",
    "routeiq_active_bundle_info",
    "routeiq_bundle_reloads_total",
    "routeiq_bundles_refused_total",
    "routeiq_outcomes_total",
    "routeiq_embedding_cache_requests_total",
    "routeiq_encoder_runs_total",
    "routeiq_encoder_prompts_total",
    "routeiq_build_info",
)


def build_labels() -> dict[str, str]:
    """``routeiq_build_info``'s labels: what is running, for dashboards and version skew."""
    return {
        "version": routeiq_version(),
        "python": platform.python_version(),
        "onnxruntime": onnxruntime.__version__,
    }


class _FrontCollector(Collector):
    """Reads the embedding front's counters at scrape time (no work on the hot path)."""

    def __init__(self, stats: FrontStats) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        cache = CounterMetricFamily(
            "routeiq_embedding_cache_requests",
            "Prompt embedding cache lookups by result (hit rate = hit / (hit + miss)).",
            labels=["result"],
        )
        cache.add_metric(["hit"], self._stats.cache_hits)
        cache.add_metric(["miss"], self._stats.cache_misses)
        yield cache
        yield CounterMetricFamily(
            "routeiq_encoder_runs", "Encoder graph runs.", value=self._stats.runs
        )
        yield CounterMetricFamily(
            "routeiq_encoder_prompts",
            "Prompts embedded (prompts / runs = mean batch size).",
            value=self._stats.prompts_encoded,
        )


class ServiceMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        if registry is None:
            registry = CollectorRegistry()
            ProcessCollector(registry=registry)
            PlatformCollector(registry=registry)
            GCCollector(registry=registry)
        self.registry = registry
        r = self.registry
        self.build = Info("routeiq_build", "The running RouteIQ service's versions.", registry=r)
        self.build.info(build_labels())
        self.latency = Histogram(
            "routeiq_decision_latency_seconds",
            "Time to make one decision on the worker (validate, embed, rank), by strategy.",
            ["strategy"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.selections = Counter(
            "routeiq_selections",
            "Decisions whose top candidate is this model.",
            ["model"],
            registry=r,
        )
        self.errors = Counter(
            "routeiq_errors",
            "Calls answered with a non-OK gRPC status, by code.",
            ["code"],
            registry=r,
        )
        self.in_flight = Gauge(
            "routeiq_in_flight_requests", "Route calls admitted and not yet answered.", registry=r
        )
        self.active_bundle = Gauge(
            "routeiq_active_bundle_info",
            "1 for the bundle version new requests use by default.",
            ["version", "strategy"],
            registry=r,
        )
        self.reloads = Counter(
            "routeiq_bundle_reloads",
            "Bundle loads by result (loaded, unchanged, refused).",
            ["result"],
            registry=r,
        )
        self.refused = Counter(
            "routeiq_bundles_refused",
            "Bundles refused by validation, by reason.",
            ["reason"],
            registry=r,
        )
        self.outcomes = Counter(
            "routeiq_outcomes",
            "Outcomes reported by gateways (RecordOutcome), by status.",
            ["status"],
            registry=r,
        )
        self.feedback = Counter(
            "routeiq_feedback",
            "Quality signals received (RecordFeedback), by source.",
            ["source"],
            registry=r,
        )
        self.explored = Counter(
            "routeiq_explored_decisions",
            "Decisions whose served candidate exploration chose instead of the best-scored one.",
            ["strategy"],
            registry=r,
        )

    def set_active(self, version: str, strategy: str) -> None:
        # One series at 1: clear the old label set so a dashboard never shows two actives.
        self.active_bundle.clear()
        self.active_bundle.labels(version=version, strategy=strategy).set(1)

    def watch_front(self, stats: FrontStats) -> None:
        self.registry.register(_FrontCollector(stats))
