"""Publish, promote, roll back and pull against a real S3 endpoint (moto server) and a dir."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from decision_service.bundle import load_bundle
from decision_service.bundle_registry import (
    Gate,
    GateRefused,
    LocalStore,
    Registry,
    RegistryError,
    S3Store,
)
from decision_service.bundle_registry.fetch import encoder_key
from decision_service.encoder import OnnxEncoder
from tools.local_service import free_loopback_port
from trainer.cli import main

pytestmark = pytest.mark.integration

BUCKET = "routeiq-bundles"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    pytest.importorskip("moto.server")
    import boto3
    from moto.server import ThreadedMotoServer

    port = free_loopback_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=BUCKET)
    try:
        yield endpoint
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _fake_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture(params=["local", "s3"])
def registry(request, tmp_path: Path) -> Registry:
    if request.param == "local":
        return Registry(LocalStore(tmp_path / "registry"), "router")
    endpoint = request.getfixturevalue("s3_endpoint")
    prefix = f"reg-{tmp_path.name}"
    return Registry(S3Store(BUCKET, prefix, endpoint_url=endpoint), "router")


def _better_and_worse(registry: Registry, trained_artifacts) -> tuple[str, str]:
    versions = [registry.publish(d) for d in trained_artifacts.bundle_dirs.values()]
    ranked = sorted(versions, key=lambda v: float(registry.metrics(v)["utility"]))
    assert registry.metrics(ranked[0])["utility"] < registry.metrics(ranked[1])["utility"]
    return ranked[1], ranked[0]


def test_publish_is_immutable_and_keeps_metrics_and_lineage(registry, trained_artifacts):
    bundle = trained_artifacts.bundle_dirs["knn"]
    version = registry.publish(bundle)
    assert registry.publish(bundle) == version  # identical: a no-op
    assert registry.versions() == [version]
    keys = registry.store.list(f"router/versions/{version}/")
    names = sorted(k.rsplit("/", 1)[-1] for k in keys)
    assert names == ["lineage.json", "manifest.json", "metrics.json", "router.onnx"]
    lineage = json.loads(registry.store.get(f"router/versions/{version}/lineage.json") or b"")
    assert lineage["data"]["sha256"] == trained_artifacts.prepared.data.sha256
    assert lineage["data"]["rows"]["test_queries"] == len(trained_artifacts.prepared.split.test)
    assert lineage["code"]["package"] and lineage["created_utc"].endswith("Z")
    assert {"apgr", "cpt50_pct", "utility"} <= set(registry.metrics(version))
    with pytest.raises(FileExistsError):
        registry.store.put(f"router/versions/{version}/router.onnx", b"other", if_absent=True)
    # The encoder the bundle names is stored once, under its content address.
    key = encoder_key(registry.manifest(version).encoder)
    assert registry.store.list("router/encoders/") == [
        f"router/encoders/{key}/{n}" for n in ("encoder.json", "encoder.onnx", "tokenizer.json")
    ]
    onnx = trained_artifacts.encoder_dir / "encoder.onnx"
    assert registry.store.get(f"router/encoders/{key}/encoder.onnx") == onnx.read_bytes()
    mlp = registry.publish(trained_artifacts.bundle_dirs["mlp"])
    keys = registry.store.list("router/events/")
    events = [json.loads(registry.store.get(k) or b"") for k in keys]
    uploaded = {e["version"]: e["encoder_uploaded"] for e in events if e["action"] == "publish"}
    assert uploaded == {version: True, mlp: False}


def test_gate_promote_rollback_and_pull(registry, trained_artifacts, tmp_path):
    better, worse = _better_and_worse(registry, trained_artifacts)
    gate = Gate(metric="utility")
    registry.promote(worse, "stable", gate=gate)
    registry.promote(better, "stable", gate=gate)
    assert registry.channel_version("stable") == better

    with pytest.raises(GateRefused, match=r"worse than .* which stable names now"):
        registry.promote(worse, "stable", gate=gate)
    with pytest.raises(GateRefused, match="worse than the floor"):
        registry.promote(better, "canary", gate=Gate(metric="utility", floor=2.0))
    with pytest.raises(RegistryError, match="needs a reason"):
        registry.promote(worse, "stable", gate=gate, force=True)
    assert registry.channel_version("stable") == better

    pointer = registry.promote(worse, "stable", gate=gate, force=True, reason="incident 42")
    assert pointer["forced"] is True and pointer["reason"] == "incident 42"
    events = [
        json.loads(registry.store.get(k) or b"") for k in registry.store.list("router/events/")
    ]
    forced = [e for e in events if e.get("forced")]
    assert forced and forced[-1]["reason"] == "incident 42" and forced[-1]["gate_refusals"]

    assert registry.rollback("stable", reason="undo")["version"] == better
    assert registry.channel_version("stable") == better

    dest = tmp_path / "bundles"
    target = registry.pull("stable", dest)
    assert target == dest / better and (dest / "current").resolve() == target.resolve()
    # pull delivers the encoder too, where the service looks for it (beside current).
    encoder = OnnxEncoder(dest / "encoder")
    assert encoder.identity == OnnxEncoder(trained_artifacts.encoder_dir).identity
    assert load_bundle(dest / "current", encoder).version == better
    registry.rollback("stable")
    registry.pull("stable", dest)
    assert (dest / "current").resolve().name == worse


def test_cli_publish_promote_pull_versions(trained_artifacts, tmp_path, capsys, s3_endpoint):
    bundle = trained_artifacts.bundle_dirs["mlp"]
    common = ["--registry", f"s3://{BUCKET}/cli", "--s3-endpoint", s3_endpoint]
    assert main(["publish", *common, "--bundle", str(bundle), "--promote", "canary"]) == 0
    version = load_bundle(bundle, OnnxEncoder(trained_artifacts.encoder_dir)).version
    out = capsys.readouterr().out
    assert f"published {version}" in out and f"canary -> {version}" in out
    # A floor no bundle reaches: refused (exit 3) unless forced with a reason.
    args = ["promote", *common, "--version", version, "--channel", "stable", "--floor", "1.5"]
    assert main(args) == 3
    assert main([*args, "--force", "--reason", "manual check"]) == 0
    assert main(["pull", *common, "--channel", "stable", "--dest", str(tmp_path / "d")]) == 0
    assert (tmp_path / "d" / "current").resolve().name == version
    capsys.readouterr()
    assert main(["versions", *common]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert listing == {"versions": [version], "channels": {"canary": version, "stable": version}}
    assert main(["rollback", *common, "--channel", "canary"]) == 2  # nothing earlier
