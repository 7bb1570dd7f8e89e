"""Blend router: the average of an MLP's per-candidate quality and a cluster head's.

The MLP (``trainer.routers.mlp``) learns a prompt-level estimate from noisy 0/1 labels. The
cluster head is a smoother, topic-level estimate: the training prompts are grouped by
k-means on their embeddings (for each of ``clusters``, e.g. 32, 64 and 128 groups), a
multinomial logistic regression learns to tell the groups apart, and a prompt's quality for
a candidate is the groups' mean training label weighted by how likely the prompt belongs to
each group::

    head_k(q)    = softmax(W_k q + b_k) @ Q_k          Q_k [groups, models]: mean labels
    quality(q)   = mlp_weight * mlp(q) + (1 - mlp_weight) * mean_k head_k(q)

Everything is learned from the embeddings and labels alone: no subject or other metadata is
used, in training or serving. ``clusters`` (several granularities rather than one tuned
count) and ``mlp_weight`` were fixed before the multi-seed benchmark, the weight by 4-fold
cross-validation inside one training half (docs/quality.md, "What was tried").

Export: one ONNX graph (``torch.onnx``) holding the MLP and every head; the native
prediction (torch MLP + scikit-learn ``predict_proba``) is what parity compares it with.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.linear_model import LogisticRegression
from torch import nn

from trainer.routers.mlp import MlpRouter
from trainer.routers.torch_head import as_tensor, export_module

# Fewer training prompts a group than this and the group's mean label is mostly noise.
MIN_PROMPTS_PER_GROUP = 10


class _ClusterHead(nn.Module):
    def __init__(self, coef: np.ndarray, intercept: np.ndarray, quality: np.ndarray) -> None:
        super().__init__()
        self.linear = nn.Linear(coef.shape[1], coef.shape[0])
        with torch.no_grad():
            self.linear.weight.copy_(as_tensor(coef))
            self.linear.bias.copy_(as_tensor(intercept))
        self.group_quality: torch.Tensor
        self.register_buffer("group_quality", as_tensor(quality))

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.linear(embedding), dim=1) @ self.group_quality


class _BlendNet(nn.Module):
    def __init__(
        self, mlp: nn.Module | None, heads: Sequence[_ClusterHead], mlp_weight: float
    ) -> None:
        super().__init__()
        self.mlp = mlp
        self.heads = nn.ModuleList(heads)
        self.mlp_weight = mlp_weight

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        heads = torch.stack([h(embedding) for h in self.heads]).mean(dim=0)
        if self.mlp is None:  # mlp_weight 0: the graph holds the heads only
            return heads
        mlp = torch.sigmoid(self.mlp(embedding))
        return self.mlp_weight * mlp + (1.0 - self.mlp_weight) * heads


@dataclass
class _FittedHead:
    classifier: LogisticRegression
    quality: np.ndarray  # [groups, models], rows in classifier.classes_ order

    def coefficients(self) -> tuple[np.ndarray, np.ndarray]:
        """Softmax weights [groups, dim] and biases; a 2-group model is sigmoid = softmax."""
        coef, intercept = self.classifier.coef_, self.classifier.intercept_
        if coef.shape[0] == 1:
            coef = np.vstack([np.zeros_like(coef), coef])
            intercept = np.concatenate([[0.0], intercept])
        return coef, intercept

    def predict(self, embeddings: np.ndarray) -> np.ndarray:
        return self.classifier.predict_proba(embeddings) @ self.quality


@dataclass
class BlendRouter:
    clusters: tuple[int, ...] = (32, 64, 128)
    regularisation: float = 1.0  # the logistic regressions' C (inverse strength)
    # Chosen by 4-fold cross-validation on a training half (docs/quality.md, What was tried).
    mlp_weight: float = 0.25
    mlp_params: dict[str, object] = field(default_factory=lambda: {"epochs": 20})
    seed: int = 0
    router_type: str = "blend"
    # float32 graph against float64 scikit-learn softmax: measured ~1e-7.
    parity_tolerance: float = 1e-5
    _mlp: MlpRouter | None = None
    _heads: list[_FittedHead] = field(default_factory=list)

    @classmethod
    def from_params(cls, params: Mapping[str, object], *, seed: int = 0) -> BlendRouter:
        router = cls(seed=seed)
        mlp_params: dict[str, object] = dict(router.mlp_params)
        for name, value in params.items():
            if name == "clusters":
                if (
                    not isinstance(value, Sequence)
                    or not value
                    or not all(isinstance(v, int) and v >= 2 for v in value)
                ):
                    raise ValueError("blend clusters must be a non-empty list of integers >= 2")
                router.clusters = tuple(int(v) for v in value)
            elif name == "regularisation":
                if not isinstance(value, int | float) or value <= 0:
                    raise ValueError("blend regularisation must be a positive number")
                router.regularisation = float(value)
            elif name == "mlp_weight":
                if not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
                    raise ValueError("blend mlp_weight must be a number in [0, 1]")
                router.mlp_weight = float(value)
            elif name.startswith("mlp_"):
                mlp_params[name.removeprefix("mlp_")] = value
            else:
                raise ValueError(
                    f"unknown blend parameter {name!r}; use clusters, regularisation, "
                    "mlp_weight or mlp_<an mlp parameter> (e.g. mlp_epochs)"
                )
        MlpRouter.from_params(mlp_params)  # refuses bad MLP parameters now, not after k-means
        router.mlp_params = mlp_params
        return router

    def fit(self, embeddings: np.ndarray, labels: np.ndarray) -> None:
        x = np.ascontiguousarray(embeddings, np.float32)
        y = np.asarray(labels, np.float64)
        mlp = None
        if self.mlp_weight > 0.0:
            mlp = MlpRouter.from_params(self.mlp_params, seed=self.seed)
            mlp.fit(x, y)
        heads = []
        for wanted in self.clusters:
            groups = max(2, min(wanted, len(x) // MIN_PROMPTS_PER_GROUP))
            assigned = KMeans(groups, n_init=2, random_state=self.seed).fit_predict(x)
            classifier = LogisticRegression(C=self.regularisation, max_iter=300)
            classifier.fit(x, assigned)
            quality = np.stack([y[assigned == g].mean(axis=0) for g in classifier.classes_])
            heads.append(_FittedHead(classifier, quality))
        self._mlp, self._heads = mlp, heads

    @property
    def mlp(self) -> MlpRouter | None:
        """The fitted MLP; None when ``mlp_weight`` is 0."""
        if not self._heads:
            raise RuntimeError("blend router is not fitted")
        return self._mlp

    def predict_native(self, embeddings: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(embeddings, np.float32)
        heads = np.mean([h.predict(x) for h in self._heads], axis=0)
        if self.mlp is None:
            return heads.astype(np.float32)
        mlp = self.mlp.predict_native(x).astype(np.float64)
        blended = self.mlp_weight * mlp + (1.0 - self.mlp_weight) * heads
        return blended.astype(np.float32)

    def hyperparameters(self) -> dict[str, object]:
        return {
            "clusters": list(self.clusters),
            "groups_used": [len(h.quality) for h in self._heads],
            "regularisation": self.regularisation,
            "mlp_weight": self.mlp_weight,
            "mlp": self._mlp.hyperparameters() if self._mlp is not None else None,
            "seed": self.seed,
            "rule": "mlp_weight * mlp(q) + (1 - mlp_weight) * mean_k softmax(W_k q + b_k) @ Q_k",
        }

    def to_onnx(self) -> bytes:
        heads = [_ClusterHead(*h.coefficients(), h.quality) for h in self._heads]
        mlp = self.mlp
        net = _BlendNet(None if mlp is None else mlp.net, heads, self.mlp_weight).eval()
        return export_module(net, heads[0].linear.in_features)
