"""Small bundles and encoders for the sync agent's tests: real manifests, made-up weights.

The agent checks hashes, names and signatures, never ONNX semantics (the service does that
when it loads), so a few bytes stand in for the graphs and these tests need no training.
"""

from __future__ import annotations

import json
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from decision_service.manifest import (
    BUNDLE_MANIFEST,
    ENCODER_MANIFEST,
    BundleManifest,
    CandidateModel,
    EncoderIdentity,
    EncoderManifest,
    RouterGraph,
    Sample,
    sha256_file,
)
from decision_service.signing import sign_bundle


def write_encoder(directory: Path, weights: bytes = b"encoder-weights") -> EncoderIdentity:
    directory.mkdir(parents=True)
    (directory / "encoder.onnx").write_bytes(weights)
    (directory / "tokenizer.json").write_text('{"toy": true}')
    identity = EncoderIdentity(
        name="toy-encoder",
        variant="fp32",
        onnx_sha256=sha256_file(directory / "encoder.onnx"),
        tokenizer_sha256=sha256_file(directory / "tokenizer.json"),
        max_tokens=16,
        dimension=2,
    )
    manifest = EncoderManifest(identity=identity, input_names=["input_ids"])
    (directory / ENCODER_MANIFEST).write_text(manifest.model_dump_json(indent=2))
    return identity


def write_bundle(
    parent: Path,
    version: str,
    encoder: EncoderIdentity,
    *,
    router: bytes | None = None,
    key: Ed25519PrivateKey | None = None,
    metrics: bool = True,
) -> Path:
    """``parent/<version>`` with ``parent/encoder`` expected beside it (the trainer layout);
    without ``metrics`` no metrics.json, like a bundle ``trainer.learn`` trains from traffic."""
    directory = parent / version
    directory.mkdir(parents=True)
    (directory / "router.onnx").write_bytes(router or f"router of {version}".encode() * 100)
    files = ["router.onnx"]
    if metrics:
        (directory / "metrics.json").write_text(json.dumps({"headline": {"apgr": 0.5}}))
        files.append("metrics.json")
    manifest = BundleManifest(
        bundle_version=version,
        router_type="knn",
        strategy_name="toy-knn",
        created_utc="2026-01-01T00:00:00Z",
        candidates=[CandidateModel(model_name="small", cost_per_million_tokens=1.0)],
        default_cost_weight=0.1,
        encoder=encoder,
        router=RouterGraph(input_name="x", output_name="y", input_dim=2, output_dim=1),
        files={n: sha256_file(directory / n) for n in files},
        parity_tolerance=1e-5,
        encoder_tolerance=1e-3,
        samples=[Sample(prompt="hi", embedding=[0.6, 0.8], quality=[0.5])],
    )
    (directory / BUNDLE_MANIFEST).write_text(manifest.model_dump_json(indent=2))
    if key is not None:
        sign_bundle(directory, key)
    return directory


def write_public_key(key: Ed25519PrivateKey, path: Path) -> Path:
    path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path
