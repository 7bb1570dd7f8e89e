"""The promotion gate on versions without held-out metrics (bundles trained from traffic)."""

from __future__ import annotations

from pathlib import Path

import pytest

from decision_service.bundle_registry import Gate, GateRefused, LocalStore, Registry, RegistryError
from decision_service.manifest import ENCODER_MANIFEST, EncoderManifest

from .sync_fixtures import write_bundle, write_encoder


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return Registry(LocalStore(tmp_path / "registry"), "router")


def _publish(registry: Registry, root: Path, version: str, *, metrics: bool) -> str:
    encoder = root / "built" / "encoder"
    identity = (
        EncoderManifest.model_validate_json((encoder / ENCODER_MANIFEST).read_text()).identity
        if encoder.exists()
        else write_encoder(encoder)
    )
    return registry.publish(write_bundle(root / "built", version, identity, metrics=metrics))


def test_a_version_without_metrics_is_refused_but_can_be_forced(
    registry: Registry, tmp_path: Path
) -> None:
    version = _publish(registry, tmp_path, "from-traffic", metrics=False)
    with pytest.raises(GateRefused, match=r"no metrics\.json.*no held-out metric 'apgr'"):
        registry.promote(version, "stable", gate=Gate())
    assert registry.channel_version("stable") is None
    with pytest.raises(RegistryError, match="needs a reason"):
        registry.promote(version, "stable", gate=Gate(), force=True)
    pointer = registry.promote(
        version, "stable", gate=Gate(), force=True, reason="traffic, checked"
    )
    assert pointer["forced"] is True
    assert registry.channel_version("stable") == version


def test_an_incumbent_without_metrics_does_not_block_a_measured_version(
    registry: Registry, tmp_path: Path
) -> None:
    unmeasured = _publish(registry, tmp_path, "from-traffic", metrics=False)
    registry.promote(unmeasured, "stable", force=True, reason="bootstrap")
    measured = _publish(registry, tmp_path, "measured", metrics=True)
    registry.promote(measured, "stable", gate=Gate())
    assert registry.channel_version("stable") == measured
