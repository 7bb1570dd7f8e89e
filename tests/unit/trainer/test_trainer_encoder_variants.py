"""Encoder variants (int8, token limits): own identities, bounded drift, bundles pinned to them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from decision_service.bundle import load_bundle
from decision_service.encoder import OnnxEncoder
from decision_service.errors import BundleRefused
from decision_service.manifest import graph_variant
from trainer.cli import main
from trainer.embed import embed_texts
from trainer.encoder_variants import (
    INT8,
    MIN_COSINE,
    derive_variant,
    quantize_int8,
    variant_name,
)


@pytest.fixture(scope="module")
def int8_dir(encoder_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return quantize_int8(encoder_dir, tmp_path_factory.mktemp("int8") / "encoder").directory


def test_int8_variant_has_its_own_identity_and_smaller_graph(int8_dir, encoder_dir):
    fp32, int8 = OnnxEncoder(encoder_dir), OnnxEncoder(int8_dir)
    assert int8.identity.variant == INT8 and fp32.identity.variant == "fp32"
    assert int8.identity.onnx_sha256 != fp32.identity.onnx_sha256
    assert int8.identity.digest != fp32.identity.digest
    assert int8.identity.tokenizer_sha256 == fp32.identity.tokenizer_sha256
    fp32_size = (encoder_dir / "encoder.onnx").stat().st_size
    assert (int8_dir / "encoder.onnx").stat().st_size < fp32_size / 3


def test_int8_embeddings_stay_close_to_fp32_but_not_equal(int8_dir, encoder_dir):
    texts = ["Write a Python function that reverses a list.", "hola, ¿qué tal?"]
    a = OnnxEncoder(encoder_dir).encode(texts).embeddings
    b = OnnxEncoder(int8_dir).encode(texts).embeddings
    cosine = np.sum(a * b, axis=1)
    assert np.all(cosine >= MIN_COSINE)
    assert np.max(np.abs(a - b)) > 1e-3  # a different encoder: bundles must be retrained
    assert np.allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-4)


def test_a_bundle_trained_on_fp32_is_refused_by_the_int8_encoder(int8_dir, knn_bundle_dir):
    with pytest.raises(BundleRefused, match="retrain it on the serving encoder"):
        load_bundle(knn_bundle_dir, OnnxEncoder(int8_dir))


LONG = "Long prompt. " + " ".join(f"Sentence {i} is about topic {i % 7}." for i in range(60))
SHORT = "What is the capital of France?"


@pytest.fixture(scope="module")
def t16_dir(encoder_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("t16") / "encoder"
    return derive_variant(encoder_dir, out, max_tokens=16).directory


def test_variant_names_carry_the_graph_and_a_non_default_token_limit():
    assert variant_name("fp32", 256) == "fp32" and variant_name("int8", 64) == "int8-t64"
    assert graph_variant("int8-t64") == "int8" and graph_variant("fp32") == "fp32"


def test_a_token_limit_variant_keeps_the_graph_and_truncates_earlier(t16_dir, encoder_dir):
    fp32, t16 = OnnxEncoder(encoder_dir), OnnxEncoder(t16_dir)
    ident = t16.identity
    assert (ident.variant, ident.max_tokens) == ("fp32-t16", 16)
    assert ident.onnx_sha256 == fp32.identity.onnx_sha256
    assert ident.tokenizer_sha256 != fp32.identity.tokenizer_sha256
    assert ident.digest != fp32.identity.digest
    spec = json.loads((t16_dir / "tokenizer.json").read_text(encoding="utf-8"))
    assert spec["truncation"]["max_length"] == 16 and spec["padding"] is None

    long = t16.encode([LONG])
    assert long.token_counts == [16] and long.truncated == [True]
    # Within the limit the variant is the same encoder; beyond it, a different embedding.
    assert np.allclose(t16.encode([SHORT]).embeddings, fp32.encode([SHORT]).embeddings, atol=1e-5)
    assert np.max(np.abs(long.embeddings - fp32.encode([LONG]).embeddings)) > 1e-2


def test_token_limit_batches_as_its_graph_does(t16_dir):
    # fp32-t16 still batches (exactly, up to rounding); one-per-run is for int8 only.
    texts = [SHORT, LONG, "hi", "Translate into German: good morning"]
    encoder = OnnxEncoder(t16_dir)
    batched = embed_texts(encoder, texts, batch_size=4)
    single = np.concatenate([encoder.encode([t]).embeddings for t in texts])
    assert np.allclose(batched, single, atol=1e-5)


def test_int8_with_a_token_limit_reuses_the_int8_graph(int8_dir, encoder_dir, tmp_path):
    derived = derive_variant(int8_dir, tmp_path / "int8-t32", max_tokens=32)
    ident, int8 = derived.manifest.identity, OnnxEncoder(int8_dir).identity
    assert (ident.variant, ident.max_tokens) == ("int8-t32", 32)
    assert ident.onnx_sha256 == int8.onnx_sha256 and ident.digest != int8.digest
    assert derived.min_cosine > 0.9999  # same graph, same tokens on the texts compared
    encoder = OnnxEncoder(derived.directory)
    assert encoder.encode([LONG]).token_counts == [32]
    cosine = np.sum(
        encoder.encode([SHORT]).embeddings * OnnxEncoder(encoder_dir).encode([SHORT]).embeddings
    )
    assert cosine >= MIN_COSINE


def test_bad_derivations_are_refused_and_publish_nothing(int8_dir, encoder_dir, tmp_path):
    with pytest.raises(ValueError, match="max_tokens"):
        derive_variant(encoder_dir, tmp_path / "a", max_tokens=512)
    with pytest.raises(ValueError, match="max_tokens"):
        derive_variant(encoder_dir, tmp_path / "b", max_tokens=0)
    with pytest.raises(ValueError, match="fp32"):
        derive_variant(int8_dir, tmp_path / "c", int8=True)
    assert not any(tmp_path.iterdir())


def test_a_bundle_trained_on_fp32_is_refused_by_a_token_limit_variant(t16_dir, knn_bundle_dir):
    with pytest.raises(BundleRefused, match="fp32-t16"):
        load_bundle(knn_bundle_dir, OnnxEncoder(t16_dir))


def test_cli_encoder_variant(encoder_dir, tmp_path, capsys):
    out = tmp_path / "fp32-t64"
    argv = ["encoder-variant", "--encoder", str(encoder_dir), "--out", str(out)]
    assert main([*argv, "--max-tokens", "64"]) == 0
    assert "fp32-t64 encoder (64 tokens)" in capsys.readouterr().out
    assert OnnxEncoder(out).identity.max_tokens == 64
