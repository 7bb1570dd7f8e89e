"""Multi-layer perceptron router: one sigmoid output per candidate, trained with BCE.

Each output is the predicted chance that the candidate answers the prompt well, which
is what 0/1 correctness labels estimate. Training is seeded and runs on CPU.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from trainer.routers.base import INPUT_NAME, OUTPUT_NAME

OPSET = 17


class _Net(nn.Module):
    def __init__(self, dim: int, hidden: Sequence[int], outputs: int, dropout: float) -> None:
        super().__init__()
        self.dim = dim
        layers: list[nn.Module] = []
        width = dim
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(dropout)]
            width = size
        layers.append(nn.Linear(width, outputs))
        self.layers = nn.Sequential(*layers)

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:  # logits
        return self.layers(embedding)


class _Probabilities(nn.Module):
    """What is exported: logits -> sigmoid, so the graph outputs quality in [0, 1]."""

    def __init__(self, net: _Net) -> None:
        super().__init__()
        self.net = net

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(embedding))


@dataclass
class MlpRouter:
    # One wide-enough layer with strong dropout generalises best from 0/1 labels on a
    # couple of thousand prompts (compared on three seeded splits against (256, 128)).
    hidden: tuple[int, ...] = (128,)
    dropout: float = 0.5
    epochs: int = 30
    batch_size: int = 128
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0
    router_type: str = "mlp"
    # Same float32 arithmetic in torch and onnxruntime: measured ~1e-7.
    parity_tolerance: float = 1e-5
    _net: _Net | None = None
    _losses: list[float] = field(default_factory=list)

    @classmethod
    def from_params(cls, params: Mapping[str, object], *, seed: int = 0) -> MlpRouter:
        allowed = {"hidden", "dropout", "epochs", "batch_size", "learning_rate", "weight_decay"}
        unknown = set(params) - allowed
        if unknown:
            raise ValueError(f"unknown mlp parameters {sorted(unknown)}")
        router = cls(seed=seed)
        for name, value in params.items():
            if name == "hidden":
                if not isinstance(value, Sequence) or not all(
                    isinstance(v, int) and v > 0 for v in value
                ):
                    raise ValueError("mlp hidden must be a sequence of positive integers")
                router.hidden = tuple(int(v) for v in value)
            elif name in {"epochs", "batch_size"}:
                if not isinstance(value, int) or value < 1:
                    raise ValueError(f"mlp {name} must be a positive integer")
                setattr(router, name, value)
            else:
                if not isinstance(value, int | float) or value < 0:
                    raise ValueError(f"mlp {name} must be a non-negative number")
                setattr(router, name, float(value))
        return router

    @property
    def net(self) -> _Net:
        if self._net is None:
            raise RuntimeError("mlp router is not fitted")
        return self._net

    def fit(self, embeddings: np.ndarray, labels: np.ndarray) -> None:
        torch.manual_seed(self.seed)
        torch.set_flush_denormal(True)  # denormal weights can slow CPU training many-fold
        generator = torch.Generator().manual_seed(self.seed)
        x = torch.from_numpy(np.ascontiguousarray(embeddings, np.float32))
        y = torch.from_numpy(np.ascontiguousarray(labels, np.float32))
        net = _Net(x.shape[1], self.hidden, y.shape[1], self.dropout)
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
            "hidden": list(self.hidden),
            "dropout": self.dropout,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "learning_rate": self.learning_rate,
            "weight_decay": self.weight_decay,
            "seed": self.seed,
            "loss": "binary cross-entropy on sigmoid outputs",
            "final_train_loss": round(self._losses[-1], 5) if self._losses else None,
        }

    def to_onnx(self) -> bytes:
        module = _Probabilities(self.net).eval()
        dim = self.net.dim
        with tempfile.TemporaryDirectory() as tmp, torch.no_grad(), warnings.catch_warnings():
            path = Path(tmp) / "router.onnx"
            warnings.simplefilter("ignore", UserWarning)
            # dynamo=False on purpose: the TorchScript exporter is the checked recipe.
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(
                module,
                (torch.zeros(2, dim, dtype=torch.float32),),
                str(path),
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                opset_version=OPSET,
                dynamo=False,
            )
            return path.read_bytes()
