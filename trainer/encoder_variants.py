"""Derived encoder variants: an int8 graph, a shorter token limit, or both.

Dynamic int8 quantization shrinks the weights four-fold. On small machines the encoder is
bound by reading its weights from memory, so this is the largest single latency lever, but
it moves the embeddings (per-channel weights: cosine to fp32 0.98-1.00 here). A shorter
token limit cuts the encoder's work on long prompts (its cost grows with the tokens it
reads) but embeds only their beginning. Either way the embeddings change, so a variant gets
its own identity (variant name, sha256 and ``max_tokens``): routers must be trained on the
variant they serve with, and the service refuses a bundle trained on another.

Variant names are the graph (``fp32``, ``int8``) plus ``-t<N>`` when the token limit is not
the model's own 256: ``fp32-t64``, ``int8-t128``. Instead of parity with fp32 the export
records the measured drift from its source encoder on the parity texts both tokenize alike
(those within the new limit) and fails when an int8 graph strays beyond ``MIN_COSINE``, or
when a copied graph does not reproduce its source within ``PARITY_TOLERANCE``.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from decision_service.atomic import staging_dir
from decision_service.encoder import OnnxEncoder
from decision_service.manifest import (
    ENCODER_MANIFEST,
    EncoderIdentity,
    EncoderManifest,
    graph_variant,
    sha256_file,
)
from trainer.encoder_export import (
    ENCODER_VARIANT,
    MAX_TOKENS,
    PARITY_TEXTS,
    PARITY_TOLERANCE,
    write_tokenizer,
)

log = logging.getLogger(__name__)

FP32 = ENCODER_VARIANT
INT8 = "int8"
# Per-channel int8 stays above 0.97 on the parity texts; well below that the quantization
# went wrong (per-tensor scales alone gave 0.91).
MIN_COSINE = 0.95


class EncoderDriftError(RuntimeError):
    """The derived encoder strays too far from the encoder it was derived from."""


@dataclass(frozen=True)
class VariantExport:
    directory: Path
    manifest: EncoderManifest
    min_cosine: float  # to the source encoder, over ``compared_texts`` parity texts
    mean_cosine: float
    compared_texts: int = 0


def variant_name(graph: str, max_tokens: int) -> str:
    """``fp32`` / ``int8`` at the model's own limit, else ``<graph>-t<max_tokens>``."""
    return graph if max_tokens == MAX_TOKENS else f"{graph}-t{max_tokens}"


def quantize_int8(source_dir: Path, out_dir: Path) -> VariantExport:
    """Write an int8 copy of the fp32 encoder in ``source_dir`` to ``out_dir`` (atomically)."""
    return derive_variant(source_dir, out_dir, int8=True)


def derive_variant(
    source_dir: Path, out_dir: Path, *, int8: bool = False, max_tokens: int | None = None
) -> VariantExport:
    """Write a variant of the encoder in ``source_dir`` to ``out_dir`` (atomically).

    ``int8`` quantizes the (fp32) graph; ``max_tokens`` (at most the source's limit) sets
    the token limit in encoder.json and in the tokenizer file's truncation. Without
    ``int8`` the ONNX graph is copied byte for byte, so ``int8-t64`` can be derived from an
    ``int8`` directory without quantizing again (quantization is deterministic: the result
    is the same identity as quantizing and limiting in one step).
    """
    source_dir = Path(source_dir)
    source = OnnxEncoder(source_dir)
    src_manifest = source.manifest
    src = src_manifest.identity
    limit = src.max_tokens if max_tokens is None else int(max_tokens)
    if not 0 < limit <= src.max_tokens:
        raise ValueError(f"max_tokens must be in 1..{src.max_tokens} (the source's limit)")
    graph = graph_variant(src.variant)
    if int8:
        if graph != FP32:
            raise ValueError(f"int8 is derived from an fp32 encoder, not from {src.variant!r}")
        graph = INT8
    with staging_dir(Path(out_dir)) as staging:
        onnx_path, tokenizer_path = staging / "encoder.onnx", staging / "tokenizer.json"
        if int8:
            _quantize(source_dir / src_manifest.onnx_file, onnx_path)
        else:
            shutil.copyfile(source_dir / src_manifest.onnx_file, onnx_path)
        if limit == src.max_tokens:
            shutil.copyfile(source_dir / src_manifest.tokenizer_file, tokenizer_path)
        else:
            write_tokenizer(source_dir / src_manifest.tokenizer_file, tokenizer_path, limit)
        manifest = EncoderManifest(
            identity=EncoderIdentity(
                name=src.name,
                variant=variant_name(graph, limit),
                onnx_sha256=sha256_file(onnx_path),
                tokenizer_sha256=sha256_file(tokenizer_path),
                max_tokens=limit,
                dimension=src.dimension,
            ),
            input_names=list(src_manifest.input_names),
            output_name=src_manifest.output_name,
        )
        (staging / ENCODER_MANIFEST).write_text(manifest.model_dump_json(indent=2) + "\n")
        low, mean, compared = _check_drift(source, OnnxEncoder(staging), quantized=int8)
    log.info(
        "%s encoder written to %s (cosine to %s on %d parity texts: min %.4f, mean %.4f)",
        manifest.identity.variant,
        out_dir,
        src.variant,
        compared,
        low,
        mean,
    )
    return VariantExport(Path(out_dir), manifest, low, mean, compared)


def _quantize(source: Path, target: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # The quantizer logs a line per tensor at INFO on the root logger; keep its warnings.
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.WARNING))
    try:
        quantize_dynamic(
            source,
            target,
            weight_type=QuantType.QInt8,
            # One scale per output channel instead of one per matrix: measured on the parity
            # texts and bench prompts, min cosine to fp32 0.91 -> 0.98 for ~10% more time.
            per_channel=True,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    finally:
        root.setLevel(level)


def _check_drift(
    source: OnnxEncoder, derived: OnnxEncoder, *, quantized: bool
) -> tuple[float, float, int]:
    """(min, mean cosine, texts compared) over the parity texts both encoders see whole.

    A text longer than the derived limit is embedded from fewer tokens by design, so only
    texts that fit (or, at an unchanged limit, all of them) measure the graph. Each text
    is embedded alone: an int8 embedding depends on its batch mates.
    """
    limit = derived.identity.max_tokens
    texts, a, b = [], [], []
    for text in PARITY_TEXTS:
        ref = source.encode([text])
        if ref.token_counts[0] > limit:  # cut shorter by the derived encoder
            continue
        texts.append(text)
        a.append(ref.embeddings[0])
        b.append(derived.encode([text]).embeddings[0])
    if not texts:
        raise EncoderDriftError(f"no parity text fits in {limit} tokens; nothing to compare")
    ea, eb = np.stack(a), np.stack(b)
    cosine = np.sum(ea * eb, axis=1)
    low, mean = float(cosine.min()), float(cosine.mean())
    if quantized:
        if not np.isfinite(low) or low < MIN_COSINE:
            raise EncoderDriftError(
                f"int8 encoder's cosine to fp32 falls to {low:.3f} (< {MIN_COSINE}); not publishing"
            )
    else:
        diff = float(np.max(np.abs(ea - eb)))
        if not np.isfinite(diff) or diff > PARITY_TOLERANCE:
            raise EncoderDriftError(
                f"the copied graph differs from its source by {diff:.3g} on texts within "
                f"{limit} tokens (tolerance {PARITY_TOLERANCE:g}); not publishing"
            )
    return low, mean, len(texts)
