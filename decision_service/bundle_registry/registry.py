"""Publish, promote, roll back and pull router bundles (layout in the package docstring)."""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from decision_service.manifest import (
    BUNDLE_MANIFEST,
    ENCODER_MANIFEST,
    BundleManifest,
    EncoderManifest,
    sha256_file,
)
from decision_service.signing import SIGNATURE_FILE, SignaturePolicy

from .errors import GateRefused, RegistryError
from .fetch import (
    Fetched,
    Fetcher,
    activate,
    encoder_key,
    encoder_object_key,
    verify_encoder_dir,
    version_key,
)
from .store import ObjectStore

METRICS_FILE = "metrics.json"
# Figures where lower is better; every other headline figure is higher-is-better.
LOWER_IS_BETTER = frozenset({"cpt50_pct", "cpt80_pct", "quality_mae"})
DEFAULT_GATE_METRIC = "apgr"


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
        return version_key(self.name, version, file)

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
    def publish(self, bundle_dir: Path, encoder_dir: Path | None = None) -> str:
        """Upload a bundle directory as an immutable version; returns its version.

        The bundle's ``manifest.sig`` goes with it when present. The encoder it was trained
        on is stored once under its content address (``encoders/<key>``) unless already
        there; ``encoder_dir`` defaults to the ``encoder`` folder beside the bundle (the
        trainer's layout), and must be exactly the encoder the manifest names. Re-publishing
        the identical bundle is a no-op; a different bundle under an existing version is
        refused.
        """
        bundle_dir = Path(bundle_dir)
        manifest_bytes = (bundle_dir / BUNDLE_MANIFEST).read_bytes()
        manifest = BundleManifest.model_validate_json(manifest_bytes)
        version = manifest.bundle_version
        for name, digest in manifest.files.items():
            if sha256_file(bundle_dir / name) != digest:
                raise RegistryError(f"{bundle_dir / name} does not match its manifest sha256")
        uploaded_encoder = self._publish_encoder(
            manifest, encoder_dir if encoder_dir is not None else bundle_dir.parent / "encoder"
        )
        existing = self.store.get(self._version_key(version, BUNDLE_MANIFEST))
        if existing is not None:
            if existing != manifest_bytes:
                raise RegistryError(f"version {version} already exists with different content")
            return version
        signature = bundle_dir / SIGNATURE_FILE
        uploads = sorted(manifest.files) + ([SIGNATURE_FILE] if signature.is_file() else [])
        for name in uploads:
            self._put_once(self._version_key(version, name), (bundle_dir / name).read_bytes())
        # The manifest goes last: a version is visible once its manifest exists.
        self.store.put(self._version_key(version, BUNDLE_MANIFEST), manifest_bytes, if_absent=True)
        self._event(
            "publish",
            version=version,
            router_type=manifest.router_type,
            encoder=encoder_key(manifest.encoder),
            encoder_uploaded=uploaded_encoder,
            signed=signature.is_file(),
        )
        return version

    def _put_once(self, key: str, data: bytes) -> None:
        current = self.store.get(key)
        if current is None:
            self.store.put(key, data, if_absent=True)
        elif current != data:  # left by an interrupted publish of another bundle
            raise RegistryError(f"{key} exists with different content")

    def _publish_encoder(self, manifest: BundleManifest, encoder_dir: Path) -> bool:
        """Store the bundle's encoder under its content address; False when already there."""
        key = encoder_key(manifest.encoder)
        marker = encoder_object_key(self.name, key, ENCODER_MANIFEST)
        if self.store.exists(marker):
            return False
        if not (Path(encoder_dir) / ENCODER_MANIFEST).is_file():
            raise RegistryError(
                f"encoder {manifest.encoder.digest} of {manifest.bundle_version} is not in the "
                f"registry and {encoder_dir} holds no encoder: pass the encoder it was trained on"
            )
        try:
            verify_encoder_dir(encoder_dir, manifest.encoder)
        except RegistryError as exc:
            raise RegistryError(f"{encoder_dir} is not the bundle's encoder: {exc}") from exc
        raw = (Path(encoder_dir) / ENCODER_MANIFEST).read_bytes()
        encoder = EncoderManifest.model_validate_json(raw)
        for name in (encoder.onnx_file, encoder.tokenizer_file):
            data = (Path(encoder_dir) / name).read_bytes()
            self._put_once(encoder_object_key(self.name, key, name), data)
        # encoder.json last, as for versions: its presence means the encoder is complete.
        self.store.put(marker, raw, if_absent=True)
        return True

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
        try:
            headline = self.metrics(version)
        except RegistryError as exc:  # no metrics.json at all, e.g. trained from traffic
            raise GateRefused(f"{exc}: no held-out metric {metric!r}") from None
        value = headline.get(metric)
        if not isinstance(value, int | float):
            raise GateRefused(f"version {version} has no numeric held-out metric {metric!r}")
        return float(value)

    def check_gate(self, version: str, channel: str, gate: Gate) -> list[str]:
        """Reasons the gate refuses ``version`` on ``channel`` (empty: it passes)."""
        reasons = []
        try:
            value = self._metric(version, gate.metric)
        except GateRefused as exc:
            # A refusal like any other, so --force --reason can still promote it (a bundle
            # trained from traffic by trainer.learn has no held-out metrics.json).
            return [str(exc)]
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
    def pull(self, channel: str, dest: Path, policy: SignaturePolicy | None = None) -> Path:
        """Materialise the channel's bundle and its encoder in ``dest``; switch the pointers.

        ``dest/<version>``, ``dest/encoders/<key>``, ``dest/encoder`` and ``dest/current``
        as laid out in ``bundle_registry.fetch``: verified in staging, then renamed.
        """
        fetched = self.fetch(channel, dest, policy)
        activate(dest, fetched)
        return fetched.bundle_dir

    def fetch(self, channel: str, dest: Path, policy: SignaturePolicy | None = None) -> Fetched:
        version = self.channel_version(channel)
        if version is None:
            raise RegistryError(f"channel {channel} names no version")
        Path(dest).mkdir(parents=True, exist_ok=True)
        return Fetcher(self.store, self.name, dest, policy).fetch(version)


def _history(doc: dict[str, object] | None) -> list[str]:
    history = doc.get("history") if doc else None
    return [str(v) for v in history] if isinstance(history, list) else []
