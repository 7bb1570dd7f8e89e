"""Schemas of the files training ships and serving loads: encoder.json and manifest.json.

The trainer writes these models and the service reads them, so the contract between the
two lives in exactly one place. Unknown keys are refused: a manifest we do not fully
understand is not one we serve from.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ENCODER_MANIFEST = "encoder.json"
BUNDLE_MANIFEST = "manifest.json"
FORMAT_VERSION: Literal[1] = 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_TOKEN_LIMIT_SUFFIX = re.compile(r"-t\d+$")


def graph_variant(variant: str) -> str:
    """The graph part of a variant name: ``int8-t64`` -> ``int8``, ``fp32`` -> ``fp32``."""
    return _TOKEN_LIMIT_SUFFIX.sub("", variant)


class EncoderIdentity(_Strict):
    """What makes two encoders interchangeable: same weights, same tokenizer, same limit."""

    name: str
    variant: str = Field(description="fp32, int8, ...: the exact graph routers were trained on")
    onnx_sha256: str
    tokenizer_sha256: str
    max_tokens: int = Field(gt=0)
    dimension: int = Field(gt=0)

    @property
    def digest(self) -> str:
        """A short, stable id for logs and telemetry."""
        canonical = json.dumps(self.model_dump(), sort_keys=True).encode()
        return hashlib.sha256(canonical).hexdigest()[:16]

    @property
    def batch_independent(self) -> bool:
        """Whether a prompt's embedding is the same whatever it is batched with.

        Not for dynamically quantized graphs (``int8``, ``int8-t64``, ...): their activation
        scales span the whole batch, so they must embed one prompt per run everywhere.
        """
        return graph_variant(self.variant) != "int8"


class EncoderManifest(_Strict):
    """encoder.json: an ONNX sentence encoder (mean pooling + L2 norm inside the graph)."""

    format_version: Literal[1] = FORMAT_VERSION
    identity: EncoderIdentity
    onnx_file: str = "encoder.onnx"
    tokenizer_file: str = "tokenizer.json"
    input_names: list[str] = Field(min_length=1)
    output_name: str = "embedding"


class CandidateModel(_Strict):
    """A model the router scores, in the order of the router's output columns."""

    model_name: str = Field(min_length=1)
    provider: str = ""
    cost_per_million_tokens: float = Field(ge=0.0)


class RouterGraph(_Strict):
    """The router head: embedding [batch, input_dim] -> quality [batch, output_dim]."""

    file: str = "router.onnx"
    input_name: str
    output_name: str
    input_dim: int = Field(gt=0)
    output_dim: int = Field(gt=0)


class Sample(_Strict):
    """A worked example the loader replays to prove the bundle computes what training measured."""

    prompt: str
    embedding: list[float]
    quality: list[float]


class StrongSharePoint(_Strict):
    """A cost weight and the share of held-out prompts it sent to the strong model."""

    share: float = Field(ge=0.0, le=1.0)
    cost_weight: float = Field(ge=0.0, le=1.0)


class StrongShareCalibration(_Strict):
    """Which ``cost_weight`` sends what share of calls to the strongest model.

    Measured by the trainer on the held-out split under the bundle's own ranking rule with
    every bundle candidate offered at its bundle price (``trainer.calibration``). A request
    that offers other candidates or prices changes the share a weight realises.
    """

    strong_model: str = Field(min_length=1)
    held_out_prompts: int = Field(gt=0)
    points: list[StrongSharePoint] = Field(min_length=1, description="ascending share")

    @model_validator(mode="after")
    def _ascending(self) -> StrongShareCalibration:
        shares = [p.share for p in self.points]
        if shares != sorted(shares):
            raise ValueError("strong_share_calibration points must be in ascending share")
        return self

    def cost_weight_for(self, share: float) -> float:
        """The weight whose held-out share is the largest not above ``share`` ("at most").

        Below the smallest share the table reaches (a router that prefers the strong model
        on some prompts even at cost_weight 1) the weight of that smallest share.
        """
        chosen = self.points[0]
        for point in self.points:
            if point.share > share + 1e-9:
                break
            chosen = point
        return chosen.cost_weight


class BundleManifest(_Strict):
    """manifest.json of a router bundle."""

    format_version: Literal[1] = FORMAT_VERSION
    bundle_version: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    router_type: str
    strategy_name: str
    created_utc: str
    candidates: list[CandidateModel] = Field(min_length=1)
    default_cost_weight: float = Field(ge=0.0, le=1.0)
    encoder: EncoderIdentity
    router: RouterGraph
    files: dict[str, str] = Field(description="file name -> sha256 of every file but the manifest")
    parity_tolerance: float = Field(gt=0.0, description="max |onnx - native| seen at export")
    encoder_tolerance: float = Field(gt=0.0, description="max |embedding drift| accepted at load")
    samples: list[Sample] = Field(min_length=1)
    training: dict[str, object] = Field(default_factory=dict)
    # Optional: bundles written before calibration existed load without it.
    strong_share_calibration: StrongShareCalibration | None = None

    @property
    def model_names(self) -> list[str]:
        return [c.model_name for c in self.candidates]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
