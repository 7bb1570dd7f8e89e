"""Admin operations: versions, reload, rollback, traffic split and status, all audited.

Transport-free; ``admin_servicer`` authenticates the caller and converts messages.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .audit import AuditLog
from .engine import DecisionEngine
from .errors import BundleRefused, RouteIQError
from .metrics import ServiceMetrics
from .reload import Reloader, ReloadResult
from .strategies import TrafficArm


@dataclass(frozen=True)
class VersionInfo:
    version: str
    strategy_name: str
    router_type: str
    loaded_utc: str
    active: bool
    directory: str
    encoder_digest: str


@dataclass(frozen=True)
class Status:
    active_versions: list[str]
    encoder_name: str
    encoder_digest: str
    uptime_s: float
    in_flight: int
    decisions_total: int
    split: tuple[TrafficArm, ...]
    sticky_by: str
    default_strategy: str
    serving: bool


class AdminOps:
    def __init__(
        self,
        engine: DecisionEngine,
        reloader: Reloader,
        audit: AuditLog,
        metrics: ServiceMetrics,
        *,
        in_flight: Callable[[], int],
        serving: Callable[[], bool],
    ) -> None:
        self.engine = engine
        self.reloader = reloader
        self.audit = audit
        self.metrics = metrics
        self._in_flight = in_flight
        self._serving = serving
        self._started = time.monotonic()

    def status(self) -> Status:
        split = self.engine.split
        _, default = self.engine.strategies()
        identity = self.engine.encoder.identity
        return Status(
            active_versions=self.engine.active_versions(),
            encoder_name=f"{identity.name}/{identity.variant}",
            encoder_digest=identity.digest,
            uptime_s=time.monotonic() - self._started,
            in_flight=self._in_flight(),
            decisions_total=self.engine.decisions_total,
            split=split.arms if split else (),
            sticky_by=split.sticky_by if split else "",
            default_strategy=default,
            serving=self._serving(),
        )

    def list_versions(self) -> list[VersionInfo]:
        active = self.engine.active_version
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
            for v in self.engine.versions()
        ]

    def reload(self, *, who: str, why: str) -> ReloadResult:
        # Reloader.reload audits both outcomes itself (the watcher uses it too).
        return self.reloader.reload(who=who, why=why)

    def rollback(self, to: str, *, who: str, why: str) -> tuple[str | None, str]:
        before = self.engine.active_version
        try:
            previous, active = self.engine.rollback(to)
        except (RouteIQError, BundleRefused) as exc:
            self.audit.record(
                who=who, action="rollback", from_=before, to=to, why=why, ok=False, detail=str(exc)
            )
            raise
        bundle = self.engine.bundle
        if bundle is not None:
            self.metrics.set_active(bundle.version, bundle.strategy_name)
        self.audit.record(who=who, action="rollback", from_=previous, to=active, why=why)
        return previous, active

    def set_split(
        self, arms: Sequence[tuple[str, str, float]], sticky_by: str, *, who: str, why: str
    ) -> tuple[tuple[TrafficArm, ...], str]:
        def describe(arms_: Sequence[TrafficArm]) -> str:
            return ",".join(f"{a.name}={a.strategy}:{a.weight:g}" for a in arms_) or "none"

        old = self.engine.split
        before = describe(old.arms if old else ())
        try:
            self.engine.set_split(arms, sticky_by or "user")
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
        new = self.engine.split
        self.audit.record(
            who=who,
            action="set_traffic_split",
            from_=before,
            to=describe(new.arms if new else ()),
            why=why,
        )
        return (new.arms, new.sticky_by) if new else ((), "")
