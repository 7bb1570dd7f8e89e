"""Canary control: load the canary pointer, apply the rule, withdraw and remember why.

The canary arrives like the stable bundle does, through a pointer: ``canary_dir``, typically
the ``current`` link of a second sync agent that follows the registry's ``canary`` channel,
so promoting a version to ``canary`` makes every replica send it the share. The watcher
thread calls ``poll`` every tick: a moved pointer is loaded and fully validated off the hot
path (as a reload is) and becomes the canary; then the rule is applied to the figures.

A withdrawal is audited (the figure, its value, the threshold, the window), counted, and
remembered against the pointer's target, in ``state_file`` too when one is set so a restart
does not bring the canary back. Only a moved pointer re-promotes: a version pointed at
elsewhere and then back, or a new version.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict
from pathlib import Path

from prometheus_client import CollectorRegistry

from .audit import AuditLog
from .bundle import read_manifest
from .canary import CanaryArm, CanaryMetrics, CanaryMonitor, CanaryRule, Verdict
from .errors import BundleRefused, RouteIQError
from .reload import Reloader, fingerprint, refusal_reason
from .settings import ServiceSettings
from .versions import VersionRegistry

log = logging.getLogger(__name__)

RULE_WHO = "canary-rule"


class CanaryController:
    def __init__(
        self,
        pointer: Path,
        registry: VersionRegistry,
        reloader: Reloader,
        audit: AuditLog,
        metrics: CanaryMetrics,
        *,
        rule: CanaryRule,
        share: float,
        sticky_by: str,
        state_file: Path | None = None,
    ) -> None:
        self.pointer = Path(pointer)
        self.registry = registry
        self.reloader = reloader  # its loader validates as a reload does
        self.audit = audit
        self.metrics = metrics
        self.rule = rule
        self.share = share
        self.sticky_by = sticky_by
        self.state_file = state_file
        self.last_seen: tuple[str, int, int] | None = None
        self.withdrawn = self._read_state()  # {"version", "target", "why"} or None
        self.metrics.share.set(0)

    # ---- the watcher's tick ---------------------------------------------------------

    def poll(self) -> None:
        self._follow_pointer()
        arm = self.registry.canary
        if arm is None:
            return
        if arm.version == self.registry.active_version:
            # Promoted to stable: every request now gets it, the canary has nothing to add.
            self._stop(arm, f"canary {arm.version} is now the stable version")
            return
        verdict = arm.monitor.verdict()
        if verdict is not None:
            self.withdraw(arm, verdict)

    def _follow_pointer(self) -> None:
        seen = fingerprint(self.pointer)
        if seen == self.last_seen:
            return
        self.last_seen = seen
        held = self.withdrawn
        if held is not None and (seen is None or seen[0] != held["target"]):
            log.info("canary pointer moved: %s may be promoted again", held["version"])
            self._write_state(None)
        arm = self.registry.canary
        if seen is None:
            if arm is not None:
                self._stop(arm, f"canary pointer {self.pointer} removed")
            return
        target = Path(seen[0])
        try:
            version = read_manifest(target).bundle_version
        except BundleRefused as exc:
            self._refused(target, exc)
            return
        if self.withdrawn is not None and version == self.withdrawn["version"]:
            log.warning("canary %s stays withdrawn: %s", version, self.withdrawn["why"])
            return
        if version == self.registry.active_version:
            if arm is not None:
                self._stop(arm, f"canary pointer names the stable version {version}")
            return
        if arm is not None and arm.version == version:
            return
        try:
            bundle = self.reloader.load(target)
        except BundleRefused as exc:
            self._refused(target, exc)
            return
        monitor = CanaryMonitor(self.rule, self.metrics)
        self.registry.set_canary(bundle, self.share, self.sticky_by, monitor)
        self.metrics.share.set(self.share)
        log.info("canary %s takes %.4g of requests; stable %s", version, self.share, self._stable())
        self.audit.record(
            who="watcher",
            action="canary_start",
            from_=arm.version if arm is not None else self._stable(),
            to=version,
            why=f"canary pointer changed to {target}; share {self.share:g}",
        )

    def _refused(self, target: Path, exc: RouteIQError) -> None:
        self.reloader.metrics.refused.labels(reason=refusal_reason(exc)).inc()
        log.error("canary bundle refused; no canary from %s: %s", target, exc)
        self.audit.record(
            who="watcher",
            action="canary_start",
            from_=self._stable(),
            to=str(target),
            why="canary pointer changed",
            ok=False,
            detail=str(exc),
        )

    # ---- withdrawal -----------------------------------------------------------------

    def withdraw(self, arm: CanaryArm, verdict: Verdict) -> None:
        if self.registry.clear_canary(arm.version) is None:
            return  # replaced meanwhile: the verdict was about another canary
        why = verdict.describe()
        target = self.last_seen[0] if self.last_seen else str(arm.strategy.bundle.directory)
        self._write_state({"version": arm.version, "target": target, "why": why})
        self.metrics.withdrawals.labels(reason=verdict.reason).inc()
        self.metrics.share.set(0)
        log.warning("canary %s withdrawn: %s", arm.version, why)
        self.audit.record(
            who=RULE_WHO,
            action="canary_withdraw",
            from_=arm.version,
            to=self._stable(),
            why=why,
            detail=json.dumps(asdict(verdict), sort_keys=True),
        )

    def _stop(self, arm: CanaryArm, why: str) -> None:
        if self.registry.clear_canary(arm.version) is None:
            return
        self.metrics.share.set(0)
        log.info("canary %s stopped: %s", arm.version, why)
        self.audit.record(
            who="watcher", action="canary_stop", from_=arm.version, to=self._stable(), why=why
        )

    def _stable(self) -> str:
        return self.registry.active_version or ""

    # ---- remembered withdrawals -----------------------------------------------------

    def _read_state(self) -> dict[str, str] | None:
        if self.state_file is None or not self.state_file.exists():
            return None
        try:
            data = json.loads(self.state_file.read_text())
            return {k: str(data[k]) for k in ("version", "target", "why")}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            # An unreadable record must not keep a process from starting; say so loudly.
            log.error("canary state %s unreadable, ignored: %s", self.state_file, exc)
            return None

    def _write_state(self, state: dict[str, str] | None) -> None:
        self.withdrawn = state
        if self.state_file is None:
            return
        try:
            if state is None:
                self.state_file.unlink(missing_ok=True)
                return
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.state_file.with_name(f".{self.state_file.name}.{os.getpid()}")
            tmp.write_text(json.dumps(state, sort_keys=True))
            os.replace(tmp, self.state_file)
        except OSError as exc:
            # The withdrawal holds in memory either way; only a restart would forget it.
            log.error("cannot record canary state in %s: %s", self.state_file, exc)


def from_settings(
    settings: ServiceSettings,
    registry: VersionRegistry,
    reloader: Reloader,
    audit: AuditLog,
    metrics: CollectorRegistry,
) -> CanaryController | None:
    """The controller ``settings`` ask for (None without ``canary_dir``)."""
    if settings.canary_dir is None:
        return None
    rule = CanaryRule(
        window_s=settings.canary_window_s,
        min_samples=settings.canary_min_samples,
        max_error_rate=settings.canary_max_error_rate,
        max_fallback_excess=settings.canary_max_fallback_excess,
        max_latency_ratio=settings.canary_max_latency_ratio,
        latency_slack_ms=settings.canary_latency_slack_ms,
    )
    return CanaryController(
        settings.canary_dir,
        registry,
        reloader,
        audit,
        CanaryMetrics(metrics),
        rule=rule,
        share=settings.canary_share,
        sticky_by=settings.split_sticky_by,
        state_file=settings.canary_state_file,
    )
