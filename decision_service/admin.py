"""Admin operations: versions, reload, rollback, traffic split and status, all audited.

Transport-free; ``admin_servicer`` converts messages, and the error boundary answers
what these raise.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from .audit import AuditLog
from .domain import ReloadResult, RollbackResult, SplitResult, Status, TrafficArm, VersionInfo
from .errors import RouteIQError
from .metrics import ServiceMetrics
from .reload import Reloader
from .versions import VersionRegistry


class AdminOps:
    def __init__(
        self,
        registry: VersionRegistry,
        reloader: Reloader,
        audit: AuditLog,
        metrics: ServiceMetrics,
        *,
        in_flight: Callable[[], int],
        serving: Callable[[], bool],
        decisions_total: Callable[[], int],
    ) -> None:
        self.registry = registry
        self.reloader = reloader
        self.audit = audit
        self.metrics = metrics
        self._in_flight = in_flight
        self._serving = serving
        self._decisions_total = decisions_total
        self._started = time.monotonic()

    def status(self) -> Status:
        listing = self.registry.listing()
        identity = self.registry.encoder.identity
        return Status(
            active_versions=self.registry.active_versions(),
            encoder_name=f"{identity.name}/{identity.variant}",
            encoder_digest=identity.digest,
            uptime_s=time.monotonic() - self._started,
            in_flight=self._in_flight(),
            decisions_total=self._decisions_total(),
            split=listing.split,
            sticky_by=listing.sticky_by,
            default_strategy=listing.default,
            serving=self._serving(),
        )

    def list_versions(self) -> list[VersionInfo]:
        active = self.registry.active_version
        return [
            VersionInfo(
                version=v.version,
                strategy_name=v.bundle.strategy_name,
                router_type=v.bundle.manifest.router_type,
                loaded_utc=v.loaded_utc,
                active=v.version == active,
                directory=str(v.bundle.directory),
                encoder_digest=v.bundle.manifest.encoder.digest,
            )
            for v in self.registry.versions()
        ]

    def reload(self, *, who: str, why: str) -> ReloadResult:
        # Reloader.reload audits both outcomes itself (the watcher uses it too).
        return self.reloader.reload(who=who, why=why)

    def rollback(self, to: str, *, who: str, why: str) -> RollbackResult:
        before = self.registry.active_version
        try:
            previous, active = self.registry.rollback(to)
        except RouteIQError as exc:
            self.audit.record(
                who=who, action="rollback", from_=before, to=to, why=why, ok=False, detail=str(exc)
            )
            raise
        bundle = self.registry.bundle
        if bundle is not None:
            self.metrics.set_active(bundle.version, bundle.strategy_name)
        self.audit.record(who=who, action="rollback", from_=previous, to=active, why=why)
        return RollbackResult(previous, active)

    def set_split(
        self, arms: Sequence[tuple[str, str, float]], sticky_by: str, *, who: str, why: str
    ) -> SplitResult:
        def describe(arms_: Sequence[TrafficArm]) -> str:
            return ",".join(f"{a.name}={a.strategy}:{a.weight:g}" for a in arms_) or "none"

        old = self.registry.split
        before = describe(old.arms if old else ())
        try:
            self.registry.set_split(arms, sticky_by or "user")
        except RouteIQError as exc:
            self.audit.record(
                who=who,
                action="set_traffic_split",
                from_=before,
                to=",".join(f"{n}={s}:{w:g}" for n, s, w in arms),
                why=why,
                ok=False,
                detail=str(exc),
            )
            raise
        new = self.registry.split
        self.audit.record(
            who=who,
            action="set_traffic_split",
            from_=before,
            to=describe(new.arms if new else ()),
            why=why,
        )
        return SplitResult(new.arms, new.sticky_by) if new else SplitResult((), "")
