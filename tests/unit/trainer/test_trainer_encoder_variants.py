"""The int8 encoder variant: its own identity, bounded drift, and bundles pinned to it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from decision_service.bundle import load_bundle
from decision_service.encoder import OnnxEncoder
from decision_service.errors import BundleRefused
from trainer.encoder_variants import INT8, MIN_COSINE, quantize_int8


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
