"""The sync agent's passes against a directory registry: what it installs, reuses, refuses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from decision_service.bundle_registry import LocalStore, Registry
from decision_service.bundle_registry.fetch import encoder_key
from decision_service.manifest import EncoderIdentity
from decision_service.sync import SyncAgent, SyncSettings

from .sync_fixtures import write_bundle, write_encoder, write_public_key

NAME = "router"


@dataclass
class World:
    root: Path
    registry: Registry
    key: Ed25519PrivateKey
    public_key: Path
    encoder: EncoderIdentity

    @property
    def store(self) -> LocalStore:
        assert isinstance(self.registry.store, LocalStore)
        return self.registry.store

    def publish(self, version: str, **kwargs: object) -> Path:
        bundle = write_bundle(self.root / "built", version, self.encoder, key=self.key, **kwargs)  # type: ignore[arg-type]
        self.registry.publish(bundle)
        return bundle

    def agent(self, models: str = "models", **overrides: object) -> SyncAgent:
        fields: dict[str, object] = {
            "registry": str(self.store.root),
            "registry_name": NAME,
            "models_dir": self.root / models,
            "bundle_public_key_file": self.public_key,
            "require_signed_bundles": True,
            **overrides,
        }
        return SyncAgent(SyncSettings(**fields))  # type: ignore[arg-type]


@pytest.fixture
def world(tmp_path: Path) -> World:
    key = Ed25519PrivateKey.generate()
    return World(
        root=tmp_path,
        registry=Registry(LocalStore(tmp_path / "registry"), NAME),
        key=key,
        public_key=write_public_key(key, tmp_path / "bundles.pub.pem"),
        encoder=write_encoder(tmp_path / "built" / "encoder"),
    )


def _size(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.iterdir())


def _visible(models: Path) -> list[str]:
    return sorted(p.name for p in models.iterdir())


def _sample(agent: SyncAgent, name: str, **labels: str) -> float | None:
    return agent.metrics.registry.get_sample_value(name, labels)


def _attempts(agent: SyncAgent, result: str) -> float | None:
    return _sample(agent, "routeiq_sync_attempts_total", result=result)


def test_installs_shares_the_encoder_and_rolls_back_without_downloading(world: World) -> None:
    v1 = world.publish("v1")
    v2 = world.publish("v2")
    key = encoder_key(world.encoder)
    assert world.store.list(f"{NAME}/encoders/") == [
        f"{NAME}/encoders/{key}/{n}" for n in ("encoder.json", "encoder.onnx", "tokenizer.json")
    ]
    events = [json.loads(world.store.get(k) or b"") for k in world.store.list(f"{NAME}/events/")]
    assert [(e["version"], e["encoder_uploaded"], e["signed"]) for e in events] == [
        ("v1", True, True),
        ("v2", False, True),
    ]
    agent = world.agent()
    models = agent.dest
    world.registry.promote("v1", "stable")

    first = agent.attempt()
    assert first is not None and (first.result, first.version) == ("installed", "v1")
    assert first.downloaded_bytes == _size(v1) + _size(world.root / "built" / "encoder")
    assert _visible(models) == ["current", "encoder", "encoders", "v1"]
    assert os.readlink(models / "current") == "v1"
    assert os.readlink(models / "encoder") == f"encoders/{key}"
    assert (models / "encoder" / "encoder.onnx").read_bytes() == b"encoder-weights"
    assert (models / "v1" / "manifest.sig").is_file()

    again = agent.attempt()
    assert again is not None and (again.result, again.downloaded_bytes) == ("unchanged", 0)

    world.registry.promote("v2", "stable")
    second = agent.attempt()
    assert second is not None and second.result == "installed"
    assert second.downloaded_bytes == _size(v2)  # the encoder is already here
    assert os.readlink(models / "current") == "v2"

    world.registry.rollback("stable")
    back = agent.attempt()
    assert back is not None and (back.result, back.version, back.downloaded_bytes) == (
        "installed",
        "v1",
        0,
    )
    assert os.readlink(models / "current") == "v1"
    assert (_attempts(agent, "installed"), _attempts(agent, "unchanged")) == (3, 1)
    assert _sample(agent, "routeiq_sync_active_version_info", version="v1") == 1


def test_a_tampered_object_is_refused_and_never_visible(world: World) -> None:
    world.publish("v1")
    original = world.publish("v2")
    world.registry.promote("v1", "stable")
    agent = world.agent()
    assert agent.attempt() is not None
    before = _visible(agent.dest)

    router_key = f"{NAME}/versions/v2/router.onnx"
    world.store.put(router_key, b"not the published router")
    world.registry.promote("v2", "stable")
    assert agent.attempt() is None
    assert _attempts(agent, "refused") == 1
    # Immutable objects fail the same way again: retried at the slowest rate at once.
    assert (
        agent.settings.sync_retry_max_s / 2 <= agent.next_wait() <= agent.settings.sync_retry_max_s
    )
    assert _visible(agent.dest) == before  # no v2, no staging leftovers
    assert os.readlink(agent.dest / "current") == "v1"

    world.store.put(router_key, (original / "router.onnx").read_bytes())  # repaired
    # A Redis wake-up does not fetch the refused version again; the retry timer does.
    assert agent.attempt(woken=True) is None and _attempts(agent, "refused") == 2
    assert os.readlink(agent.dest / "current") == "v1"
    result = agent.attempt()
    assert result is not None and result.version == "v2"


def test_a_truncated_download_is_refused_and_never_visible(world: World) -> None:
    """An object cut short (an interrupted upload or transfer) fails its hash like a tampered
    one: the version is refused and the last good one stays current."""
    world.publish("v1")
    original = world.publish("v2")
    world.registry.promote("v1", "stable")
    agent = world.agent()
    assert agent.attempt() is not None
    before = _visible(agent.dest)
    whole = (original / "router.onnx").read_bytes()
    world.store.put(f"{NAME}/versions/v2/router.onnx", whole[: len(whole) // 2])
    world.registry.promote("v2", "stable")
    assert agent.attempt() is None and _attempts(agent, "refused") == 1
    assert _visible(agent.dest) == before
    assert os.readlink(agent.dest / "current") == "v1"


@pytest.mark.parametrize("attack", ["unsigned", "other_key", "manifest_edited"])
def test_signature_failures_are_refused(world: World, attack: str) -> None:
    if attack == "unsigned":
        world.registry.publish(write_bundle(world.root / "built", "v1", world.encoder))
    elif attack == "other_key":
        bundle = write_bundle(
            world.root / "built", "v1", world.encoder, key=Ed25519PrivateKey.generate()
        )
        world.registry.publish(bundle)
    else:
        bundle = world.publish("v1")
        raw = json.loads((bundle / "manifest.json").read_text())
        raw["default_cost_weight"] = 0.9  # hashes still match; the signed bytes do not
        world.store.put(f"{NAME}/versions/v1/manifest.json", json.dumps(raw).encode())
    world.registry.promote("v1", "stable", force=True, reason="test")
    agent = world.agent()
    assert agent.attempt() is None and _attempts(agent, "refused") == 1
    assert _visible(agent.dest) == []


def test_a_manifest_naming_a_path_outside_is_refused(world: World) -> None:
    bundle = world.publish("v1")
    raw = json.loads((bundle / "manifest.json").read_text())
    raw["bundle_version"] = "evil"
    raw["files"]["../../escape"] = raw["files"].pop("router.onnx")
    world.store.put(f"{NAME}/versions/evil/manifest.json", json.dumps(raw).encode())
    world.store.put(f"{NAME}/channels/stable.json", json.dumps({"version": "evil"}).encode())
    agent = world.agent(require_signed_bundles=False, bundle_public_key_file=None)
    assert agent.attempt() is None and _attempts(agent, "refused") == 1
    assert not (world.root / "escape").exists()
    assert _visible(agent.dest) == []


def test_a_tampered_encoder_is_refused(world: World) -> None:
    world.publish("v1")
    key = encoder_key(world.encoder)
    world.store.put(f"{NAME}/encoders/{key}/encoder.onnx", b"other weights")
    world.registry.promote("v1", "stable")
    agent = world.agent()
    assert agent.attempt() is None and _attempts(agent, "refused") == 1
    assert sorted(p.name for p in (agent.dest / "encoders").iterdir()) == []
    assert "current" not in _visible(agent.dest)


def test_store_down_keeps_the_last_good_bundle_and_backs_off(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in (("AWS_ACCESS_KEY_ID", "x"), ("AWS_SECRET_ACCESS_KEY", "x")):
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    world.publish("v1")
    world.registry.promote("v1", "stable")
    assert world.agent().attempt() is not None  # models/current -> v1
    from tests.local_redis import _free_port

    dead = world.agent(
        registry="s3://bucket/reg",
        s3_endpoint=f"http://127.0.0.1:{_free_port()}",  # nothing listens there
        sync_retry_max_s=4.0,
    )
    waits = []
    for _ in range(6):
        assert dead.attempt() is None
        waits.append(dead.next_wait())
    assert _attempts(dead, "store_unavailable") == 6
    assert (
        dead.metrics.registry.get_sample_value("routeiq_sync_degraded", {"dependency": "store"})
        == 1
    )
    assert os.readlink(dead.dest / "current") == "v1"
    assert 0.25 <= waits[0] <= 0.5 and 0.5 <= waits[1] <= 1.0  # 0.5 s doubling, half jitter
    assert all(2.0 <= w <= 4.0 for w in waits[3:])  # capped at sync_retry_max_s


def test_polls_with_jitter_without_redis(world: World) -> None:
    agent = world.agent(sync_fallback_interval_s=2.0, sync_jitter=0.25)
    waits = [agent.next_wait() for _ in range(200)]
    assert all(1.5 <= w <= 2.5 for w in waits)
    assert max(waits) - min(waits) > 0.5  # spread, not one fixed period


def test_prune_keeps_the_newest_versions_and_their_encoders(world: World) -> None:
    agent = world.agent(sync_keep_versions=2)
    other = write_encoder(world.root / "built-b" / "encoder", weights=b"other encoder")
    world.publish("v1")
    world.publish("v2")
    world.registry.publish(write_bundle(world.root / "built-b", "v3", other, key=world.key))
    world.registry.publish(write_bundle(world.root / "built-b", "v4", other, key=world.key))
    for version in ("v1", "v2", "v3"):
        world.registry.promote(version, "stable", force=True, reason="test")
        assert agent.attempt() is not None
    assert _visible(agent.dest) == ["current", "encoder", "encoders", "v2", "v3"]
    assert os.readlink(agent.dest / "encoder") == f"encoders/{encoder_key(other)}"
    assert len(list((agent.dest / "encoders").iterdir())) == 2  # v2 still needs the first
    world.registry.promote("v4", "stable", force=True, reason="test")
    assert agent.attempt() is not None
    assert _visible(agent.dest) == ["current", "encoder", "encoders", "v3", "v4"]
    assert [p.name for p in (agent.dest / "encoders").iterdir()] == [encoder_key(other)]


def test_leftovers_of_a_killed_run_are_removed(world: World) -> None:
    agent = world.agent()
    (agent.dest / "encoders" / ".abc.tmp-1").mkdir(parents=True)
    (agent.dest / ".v9.tmp-2").mkdir()
    (agent.dest / ".v9.tmp-2" / "router.onnx").write_bytes(b"half")
    os.symlink("v9", agent.dest / ".current.link-77")
    agent.clean_staging()
    assert _visible(agent.dest) == ["encoders"]
    assert list((agent.dest / "encoders").iterdir()) == []


def test_the_agent_imports_without_torch_or_sklearn() -> None:
    code = (
        "import sys, decision_service.sync, decision_service.sync.__main__, "
        "decision_service.bundle_registry.fetch, decision_service.bundle_registry.registry\n"
        "bad = sorted(m for m in ('torch', 'sklearn', 'trainer') if m in sys.modules)\n"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_once_installs_and_exits_like_an_init_container(world: World) -> None:
    command = [
        sys.executable, "-m", "decision_service.sync", "--once", "--registry",
        str(world.store.root), "--models-dir", str(world.root / "init"),
    ]  # fmt: skip
    env = {
        **os.environ,
        "ROUTEIQ_REGISTRY_NAME": NAME,
        "ROUTEIQ_BUNDLE_PUBLIC_KEY_FILE": str(world.public_key),
        "ROUTEIQ_REQUIRE_SIGNED_BUNDLES": "true",
    }
    empty = subprocess.run(command, env=env, capture_output=True, text=True)
    assert empty.returncode == 1 and "channel stable names no version" in empty.stderr
    world.publish("v1")
    world.registry.promote("v1", "stable")
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert os.readlink(world.root / "init" / "current") == "v1"
