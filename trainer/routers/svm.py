"""Support-vector router: one RBF-kernel epsilon-SVR per candidate, output clipped to [0, 1].

Native model: scikit-learn ``SVR`` (libsvm), one per candidate column. Regression rather
than classification, so labels may be 0/1 correctness or graded quality in [0, 1] alike,
and no Platt calibration (an internal cross-validation) is needed for a probability.

Export: one ONNX graph built from the fitted support vectors (like ``knn.py``), because one
graph must score every candidate at once:

    k_i = exp(-gamma * |q - sv_i|^2) over the union of all models' support vectors
    quality = clip(k @ dual_coef + intercept, 0, 1)

where a model's column of ``dual_coef`` is zero on the other models' support vectors.
Distances in float64, as in the KNN graph, so the graph matches libsvm to ~1e-7.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from sklearn.svm import SVR

from trainer.routers.base import INPUT_NAME, OUTPUT_NAME

OPSET = 17


@dataclass
class SvmRouter:
    c: float = 1.0
    epsilon: float = 0.1
    gamma: float | str = "scale"
    max_train_rows: int = 8000  # libsvm is quadratic in rows; cap for predictable training
    seed: int = 0
    router_type: str = "svm"
    parity_tolerance: float = 1e-5
    _models: list[SVR] = field(default_factory=list)

    @classmethod
    def from_params(cls, params: Mapping[str, object], *, seed: int = 0) -> SvmRouter:
        router = cls(seed=seed)
        for name, value in params.items():
            if name in {"c", "epsilon"}:
                if not isinstance(value, int | float) or value <= 0:
                    raise ValueError(f"svm {name} must be a positive number")
                setattr(router, name, float(value))
            elif name == "gamma":
                if not (value == "scale" or (isinstance(value, int | float) and value > 0)):
                    raise ValueError("svm gamma must be 'scale' or a positive number")
                router.gamma = value if isinstance(value, str) else float(value)
            elif name == "max_train_rows":
                if not isinstance(value, int) or value < 2:
                    raise ValueError("svm max_train_rows must be an integer >= 2")
                router.max_train_rows = value
            else:
                raise ValueError(f"unknown svm parameters {[name]}")
        return router

    def fit(self, embeddings: np.ndarray, labels: np.ndarray) -> None:
        x = np.asarray(embeddings, np.float64)
        y = np.asarray(labels, np.float64)
        if x.shape[0] > self.max_train_rows:
            keep = np.random.default_rng(self.seed).choice(
                x.shape[0], self.max_train_rows, replace=False
            )
            x, y = x[np.sort(keep)], y[np.sort(keep)]
        self._models = []
        for j in range(y.shape[1]):
            model = SVR(kernel="rbf", C=self.c, epsilon=self.epsilon, gamma=self.gamma)
            model.fit(x, y[:, j])
            self._models.append(model)

    @property
    def models(self) -> list[SVR]:
        if not self._models:
            raise RuntimeError("svm router is not fitted")
        return self._models

    def predict_native(self, embeddings: np.ndarray) -> np.ndarray:
        x = np.asarray(embeddings, np.float64)
        out = np.stack([m.predict(x) for m in self.models], axis=1)
        return np.clip(out, 0.0, 1.0).astype(np.float32)

    def hyperparameters(self) -> dict[str, object]:
        return {
            "kernel": "rbf",
            "c": self.c,
            "epsilon": self.epsilon,
            "gamma": [float(m._gamma) for m in self.models],
            "support_vectors": [int(m.support_vectors_.shape[0]) for m in self.models],
            "max_train_rows": self.max_train_rows,
            "output": "clip(svr, 0, 1)",
        }

    def to_onnx(self) -> bytes:
        models = self.models
        gammas = {float(m._gamma) for m in models}
        if len(gammas) != 1:  # gamma="scale" depends on X only, so all columns share it
            raise ValueError(f"svm models disagree on gamma: {sorted(gammas)}")
        (gamma,) = gammas
        vectors = np.concatenate([m.support_vectors_ for m in models]).astype(np.float64)
        coef = np.zeros((vectors.shape[0], len(models)), np.float64)
        row = 0
        for j, m in enumerate(models):
            count = m.support_vectors_.shape[0]
            coef[row : row + count, j] = m.dual_coef_.ravel()
            row += count
        intercept = np.array([[float(m.intercept_[0]) for m in models]], np.float64)
        n, dim = vectors.shape
        inits = [
            numpy_helper.from_array(np.ascontiguousarray(vectors.T), "sv_t"),
            numpy_helper.from_array((vectors**2).sum(axis=1).reshape(1, n), "sv_sq"),
            numpy_helper.from_array(coef, "dual_coef"),
            numpy_helper.from_array(intercept, "intercept"),
            numpy_helper.from_array(np.array([-2.0]), "minus_two"),
            numpy_helper.from_array(np.array([-gamma]), "minus_gamma"),
            numpy_helper.from_array(np.array([0.0]), "zero"),
            numpy_helper.from_array(np.array([0.0]), "lo"),
            numpy_helper.from_array(np.array([1.0]), "hi"),
            numpy_helper.from_array(np.array([1], np.int64), "axis1"),
        ]
        nodes = [
            helper.make_node("Cast", [INPUT_NAME], ["query"], to=TensorProto.DOUBLE),
            helper.make_node("MatMul", ["query", "sv_t"], ["dots"]),
            helper.make_node("Mul", ["query", "query"], ["q_sq_terms"]),
            helper.make_node("ReduceSum", ["q_sq_terms", "axis1"], ["q_sq"], keepdims=1),
            helper.make_node("Mul", ["dots", "minus_two"], ["minus_2dots"]),
            helper.make_node("Add", ["minus_2dots", "q_sq"], ["partial"]),
            helper.make_node("Add", ["partial", "sv_sq"], ["d2_raw"]),
            helper.make_node("Max", ["d2_raw", "zero"], ["d2"]),
            helper.make_node("Mul", ["d2", "minus_gamma"], ["exponent"]),
            helper.make_node("Exp", ["exponent"], ["kernel"]),
            helper.make_node("MatMul", ["kernel", "dual_coef"], ["decision"]),
            helper.make_node("Add", ["decision", "intercept"], ["raw"]),
            helper.make_node("Max", ["raw", "lo"], ["raw_lo"]),
            helper.make_node("Min", ["raw_lo", "hi"], ["quality64"]),
            helper.make_node("Cast", ["quality64"], [OUTPUT_NAME], to=TensorProto.FLOAT),
        ]
        graph = helper.make_graph(
            nodes,
            "routeiq_svm",
            [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", dim])],
            [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", len(models)])],
            initializer=inits,
        )
        onnx_model = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="routeiq-trainer"
        )
        onnx_model.ir_version = 8
        onnx.checker.check_model(onnx_model, full_check=True)
        return onnx_model.SerializeToString()
