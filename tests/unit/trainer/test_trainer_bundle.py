"""Bundles written by the trainer: layout, manifest, validation by the service's loader."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from decision_service.bundle import load_bundle, read_manifest
from decision_service.encoder import OnnxEncoder
from decision_service.errors import BundleRefused
from trainer import bundle_writer
from trainer.bundle_writer import ENCODER_TOLERANCE, write_bundle
from trainer.evaluate import DEFAULT_COST_WEIGHT
from trainer.synthetic import MODELS


@pytest.mark.parametrize("router_type", ["knn", "mlp"])
def test_bundle_loads_and_its_manifest_says_what_was_trained(router_type, trained_artifacts):
    pointer = trained_artifacts.bundle_dirs[router_type]
    encoder = OnnxEncoder(trained_artifacts.encoder_dir)
    bundle = load_bundle(pointer, encoder)
    manifest = bundle.manifest
    assert re.fullmatch(rf"{router_type}-\d{{8}}T\d{{6}}Z-[0-9a-f]{{8}}", manifest.bundle_version)
    assert pointer.resolve().name == manifest.bundle_version
    assert manifest.bundle_version.endswith(manifest.files["router.onnx"][:8])
    assert manifest.strategy_name == f"routeiq-{router_type}"
    assert manifest.router_type == router_type
    assert manifest.encoder == encoder.identity
    assert [(c.model_name, c.provider, c.cost_per_million_tokens) for c in manifest.candidates] == [
        (m.name, m.provider, m.price_per_million) for m in MODELS
    ]
    assert manifest.default_cost_weight == DEFAULT_COST_WEIGHT
    assert manifest.encoder_tolerance == ENCODER_TOLERANCE
    assert (manifest.router.input_name, manifest.router.output_name) == ("embedding", "quality")
    assert (manifest.router.input_dim, manifest.router.output_dim) == (384, len(MODELS))
    training = manifest.training
    parity = training["parity"]
    assert isinstance(parity, dict)
    assert parity["max_abs_diff"] <= manifest.parity_tolerance == parity["tolerance"] == 1e-5
    data = training["data"]
    assert (
        isinstance(data, dict) and data["queries"] == data["train_queries"] + data["test_queries"]
    )
    assert len(str(data["sha256"])) == 64 and data["origin"]["seed"] == 11
    # Samples are held-out prompts, replayable through the serving path.
    held_out = {
        trained_artifacts.prepared.data.prompts[i] for i in trained_artifacts.prepared.split.test
    }
    assert len(manifest.samples) == 3 and {s.prompt for s in manifest.samples} <= held_out
    sample_embeddings = np.array([s.embedding for s in manifest.samples], np.float32)
    np.testing.assert_allclose(
        bundle.head.predict(sample_embeddings),
        [s.quality for s in manifest.samples],
        atol=manifest.parity_tolerance,
    )


def test_artifacts_are_laid_out_for_the_service(trained_artifacts):
    root = trained_artifacts.root
    for router_type, pointer in trained_artifacts.bundle_dirs.items():
        assert pointer.is_symlink() and pointer.parent == root
        assert sorted(p.name for p in pointer.iterdir()) == [
            "lineage.json",
            "manifest.json",
            "metrics.json",
            "router.onnx",
        ]
        assert set(read_manifest(pointer).files) == {"lineage.json", "metrics.json", "router.onnx"}
        # The service looks for the encoder beside the bundle path, resolved or not.
        assert (pointer.parent / "encoder" / "encoder.json").is_file()
        assert (pointer.resolve().parent / "encoder" / "encoder.json").is_file()
        assert read_manifest(pointer).router_type == router_type
    assert not [p.name for p in root.iterdir() if ".tmp-" in p.name]


def test_writer_refuses_to_publish_a_bundle_the_service_would_refuse(
    trained_artifacts, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from trainer.routers import ExportedRouter

    pointer = trained_artifacts.bundle_dirs["knn"]
    manifest = read_manifest(pointer)
    exported = ExportedRouter(
        router_type="knn",
        onnx_bytes=(pointer / "router.onnx").read_bytes(),
        input_dim=384,
        output_dim=len(manifest.candidates),
        hyperparameters={},
        parity_max_abs_diff=0.0,
        parity_tolerance=1e-5,
        parity_rows=1,
    )
    encoder = OnnxEncoder(trained_artifacts.encoder_dir)
    genuine = bundle_writer._samples

    def drifted(*args: object, **kwargs: object) -> list:
        return [
            s.model_copy(update={"quality": [q + 0.01 for q in s.quality]})
            for s in genuine(*args, **kwargs)  # type: ignore[arg-type]
        ]

    monkeypatch.setattr(bundle_writer, "_samples", drifted)
    with pytest.raises(BundleRefused, match="differ from the manifest's samples"):
        write_bundle(
            tmp_path,
            exported,
            encoder=encoder,
            candidates=manifest.candidates,
            sample_prompts=["hello"],
            training={},
        )
    assert list(tmp_path.iterdir()) == []

    monkeypatch.setattr(bundle_writer, "_samples", genuine)
    written = write_bundle(
        tmp_path,
        exported,
        encoder=encoder,
        candidates=manifest.candidates,
        sample_prompts=["hello", "write a sort in Go"],
        training={"note": np.float32(0.5)},
    )
    assert [p.name for p in tmp_path.iterdir()] == [written.manifest.bundle_version]
    assert written.manifest.training == {"note": 0.5}
    with pytest.raises(ValueError, match="candidates"):
        write_bundle(
            tmp_path,
            exported,
            encoder=encoder,
            candidates=manifest.candidates[:2],
            sample_prompts=["hello"],
            training={},
        )
