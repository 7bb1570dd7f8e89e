"""Matrix-factorisation router, after RouteLLM's MF router (arXiv:2406.18665, section 4.1).

RouteLLM scores a (model, query) pair as ``w^T (normalize(v_m) * (W q))``: a learned
embedding ``v_m`` per model, a linear projection ``W`` of the query embedding into the
same space, and a linear read-out ``w``. RouteLLM trains it on pairwise preferences; here
each pair has a quality label, so a per-model bias ``b_m`` is added and the score goes
through a sigmoid, trained with binary cross-entropy:

    quality_m(q) = sigmoid(w^T (v_m / |v_m| * (W q)) + b_m)

One forward pass scores every candidate; the exported graph (``torch.onnx``) does the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from trainer.routers.torch_head import (
    as_tensor,
    export_probabilities,
    predict_probabilities,
    train_bce,
)


class _MfNet(nn.Module):
    def __init__(self, dim: int, models: int, rank: int) -> None:
        super().__init__()
        self.dim = dim
        self.model_embedding = nn.Parameter(torch.randn(models, rank) * 0.1)
        self.text_proj = nn.Linear(dim, rank, bias=False)
        self.classifier = nn.Linear(rank, 1, bias=False)
        self.model_bias = nn.Parameter(torch.zeros(models))

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        """Logits [batch, models]."""
        models = functional.normalize(self.model_embedding, p=2.0, dim=1)  # [m, r]
        projected = self.text_proj(embedding)  # [b, r]
        pair = projected.unsqueeze(1) * models.unsqueeze(0)  # [b, m, r]
        return self.classifier(pair).squeeze(-1) + self.model_bias


@dataclass
class MfRouter:
    rank: int = 128
    epochs: int = 30
    batch_size: int = 128
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0
    router_type: str = "mf"
    parity_tolerance: float = 1e-5
    _net: _MfNet | None = None
    _losses: list[float] = field(default_factory=list)

    @classmethod
    def from_params(cls, params: Mapping[str, object], *, seed: int = 0) -> MfRouter:
        router = cls(seed=seed)
        for name, value in params.items():
            if name in {"rank", "epochs", "batch_size"}:
                if not isinstance(value, int) or value < 1:
                    raise ValueError(f"mf {name} must be a positive integer")
                setattr(router, name, value)
            elif name in {"learning_rate", "weight_decay"}:
                if not isinstance(value, int | float) or value < 0:
                    raise ValueError(f"mf {name} must be a non-negative number")
                setattr(router, name, float(value))
            else:
                raise ValueError(f"unknown mf parameters {[name]}")
        return router

    @property
    def net(self) -> _MfNet:
        if self._net is None:
            raise RuntimeError("mf router is not fitted")
        return self._net

    def fit(
        self, embeddings: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None
    ) -> None:
        """``weights`` [n, m]: per-cell loss weights (0 = unobserved), see ``train_bce``."""
        torch.manual_seed(self.seed)
        torch.set_flush_denormal(True)
        x, y = as_tensor(embeddings), as_tensor(labels)
        w = as_tensor(weights) if weights is not None else None
        net = _MfNet(x.shape[1], y.shape[1], self.rank)
        with torch.no_grad():  # start from each model's base rate
            if w is None:
                mean = y.mean(dim=0).clamp(1e-3, 1 - 1e-3)
            else:  # the observed cells' weighted base rate; 0.5 for a never-observed model
                seen = w.sum(dim=0)
                rate = torch.where(seen > 0, (w * y).sum(dim=0) / seen.clamp_min(1e-12), 0.5)
                mean = rate.clamp(1e-3, 1 - 1e-3)
            net.model_bias.copy_(torch.log(mean / (1 - mean)))
        self._losses = train_bce(
            net,
            x,
            y,
            epochs=self.epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            weight_decay=self.weight_decay,
            seed=self.seed,
            weights=w,
        )
        self._net = net

    def predict_native(self, embeddings: np.ndarray) -> np.ndarray:
        return predict_probabilities(self.net, embeddings)

    def hyperparameters(self) -> dict[str, object]:
        return {
            "rank": self.rank,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "learning_rate": self.learning_rate,
            "weight_decay": self.weight_decay,
            "seed": self.seed,
            "score": "sigmoid(w . (normalize(v_model) * (W q)) + b_model)",
            "final_train_loss": round(self._losses[-1], 5) if self._losses else None,
        }

    def to_onnx(self) -> bytes:
        return export_probabilities(self.net, self.net.dim)
