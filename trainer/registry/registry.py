"""Publish, promote, roll back and pull router bundles (layout in ``trainer.registry``)."""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from decision_service.manifest import BUNDLE_MANIFEST, BundleManifest, sha256_file
from trainer.atomic import point_symlink, staged
from trainer.registry.store import ObjectStore

METRICS_FILE = "metrics.json"
# Figures where lower is better; every other headline figure is higher-is-better.
LOWER_IS_BETTER = frozenset({"cpt50_pct", "cpt80_pct", "quality_mae"})
DEFAULT_GATE_METRIC = "apgr"


class RegistryError(RuntimeError):
    """The registry cannot do what was asked (missing version, bad bundle, ...)."""


class GateRefused(RegistryError):
    """The quality gate refused a promotion."""


@dataclass(frozen=True)
class Gate:
    metric: str = DEFAULT_GATE_METRIC
    floor: float | None = None  # absolute bound (a ceiling for lower-is-better figures)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _better_or_equal(metric: str, candidate: float, incumbent: float) -> bool:
    if metric in LOWER_IS_BETTER:
        return candidate <= incumbent + 1e-12
    return candidate >= incumbent - 1e-12


class Registry:
    def __init__(self, store: ObjectStore, name: str = "routeiq-router") -> None:
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"invalid registry name {name!r}")
        self.store = store
        self.name = name

    # ---- keys
    def _version_key(self, version: str, file: str = "") -> str:
        return f"{self.name}/versions/{version}/{file}".rstrip("/")

    def _channel_key(self, channel: str) -> str:
        if not channel.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"invalid channel name {channel!r}")
        return f"{self.name}/channels/{channel}.json"

    def _json(self, key: str) -> dict[str, object] | None:
        raw = self.store.get(key)
        if raw is None:
            return None
        loaded = json.loads(raw)
        if not isinstance(loaded, dict):
            raise RegistryError(f"{key} is not a JSON object")
        return loaded

    def _event(self, action: str, **fields: object) -> dict[str, object]:
        record = {"action": action, "time_utc": _now(), "user": os.environ.get("USER"), **fields}
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        key = f"{self.name}/events/{stamp}-{uuid.uuid4().hex[:8]}.json"
        self.store.put(key, json.dumps(record, indent=2).encode(), if_absent=True)
        return record

    # ---- versions
    def publish(self, bundle_dir: Path) -> str:
        """Upload a bundle directory as an immutable version; returns its version.

        Re-publishing the identical bundle is a no-op; a different bundle under an existing
        version is refused.
        """
        bundle_dir = Path(bundle_dir)
        manifest_bytes = (bundle_dir / BUNDLE_MANIFEST).read_bytes()
        manifest = BundleManifest.model_validate_json(manifest_bytes)
        version = manifest.bundle_version
        for name, digest in manifest.files.items():
            if sha256_file(bundle_dir / name) != digest:
                raise RegistryError(f"{bundle_dir / name} does not match its manifest sha256")
        existing = self.store.get(self._version_key(version, BUNDLE_MANIFEST))
        if existing is not None:
            if existing != manifest_bytes:
                raise RegistryError(f"version {version} already exists with different content")
            return version
        for name in sorted(manifest.files):
            key = self._version_key(version, name)
            data = (bundle_dir / name).read_bytes()
            current = self.store.get(key)
            if current is None:
                self.store.put(key, data, if_absent=True)
            elif current != data:  # left by an interrupted publish of another bundle
                raise RegistryError(f"{key} exists with different content")
        self.store.put(self._version_key(version, BUNDLE_MANIFEST), manifest_bytes, if_absent=True)
        self._event("publish", version=version, router_type=manifest.router_type)
        return version

    def versions(self) -> list[str]:
        suffix = f"/{BUNDLE_MANIFEST}"
        prefix = f"{self.name}/versions/"
        return sorted(
            k[len(prefix) : -len(suffix)]
            for k in self.store.list(prefix)
            if k.endswith(suffix) and k.count("/") == 3
        )

    def manifest(self, version: str) -> BundleManifest:
        raw = self.store.get(self._version_key(version, BUNDLE_MANIFEST))
        if raw is None:
            raise RegistryError(f"version {version!r} is not in the registry")
        return BundleManifest.model_validate_json(raw)

    def metrics(self, version: str) -> dict[str, object]:
        doc = self._json(self._version_key(version, METRICS_FILE))
        if doc is None:
            raise RegistryError(f"version {version} has no {METRICS_FILE}")
        headline = doc.get("headline")
        return headline if isinstance(headline, dict) else {}

    # ---- channels
    def channel(self, channel: str) -> dict[str, object] | None:
        return self._json(self._channel_key(channel))

    def channel_version(self, channel: str) -> str | None:
        doc = self.channel(channel)
        version = doc.get("version") if doc else None
        return version if isinstance(version, str) else None

    def _metric(self, version: str, metric: str) -> float:
        value = self.metrics(version).get(metric)
        if not isinstance(value, int | float):
            raise GateRefused(f"version {version} has no numeric held-out metric {metric!r}")
        return float(value)

    def check_gate(self, version: str, channel: str, gate: Gate) -> list[str]:
        """Reasons the gate refuses ``version`` on ``channel`` (empty: it passes)."""
        reasons = []
        value = self._metric(version, gate.metric)
        if gate.floor is not None and not _better_or_equal(gate.metric, value, gate.floor):
            reasons.append(f"{gate.metric} {value:g} is worse than the floor {gate.floor:g}")
        current = self.channel_version(channel)
        if current is not None and current != version:
            try:
                incumbent = self._metric(current, gate.metric)
            except GateRefused:
                incumbent = None
            if incumbent is not None and not _better_or_equal(gate.metric, value, incumbent):
                reasons.append(
                    f"{gate.metric} {value:g} is worse than {incumbent:g} of {current}, "
                    f"which {channel} names now"
                )
        return reasons

    def promote(
        self,
        version: str,
        channel: str = "stable",
        *,
        gate: Gate | None = None,
        force: bool = False,
        reason: str | None = None,
    ) -> dict[str, object]:
        """Point ``channel`` at ``version`` if the gate passes (or ``force`` with a reason)."""
        self.manifest(version)  # must exist
        if force and not (reason and reason.strip()):
            raise RegistryError("a forced promotion needs a reason")
        refusals = self.check_gate(version, channel, gate or Gate())
        if refusals and not force:
            raise GateRefused(f"refusing to promote {version} to {channel}: " + "; ".join(refusals))
        return self._move(
            channel,
            version,
            "promote",
            forced=bool(refusals) and force,
            reason=reason,
            gate_refusals=refusals,
        )

    def rollback(self, channel: str = "stable", *, reason: str | None = None) -> dict[str, object]:
        """Point ``channel`` back at the version it named before the current one."""
        doc = self.channel(channel)
        history = _history(doc)
        if not doc or not history:
            raise RegistryError(f"channel {channel} has no earlier version to roll back to")
        previous = str(history.pop())
        return self._move(channel, previous, "rollback", reason=reason, history=history)

    def _move(
        self,
        channel: str,
        version: str,
        action: str,
        *,
        reason: str | None,
        forced: bool = False,
        gate_refusals: list[str] | None = None,
        history: list[str] | None = None,
    ) -> dict[str, object]:
        doc = self.channel(channel) or {}
        current = doc.get("version")
        if history is None:
            history = list(_history(doc))
            if isinstance(current, str) and current != version:
                history.append(current)
        pointer: dict[str, object] = {
            "version": version,
            "updated_utc": _now(),
            "action": action,
            "reason": reason,
            "forced": forced,
            "history": history[-50:],
        }
        self.store.put(self._channel_key(channel), json.dumps(pointer, indent=2).encode())
        self._event(
            action,
            channel=channel,
            version=version,
            previous=current,
            reason=reason,
            forced=forced,
            gate_refusals=gate_refusals or [],
        )
        return pointer

    # ---- pull
    def pull(self, channel: str, dest: Path) -> Path:
        """Materialise the channel's bundle in ``dest/<version>``; switch ``dest/current``."""
        version = self.channel_version(channel)
        if version is None:
            raise RegistryError(f"channel {channel} names no version")
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        target = dest / version
        raw_manifest = self.store.get(self._version_key(version, BUNDLE_MANIFEST))
        if raw_manifest is None:
            raise RegistryError(f"version {version!r} is not in the registry")
        manifest = BundleManifest.model_validate_json(raw_manifest)
        if not (target.is_dir() and _matches(target, manifest)):
            with staged(dest, version) as staging:
                for name in manifest.files:
                    data = self.store.get(self._version_key(version, name))
                    if data is None:
                        raise RegistryError(f"version {version} is missing {name}")
                    (staging.path / name).write_bytes(data)
                    if sha256_file(staging.path / name) != manifest.files[name]:
                        raise RegistryError(f"{name} of {version} does not match its sha256")
                (staging.path / BUNDLE_MANIFEST).write_bytes(raw_manifest)
                staging.publish(target, replace=True)
        point_symlink(dest / "current", version)
        return target


def _history(doc: dict[str, object] | None) -> list[str]:
    history = doc.get("history") if doc else None
    return [str(v) for v in history] if isinstance(history, list) else []


def _matches(directory: Path, manifest: BundleManifest) -> bool:
    try:
        return all(sha256_file(directory / n) == d for n, d in manifest.files.items())
    except OSError:
        return False
