"""Prometheus metrics of one sync agent (each agent owns its registry, like the service)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Waiting for a slot takes from nothing to a few downloads' time (seconds to a minute).
_WAIT_BUCKETS = (0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

SYNC_RESULTS = ("installed", "unchanged", "refused", "store_unavailable", "failed")


class SyncMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.attempts = Counter(
            "routeiq_sync_attempts",
            "Sync attempts by result: installed (pointer moved), unchanged, refused "
            "(verification failed; nothing made visible), store_unavailable, failed.",
            ["result"],
            registry=r,
        )
        for result in SYNC_RESULTS:
            self.attempts.labels(result=result)
        self.lock_wait = Histogram(
            "routeiq_sync_lock_wait_seconds",
            "Time spent waiting for a fleet download slot.",
            buckets=_WAIT_BUCKETS,
            registry=r,
        )
        self.leases = Counter(
            "routeiq_sync_leases",
            "Download slot outcomes: acquired, unavailable (Redis down: downloaded without "
            "a slot), lost (expired mid-download; the download was abandoned).",
            ["result"],
            registry=r,
        )
        self.downloaded_bytes = Counter(
            "routeiq_sync_downloaded_bytes", "Bytes downloaded from the registry.", registry=r
        )
        self.notifications = Counter(
            "routeiq_sync_notifications", "Change notifications received from Redis.", registry=r
        )
        self.active = Gauge(
            "routeiq_sync_active_version_info",
            "1 for the version the agent's current pointer names.",
            ["version"],
            registry=r,
        )
        self.degraded = Gauge(
            "routeiq_sync_degraded",
            "1 while a dependency is unreachable (redis: polling without slots; store: the "
            "last good bundle stays in place).",
            ["dependency"],
            registry=r,
        )
        for dependency in ("redis", "store"):
            self.degraded.labels(dependency=dependency).set(0)
        self.last_success = Gauge(
            "routeiq_sync_last_success_timestamp_seconds",
            "Unix time of the last sync that reached the channel's version.",
            registry=r,
        )
        self._active_version: str | None = None

    def set_active(self, version: str) -> None:
        if version == self._active_version:
            return
        if self._active_version is not None:
            self.active.remove(self._active_version)
        self.active.labels(version=version).set(1)
        self._active_version = version
