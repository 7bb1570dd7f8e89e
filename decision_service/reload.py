"""Hot reload: load new bundles off the hot path, validate them, then swap them in.

Whoever delivers bundles switches a pointer (a symlink, or the directory's manifest)
atomically. A watcher thread polls that pointer; a change is loaded and fully validated on
the watcher thread (hashes, signature, encoder identity, sample replay) and only then
activated, with one reference swap in the version registry. A bundle that fails
validation is refused with an error log and a metric, and the last good one keeps serving.
The same fingerprint is not retried until the pointer changes again, so a bad bundle is
logged once, not every poll.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from pathlib import Path
from typing import Protocol

from .audit import AuditLog
from .bundle import RouterBundle, load_bundle, read_manifest
from .domain import ReloadResult
from .encoder import Encoder
from .errors import BundleRefused
from .metrics import ServiceMetrics
from .signing import SignaturePolicy
from .versions import VersionRegistry

log = logging.getLogger(__name__)

# Refusal reasons become a metric label: a small fixed set, matched from the loader's messages.
_REASONS = (
    ("signature", "signature"),
    ("unsigned", "signature"),
    ("pickle", "pickle"),
    ("external data", "external_data"),
    ("sha256", "hash_mismatch"),
    ("encoder", "encoder_mismatch"),
    ("samples", "sample_mismatch"),
    ("manifest", "manifest"),
    ("onnx", "onnx"),
)


def refusal_reason(exc: BaseException) -> str:
    message = str(exc).lower()
    return next((label for needle, label in _REASONS if needle in message), "invalid")


def fingerprint(pointer: Path) -> tuple[str, int, int] | None:
    """Where the pointer leads now and its manifest's mtime/size; None if unreadable."""
    try:
        target = os.path.realpath(pointer)
        stat = os.stat(os.path.join(target, "manifest.json"))
    except OSError:
        return None
    return target, stat.st_mtime_ns, stat.st_size


class Reloader:
    """Loads what the bundle pointer points at and activates it when it validates."""

    def __init__(
        self,
        pointer: Path,
        registry: VersionRegistry,
        encoder: Encoder,
        *,
        metrics: ServiceMetrics,
        audit: AuditLog,
        signatures: SignaturePolicy,
        intra_op_threads: int = 1,
    ) -> None:
        self.pointer = Path(pointer)
        self.registry = registry
        self.encoder = encoder
        self.metrics = metrics
        self.audit = audit
        self.signatures = signatures
        self.intra_op_threads = intra_op_threads
        self._lock = threading.Lock()  # one load at a time: watcher and Reload RPC share it
        self.last_seen = fingerprint(self.pointer)

    def load(self, directory: Path) -> RouterBundle:
        return load_bundle(
            directory,
            self.encoder,
            intra_op_threads=self.intra_op_threads,
            signatures=self.signatures,
        )

    def reload(self, *, who: str, why: str) -> ReloadResult:
        """Load the pointer's bundle and activate it; raises BundleRefused, old one serving."""
        with self._lock:
            seen = fingerprint(self.pointer)
            self.last_seen = seen
            previous = self.registry.active_version
            target = Path(seen[0]) if seen else self.pointer
            try:
                version = read_manifest(target).bundle_version
                if version == previous:
                    self.metrics.reloads.labels(result="unchanged").inc()
                    return ReloadResult(previous, previous, False)
                # A version already loaded is still re-read from disk: the pointer may now
                # lead to different bytes under the same name, and those must validate.
                bundle = self.load(target)
            except BundleRefused as exc:
                reason = refusal_reason(exc)
                self.metrics.reloads.labels(result="refused").inc()
                self.metrics.refused.labels(reason=reason).inc()
                log.error("bundle refused (%s); still serving %s: %s", reason, previous, exc)
                self.audit.record(
                    who=who,
                    action="reload",
                    from_=previous,
                    to=str(target),
                    why=why,
                    ok=False,
                    detail=str(exc),
                )
                raise
            self.registry.activate(bundle)
            self.metrics.reloads.labels(result="loaded").inc()
            self.metrics.set_active(bundle.version, bundle.strategy_name)
            log.info("bundle %s active (was %s) from %s", bundle.version, previous, target)
            self.audit.record(who=who, action="reload", from_=previous, to=bundle.version, why=why)
            return ReloadResult(previous, bundle.version, True)

    def poll(self) -> None:
        """One watcher step: reload when the pointer's fingerprint changed."""
        seen = fingerprint(self.pointer)
        if seen is None or seen == self.last_seen:
            return
        # A refusal is logged, counted and audited by reload(); the last good bundle serves on.
        with contextlib.suppress(BundleRefused):
            self.reload(who="watcher", why=f"bundle pointer changed to {seen[0]}")


class Pollable(Protocol):
    def poll(self) -> None: ...


class Watcher:
    """Polls the bundle pointer (and the canary, when one is configured) every ``interval_s``
    on a daemon thread."""

    def __init__(
        self, reloader: Reloader, interval_s: float, canary: Pollable | None = None
    ) -> None:
        self.reloader = reloader
        self.canary = canary
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="routeiq-watcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.reloader.poll()
            except Exception:  # the watcher must outlive any one bad poll
                log.exception("bundle watcher poll failed")
            if self.canary is None:
                continue
            try:
                # After the stable poll: a canary just promoted to stable is seen as such.
                self.canary.poll()
            except Exception:
                log.exception("canary poll failed")
