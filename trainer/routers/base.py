"""What every router family provides, and the parity check that guards each export."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import onnxruntime as ort

INPUT_NAME = "embedding"
OUTPUT_NAME = "quality"


class RouterParityError(RuntimeError):
    """The exported ONNX graph does not compute what the native model computes."""


class Router(Protocol):
    router_type: str
    parity_tolerance: float

    def fit(self, embeddings: np.ndarray, labels: np.ndarray) -> None: ...

    def predict_native(self, embeddings: np.ndarray) -> np.ndarray:
        """float32 [batch, n_models] in [0, 1], computed by the training library."""
        ...

    def to_onnx(self) -> bytes:
        """A self-contained ONNX model: ``embedding`` [batch, dim] -> ``quality`` [batch, m]."""
        ...

    def hyperparameters(self) -> dict[str, object]: ...


@dataclass(frozen=True)
class ExportedRouter:
    router_type: str
    onnx_bytes: bytes
    input_dim: int
    output_dim: int
    hyperparameters: dict[str, object]
    parity_max_abs_diff: float
    parity_tolerance: float
    parity_rows: int
    input_name: str = INPUT_NAME
    output_name: str = OUTPUT_NAME

    def session(self) -> ort.InferenceSession:
        return onnx_session(self.onnx_bytes)

    def predict(self, embeddings: np.ndarray) -> np.ndarray:
        (out,) = self.session().run([self.output_name], {self.input_name: embeddings})
        return np.asarray(out, dtype=np.float32)


def onnx_session(onnx_bytes: bytes) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(
        onnx_bytes, sess_options=options, providers=["CPUExecutionProvider"]
    )


def export_with_parity(router: Router, check_embeddings: np.ndarray) -> ExportedRouter:
    """Export ``router`` and prove the ONNX graph matches its native predictions.

    ``check_embeddings`` should be held-out rows. Raises ``RouterParityError`` when the
    largest |onnx - native| exceeds ``router.parity_tolerance``, when shapes or names
    differ, or when outputs leave [0, 1].
    """
    check = np.ascontiguousarray(check_embeddings, dtype=np.float32)
    if check.ndim != 2 or check.shape[0] == 0:
        raise ValueError("parity needs a non-empty [rows, dim] embedding matrix")
    onnx_bytes = router.to_onnx()
    session = onnx_session(onnx_bytes)
    inputs = [i.name for i in session.get_inputs()]
    outputs = [o.name for o in session.get_outputs()]
    if inputs != [INPUT_NAME] or outputs != [OUTPUT_NAME]:
        raise RouterParityError(
            f"{router.router_type} graph has inputs {inputs} and outputs {outputs}; "
            f"expected [{INPUT_NAME!r}] -> [{OUTPUT_NAME!r}]"
        )
    native = np.asarray(router.predict_native(check), dtype=np.float32)
    (exported,) = session.run([OUTPUT_NAME], {INPUT_NAME: check})
    exported = np.asarray(exported, dtype=np.float32)
    if exported.shape != native.shape:
        raise RouterParityError(
            f"{router.router_type} ONNX output shape {exported.shape} != native {native.shape}"
        )
    diff = float(np.max(np.abs(exported - native)))
    if not np.isfinite(diff) or diff > router.parity_tolerance:
        raise RouterParityError(
            f"{router.router_type} ONNX predictions differ from native by {diff:.3g} on "
            f"{check.shape[0]} held-out rows (tolerance {router.parity_tolerance:g}); "
            "refusing to export"
        )
    if exported.min() < 0.0 or exported.max() > 1.0:
        raise RouterParityError(f"{router.router_type} predicts quality outside [0, 1]")
    return ExportedRouter(
        router_type=router.router_type,
        onnx_bytes=onnx_bytes,
        input_dim=check.shape[1],
        output_dim=native.shape[1],
        hyperparameters=router.hyperparameters(),
        parity_max_abs_diff=diff,
        parity_tolerance=router.parity_tolerance,
        parity_rows=check.shape[0],
    )
