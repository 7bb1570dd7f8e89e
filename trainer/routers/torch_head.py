"""What the torch-trained routers (MLP, MF) share: sigmoid outputs, BCE training, export.

Each router defines its own network producing one logit per candidate model; this module
trains it on 0/1 quality labels (optionally weighted per cell: traffic observes only the
served model, so its other cells weigh 0 and the served one its inverse propensity),
predicts probabilities, and exports the probabilities
graph with ``torch.onnx`` (the TorchScript exporter, ``dynamo=False``: the checked recipe).
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from trainer.routers.base import INPUT_NAME, OUTPUT_NAME

OPSET = 17


class Probabilities(nn.Module):
    """What is exported: logits -> sigmoid, so the graph outputs quality in [0, 1]."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(embedding))


def as_tensor(values: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(values, np.float32))


def train_bce(
    net: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    weight_decay: float,
    seed: int,
    weights: torch.Tensor | None = None,
) -> list[float]:
    """Mini-batch AdamW on binary cross-entropy of the logits; returns the loss per epoch.

    ``weights`` (same shape as ``y``, >= 0) scale each cell's loss and the batch loss is
    their weighted mean: a cell of weight 0 (an unobserved model) contributes no gradient.
    """
    generator = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.AdamW(net.parameters(), lr=learning_rate, weight_decay=weight_decay)
    loss_fn = nn.BCEWithLogitsLoss()
    cell_loss = nn.BCEWithLogitsLoss(reduction="none")
    net.train()
    losses = []
    for _ in range(epochs):
        order = torch.randperm(x.shape[0], generator=generator)
        total = 0.0
        for start in range(0, x.shape[0], batch_size):
            index = order[start : start + batch_size]
            optimiser.zero_grad()
            if weights is None:
                loss = loss_fn(net(x[index]), y[index])
            else:
                w = weights[index]
                # A batch with no observed cell has no signal; clamp keeps it a zero loss.
                loss = (cell_loss(net(x[index]), y[index]) * w).sum() / w.sum().clamp_min(1e-12)
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(index)
        losses.append(total / x.shape[0])
    net.eval()
    return losses


def predict_probabilities(net: nn.Module, embeddings: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return Probabilities(net).eval()(as_tensor(embeddings)).numpy().astype(np.float32)


def export_probabilities(net: nn.Module, dim: int) -> bytes:
    """The ONNX graph embedding [batch, dim] -> quality [batch, models]."""
    return export_module(Probabilities(net), dim)


def export_module(module: nn.Module, dim: int) -> bytes:
    """``module`` (embedding -> quality in [0, 1]) as the ONNX graph the service loads."""
    module = module.eval()
    with tempfile.TemporaryDirectory() as tmp, torch.no_grad(), warnings.catch_warnings():
        path = Path(tmp) / "router.onnx"
        warnings.simplefilter("ignore", UserWarning)
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
