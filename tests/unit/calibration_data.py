"""A routing population for budget-calibration tests: embedding-sized vectors and 0/1 labels.

Each prompt has a topic and a difficulty ``z``; its vector (encoder-sized, unit length) is
its topic's centre plus ``z`` along one direction plus noise, so a router can learn both.
Three models answer right with a probability that falls with ``z``, the strong one least:
its advantage varies smoothly from prompt to prompt, as on real data, so the share of
strong-model calls moves smoothly with the cost weight. ``draw(n, seed)`` gives a fresh,
independent sample of the same population for every seed (the topic centres are fixed).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from decision_service.manifest import CandidateModel

DIM = 384  # the serving encoder's dimension: a bundle trained on these serves Route calls
TOPICS = 8
MODELS = [
    CandidateModel(model_name="small-model", provider="test", cost_per_million_tokens=0.3),
    CandidateModel(model_name="medium-model", provider="test", cost_per_million_tokens=1.5),
    CandidateModel(model_name="large-model", provider="test", cost_per_million_tokens=10.0),
]
STRONG = 2
# Per model: intercept and slope in difficulty of the chance of a right answer (logit).
_LOGIT = np.array([[0.6, -1.6], [1.1, -1.2], [2.0, -0.7]])


@dataclass(frozen=True)
class Draw:
    embeddings: np.ndarray  # float32 [n, DIM], unit rows
    labels: np.ndarray  # float32 [n, 3], 0/1
    costs: np.ndarray  # float64 [n, 3], dollars per call

    @property
    def prices(self) -> np.ndarray:
        return np.array([m.cost_per_million_tokens for m in MODELS])


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


_shape = np.random.default_rng(20261203)
_CENTRES = _unit(_shape.normal(size=(TOPICS, DIM)))
_DIFFICULTY = _unit(_shape.normal(size=DIM))
_TOPIC_BIAS = _shape.normal(scale=0.5, size=TOPICS)


def draw(n: int, seed: int) -> Draw:
    rng = np.random.default_rng(seed)
    topic = rng.integers(0, TOPICS, size=n)
    z = rng.normal(size=n)
    noise = _unit(rng.normal(size=(n, DIM)))
    x = _unit(_CENTRES[topic] + 0.5 * z[:, None] * _DIFFICULTY + 0.3 * noise)
    logit = _LOGIT[None, :, 0] + _TOPIC_BIAS[topic][:, None] + _LOGIT[None, :, 1] * z[:, None]
    labels = (rng.random((n, len(MODELS))) < 1 / (1 + np.exp(-logit))).astype(np.float32)
    prices = np.array([m.cost_per_million_tokens for m in MODELS])
    costs = np.tile(prices * 500 / 1e6, (n, 1))  # ~500 tokens a call
    return Draw(x.astype(np.float32), labels, costs)


def train_calibrated_bundle(encoder_dir: Path, out: Path, *, n: int = 6000, seed: int = 11) -> Path:
    """A real MLP bundle trained by the trainer's pipeline on half of ``draw(n, seed)`` and
    calibrated on the other half (its held-out split); returns its directory."""
    from decision_service.encoder import OnnxEncoder
    from trainer.data import ReadReport, RoutingData, Split
    from trainer.pipeline import PreparedData, train_bundle

    sample = draw(n, seed)
    data = RoutingData(
        prompts=[f"calibration prompt {i}" for i in range(n)],
        labels=sample.labels,
        costs=sample.costs,
        candidates=list(MODELS),
        kinds=[None] * n,
        sha256="0" * 64,
        report=ReadReport(records_total=n, records_used=n),
    )
    half = n // 2
    split = Split(train=np.arange(half), test=np.arange(half, n), seed=seed, test_fraction=0.5)
    prepared = PreparedData(data=data, embeddings=sample.embeddings, split=split, origin={})
    encoder = OnnxEncoder(encoder_dir, intra_op_threads=2)
    result = train_bundle(prepared, "mlp", encoder, out, seed=0, params={"epochs": 30})
    return result.directory


def without_calibration(bundle_dir: Path, out: Path) -> Path:
    """A copy of ``bundle_dir`` as a trainer from before calibration wrote it."""
    import json
    import shutil

    copy = Path(shutil.copytree(bundle_dir.resolve(), out / f"{bundle_dir.name}-old"))
    manifest = json.loads((copy / "manifest.json").read_text())
    del manifest["strong_share_calibration"]
    manifest["bundle_version"] += "-old"
    (copy / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return copy
