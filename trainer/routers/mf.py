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

import tempfile
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from trainer.routers.base import INPUT_NAME, OUTPUT_NAME

OPSET = 17


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


class _Probabilities(nn.Module):
    def __init__(self, net: _MfNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(embedding))


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

    def fit(self, embeddings: np.ndarray, labels: np.ndarray) -> None:
        torch.manual_seed(self.seed)
        torch.set_flush_denormal(True)
        generator = torch.Generator().manual_seed(self.seed)
        x = torch.from_numpy(np.ascontiguousarray(embeddings, np.float32))
        y = torch.from_numpy(np.ascontiguousarray(labels, np.float32))
        net = _MfNet(x.shape[1], y.shape[1], self.rank)
        with torch.no_grad():  # start from each model's base rate
            mean = y.mean(dim=0).clamp(1e-3, 1 - 1e-3)
            net.model_bias.copy_(torch.log(mean / (1 - mean)))
        optimiser = torch.optim.AdamW(
            net.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay
        )
        loss_fn = nn.BCEWithLogitsLoss()
        net.train()
        self._losses = []
        for _ in range(self.epochs):
            order = torch.randperm(x.shape[0], generator=generator)
            total = 0.0
            for start in range(0, x.shape[0], self.batch_size):
                index = order[start : start + self.batch_size]
                optimiser.zero_grad()
                loss = loss_fn(net(x[index]), y[index])
                loss.backward()
                optimiser.step()
                total += float(loss.detach()) * len(index)
            self._losses.append(total / x.shape[0])
        net.eval()
        self._net = net

    def predict_native(self, embeddings: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            x = torch.from_numpy(np.ascontiguousarray(embeddings, np.float32))
            return _Probabilities(self.net).eval()(x).numpy().astype(np.float32)

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
        module = _Probabilities(self.net).eval()
        with tempfile.TemporaryDirectory() as tmp, torch.no_grad(), warnings.catch_warnings():
            path = Path(tmp) / "router.onnx"
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(
                module,
                (torch.zeros(2, self.net.dim, dtype=torch.float32),),
                str(path),
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                opset_version=OPSET,
                dynamo=False,
            )
            return path.read_bytes()
