"""A router head: an ONNX graph from query embedding to predicted quality per model."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import BundleRefused
from .manifest import RouterGraph
from .onnx_session import cpu_session


class OnnxRouterHead:
    def __init__(self, path: Path, graph: RouterGraph, *, intra_op_threads: int = 1) -> None:
        try:
            self._session = cpu_session(path, intra_op_threads)
        except Exception as exc:  # onnxruntime raises its own exception types per failure
            raise BundleRefused(f"onnxruntime cannot load {path.name}: {exc}") from exc
        self._graph = graph
        inputs = {i.name: i.shape for i in self._session.get_inputs()}
        outputs = {o.name: o.shape for o in self._session.get_outputs()}
        if graph.input_name not in inputs or graph.output_name not in outputs:
            raise BundleRefused(
                f"{path.name} has inputs {sorted(inputs)} and outputs {sorted(outputs)}; "
                f"the manifest names {graph.input_name!r} -> {graph.output_name!r}"
            )
        for what, shape, dim in (
            ("input", inputs[graph.input_name], graph.input_dim),
            ("output", outputs[graph.output_name], graph.output_dim),
        ):
            declared = shape[-1] if shape else None
            if isinstance(declared, int) and declared != dim:
                raise BundleRefused(
                    f"{path.name} {what} has width {declared}, the manifest says {dim}"
                )

    def predict(self, embeddings: np.ndarray) -> np.ndarray:
        """Predicted quality in [0, 1], float32 [batch, n_models]."""
        (out,) = self._session.run(
            [self._graph.output_name], {self._graph.input_name: embeddings.astype(np.float32)}
        )
        quality = np.asarray(out, dtype=np.float32)
        if quality.shape != (embeddings.shape[0], self._graph.output_dim):
            raise BundleRefused(
                f"router produced shape {quality.shape}, the manifest says "
                f"[{embeddings.shape[0]}, {self._graph.output_dim}]"
            )
        return quality
