"""Derived encoder variants: an int8 graph from the exported fp32 one.

Dynamic int8 quantization shrinks the weights four-fold. On small machines the encoder is
bound by reading its weights from memory, so this is the largest single latency lever, but
it moves the embeddings (cosine to fp32 about 0.93-0.98 here). A variant therefore gets its
own identity (variant name and sha256): routers must be trained on the variant they serve
with, and the service refuses a bundle trained on another. Instead of parity with fp32 the
export records the measured drift and fails only when it is beyond ``MIN_COSINE``.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from decision_service.encoder import OnnxEncoder
from decision_service.manifest import (
    ENCODER_MANIFEST,
    EncoderIdentity,
    EncoderManifest,
    sha256_file,
)
from trainer.atomic import staging_dir
from trainer.encoder_export import PARITY_TEXTS

log = logging.getLogger(__name__)

INT8 = "int8"
# Below this the int8 graph is no longer the same encoder in any useful sense.
MIN_COSINE = 0.85


class EncoderDriftError(RuntimeError):
    """The quantized encoder strays too far from the fp32 one it was derived from."""


@dataclass(frozen=True)
class VariantExport:
    directory: Path
    manifest: EncoderManifest
    min_cosine: float
    mean_cosine: float


def quantize_int8(source_dir: Path, out_dir: Path) -> VariantExport:
    """Write an int8 copy of the encoder in ``source_dir`` to ``out_dir`` (atomically)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    source = OnnxEncoder(Path(source_dir))
    src_manifest = source.manifest
    with staging_dir(Path(out_dir)) as staging:
        quantize_dynamic(
            Path(source_dir) / src_manifest.onnx_file,
            staging / "encoder.onnx",
            weight_type=QuantType.QInt8,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
        shutil.copyfile(Path(source_dir) / src_manifest.tokenizer_file, staging / "tokenizer.json")
        identity = src_manifest.identity
        manifest = EncoderManifest(
            identity=EncoderIdentity(
                name=identity.name,
                variant=INT8,
                onnx_sha256=sha256_file(staging / "encoder.onnx"),
                tokenizer_sha256=sha256_file(staging / "tokenizer.json"),
                max_tokens=identity.max_tokens,
                dimension=identity.dimension,
            ),
            input_names=list(src_manifest.input_names),
            output_name=src_manifest.output_name,
        )
        (staging / ENCODER_MANIFEST).write_text(manifest.model_dump_json(indent=2) + "\n")
        quantized = OnnxEncoder(staging)
        texts = list(PARITY_TEXTS)
        cosine = np.sum(
            quantized.encode(texts).embeddings * source.encode(texts).embeddings, axis=1
        )
        low, mean = float(cosine.min()), float(cosine.mean())
        if not np.isfinite(low) or low < MIN_COSINE:
            raise EncoderDriftError(
                f"int8 encoder's cosine to fp32 falls to {low:.3f} (< {MIN_COSINE}); not publishing"
            )
    log.info("int8 encoder written to %s (cosine to fp32: min %.3f, mean %.3f)", out_dir, low, mean)
    return VariantExport(Path(out_dir), manifest, low, mean)
