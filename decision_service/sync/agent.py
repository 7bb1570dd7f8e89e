"""The sync agent: keep ``models_dir/current`` on the channel's version, verified, fleet-friendly.

One pass (``sync_once``): read the channel pointer from the store; if it names another
version, make that version and its encoder present (reusing verified local copies, else
downloading under a fleet slot into staging and verifying there), swap the pointers and
tell the service (its pointer watcher sees the swap; with ``sync_reload_address`` the agent
also calls AdminService.Reload). ``run`` repeats passes: right after a Redis notification,
else every ``sync_interval_s`` (``sync_fallback_interval_s`` while Redis is unreachable),
with jitter, and with exponential backoff after a failure. Nothing here removes or changes
what the service is serving unless a complete, verified replacement is ready.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from decision_service.bundle_registry import (
    Registry,
    RegistryError,
    StoreUnavailable,
    VerificationFailed,
    open_store,
)
from decision_service.bundle_registry.fetch import (
    ENCODER_LINK,
    ENCODERS,
    Fetched,
    Fetcher,
    activate,
    encoder_key,
    installed_version,
    parse_manifest,
)
from decision_service.bundle_registry.notify import RedisKeys
from decision_service.manifest import BUNDLE_MANIFEST
from decision_service.signing import SignaturePolicy, load_public_key
from routeiq.decision.v1 import admin_pb2, admin_pb2_grpc

from .lease import DownloadSlots, Lease, LeaseLost
from .listener import ChangeListener
from .metrics import SyncMetrics
from .settings import SyncSettings

log = logging.getLogger(__name__)

_BACKOFF_START_S = 0.5


@dataclass(frozen=True)
class SyncResult:
    result: str  # "installed" or "unchanged" (failures raise)
    version: str
    downloaded_bytes: int = 0
    lock_wait_s: float = 0.0


class SyncAgent:
    def __init__(
        self,
        settings: SyncSettings,
        *,
        metrics: SyncMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics or SyncMetrics()
        self.store = open_store(
            settings.registry,
            endpoint_url=settings.s3_endpoint,
            client_name=f"routeiq-sync/{settings.agent_id()}",
        )
        self.registry = Registry(self.store, settings.registry_name)
        key_file = settings.bundle_public_key_file
        self.policy = SignaturePolicy(
            public_key=load_public_key(key_file) if key_file is not None else None,
            required=settings.require_signed_bundles,
        )
        self.dest = Path(settings.models_dir)
        self.keys = RedisKeys(settings.registry_name, settings.redis_prefix)
        self.wake = threading.Event()
        self._stop = threading.Event()
        self.failures = 0
        self.refusing = False  # the last pass refused what it downloaded
        self.refused_version: str | None = None  # the version the last refusal was about
        self.slots: DownloadSlots | None = None
        self.listener: ChangeListener | None = None
        if settings.redis_url:
            self.slots = DownloadSlots(
                self._redis(),
                self.keys,
                slots=settings.sync_slots,
                ttl_s=settings.sync_lease_ttl_s,
                holder=settings.agent_id(),
                poll_s=settings.sync_slot_poll_s,
            )
            self.listener = ChangeListener(
                self._redis,
                self.keys.channel_topic(settings.channel),
                self.wake,
                on_message=lambda _: self.metrics.notifications.inc(),
                on_state=self._redis_state,
            )
            self.metrics.degraded.labels(dependency="redis").set(1)  # until subscribed

    def _redis(self) -> Any:
        import redis

        assert self.settings.redis_url is not None
        return redis.Redis.from_url(
            self.settings.redis_url,
            socket_connect_timeout=2,
            socket_timeout=5,
            health_check_interval=5,
        )

    def _redis_state(self, connected: bool) -> None:
        self.metrics.degraded.labels(dependency="redis").set(0 if connected else 1)
        log.info("Redis notifications %s", "on" if connected else "off: polling the store")

    # ---- one pass
    def sync_once(self, *, retry_refused: bool = True) -> SyncResult:
        """Bring ``models_dir/current`` to the channel's version; raises on any failure.

        ``StoreUnavailable``: the store did not answer; ``VerificationFailed``: what was
        downloaded does not verify (nothing was made visible); ``LeaseLost``: the fleet
        slot expired mid-download; ``RegistryError``: anything else the registry refused.
        ``retry_refused=False`` (a pass woken by Redis) does not download again the version
        the last download refused: its objects are immutable, so only the retry timer
        tries it again, and a reconnecting fleet does not spend its slots on it.
        """
        channel = self.settings.channel
        version = self.registry.channel_version(channel)
        if version is None:
            raise RegistryError(f"channel {channel} names no version")
        self.dest.mkdir(parents=True, exist_ok=True)
        if installed_version(self.dest) == version and (self.dest / ENCODER_LINK).exists():
            return SyncResult("unchanged", version)
        if not retry_refused and version == self.refused_version:
            raise VerificationFailed(f"{version} was refused; retried on the retry timer only")
        fetcher = Fetcher(self.store, self.settings.registry_name, self.dest, self.policy)
        waited = 0.0
        manifest = fetcher.local_bundle(version)
        if manifest is not None and fetcher.local_encoder(manifest.encoder) is not None:
            fetched = fetcher.fetch(version)  # all here already: a rollback needs no download
        else:
            lease, waited = self._acquire()
            try:
                if lease is not None:
                    fetcher.between_objects = lease.check
                fetched = fetcher.fetch(version)
            except VerificationFailed:
                self.refused_version = version
                raise
            finally:
                if lease is not None:
                    lease.release()
        self._activate(fetched)
        return SyncResult("installed", version, fetched.downloaded_bytes, waited)

    def _acquire(self) -> tuple[Lease | None, float]:
        """A fleet download slot; None without Redis (degraded: jitter is all that spreads)."""
        if self.slots is None:
            return None, 0.0
        import redis

        try:
            lease, waited = self.slots.acquire(self._stop)
        except redis.RedisError as exc:
            log.warning("no download slot: Redis unreachable (%s); downloading without", exc)
            self.metrics.leases.labels(result="unavailable").inc()
            self.metrics.degraded.labels(dependency="redis").set(1)
            return None, 0.0
        if lease is None:
            raise RegistryError("stopping")
        self.metrics.leases.labels(result="acquired").inc()
        self.metrics.lock_wait.observe(waited)
        log.debug("download slot %s after %.3fs", lease.key, waited)
        return lease, waited

    def _activate(self, fetched: Fetched) -> None:
        previous = installed_version(self.dest)
        os.utime(fetched.bundle_dir)  # recency for pruning: the active version is the newest
        activate(self.dest, fetched)
        self.metrics.set_active(fetched.version)
        log.info(
            "%s -> %s (%d bytes downloaded%s)",
            previous,
            fetched.version,
            fetched.downloaded_bytes,
            ", encoder downloaded" if fetched.encoder_downloaded else "",
        )
        self._reload_service(fetched.version)
        self.prune()

    def _reload_service(self, version: str) -> None:
        address = self.settings.sync_reload_address
        token = self.settings.admin_token
        if address is None or token is None:
            return  # the service's pointer watcher picks the swap up
        metadata = (
            ("authorization", f"Bearer {token.get_secret_value()}"),
            ("x-routeiq-actor", f"sync-agent/{self.settings.agent_id()}"),
        )
        request = admin_pb2.ReloadRequest(reason=f"{self.settings.channel} -> {version}")
        try:
            with grpc.insecure_channel(address) as channel:
                reply = admin_pb2_grpc.AdminServiceStub(channel).Reload(
                    request, metadata=metadata, timeout=60
                )
            log.info("service at %s reloaded: active %s", address, reply.active_version)
        except grpc.RpcError as exc:
            # The pointer is swapped either way; the service's watcher (if on) retries it.
            log.error("service at %s did not reload %s: %s", address, version, exc)

    def prune(self) -> None:
        """Keep the newest ``sync_keep_versions`` bundles and the encoders they name."""
        current = installed_version(self.dest)
        bundles = [
            p
            for p in self.dest.iterdir()
            if p.is_dir() and not p.is_symlink() and (p / BUNDLE_MANIFEST).is_file()
        ]
        bundles.sort(key=lambda p: (p.name == current, p.stat().st_mtime), reverse=True)
        keep, drop = (
            bundles[: self.settings.sync_keep_versions],
            bundles[self.settings.sync_keep_versions :],
        )
        for path in drop:
            shutil.rmtree(path, ignore_errors=True)
        wanted = set()
        for path in keep:
            try:
                raw = (path / BUNDLE_MANIFEST).read_bytes()
                wanted.add(encoder_key(parse_manifest(raw, str(path)).encoder))
            except (OSError, RegistryError):
                continue
        link = self.dest / ENCODER_LINK
        if link.is_symlink():
            wanted.add(Path(link.readlink()).name)
        encoders = self.dest / ENCODERS
        for path in encoders.iterdir() if encoders.is_dir() else ():
            if path.is_dir() and not path.name.startswith(".") and path.name not in wanted:
                shutil.rmtree(path, ignore_errors=True)

    def clean_staging(self) -> None:
        """Remove hidden leftovers of a previous run killed mid-download or mid-swap."""
        for parent in (self.dest, self.dest / ENCODERS):
            for path in parent.glob(".*") if parent.is_dir() else ():
                if ".tmp-" in path.name or ".old-" in path.name or ".link-" in path.name:
                    if path.is_dir() and not path.is_symlink():
                        shutil.rmtree(path, ignore_errors=True)
                    else:
                        path.unlink(missing_ok=True)

    # ---- the loop
    def attempt(self, *, woken: bool = False) -> SyncResult | None:
        """One pass with its outcome counted; None when it failed (logged)."""
        result: SyncResult | None = None
        try:
            result = self.sync_once(retry_refused=not woken)
            outcome = result.result
        except StoreUnavailable as exc:
            outcome = "store_unavailable"
            log.warning("registry store unavailable; keeping %s: %s", self._current(), exc)
        except VerificationFailed as exc:
            outcome = "refused"
            log.error("refused a download; keeping %s: %s", self._current(), exc)
        except LeaseLost as exc:
            outcome = "failed"
            self.metrics.leases.labels(result="lost").inc()
            log.warning("%s; retrying", exc)
        except Exception as exc:  # the agent must outlive any one bad pass
            outcome = "failed"
            log.exception("sync failed; keeping %s: %s", self._current(), exc)
        self.refusing = outcome == "refused"
        self.metrics.attempts.labels(result=outcome).inc()
        self.metrics.degraded.labels(dependency="store").set(outcome == "store_unavailable")
        if result is None:
            self.failures += 1
        else:
            self.failures = 0
            self.refused_version = None
            self.metrics.last_success.set(time.time())
            self.metrics.downloaded_bytes.inc(result.downloaded_bytes)
        return result

    def _current(self) -> str | None:
        return installed_version(self.dest) if self.dest.is_dir() else None

    def next_wait(self) -> float:
        """Seconds until the next pass unless a notification comes first."""
        s = self.settings
        if self.failures:
            # Registry objects are immutable, so a refused download fails the same way until
            # someone repairs it: retry it at the slowest rate, keeping the fleet's download
            # slots for versions that can succeed (a channel move still wakes us at once).
            cap = (
                s.sync_retry_max_s
                if self.refusing
                else min(s.sync_retry_max_s, _BACKOFF_START_S * 2 ** (self.failures - 1))
            )
            return random.uniform(cap / 2, cap)
        listening = self.listener is not None and self.listener.connected
        interval = s.sync_interval_s if listening else s.sync_fallback_interval_s
        return interval * random.uniform(1 - s.sync_jitter, 1 + s.sync_jitter)

    def run(self) -> None:
        """Sync until ``stop``: at start, on notification, on the poll interval."""
        self.dest.mkdir(parents=True, exist_ok=True)
        self.clean_staging()
        current = installed_version(self.dest)
        if current is not None:
            self.metrics.set_active(current)
        if self.listener is not None:
            self.listener.start()
        try:
            woken = False
            while not self._stop.is_set():
                # Cleared before the pass: a notification during it triggers another at once.
                self.wake.clear()
                self.attempt(woken=woken)
                woken = self.wake.wait(self.next_wait())
        finally:
            if self.listener is not None:
                self.listener.stop()

    def stop(self) -> None:
        self._stop.set()
        self.wake.set()
