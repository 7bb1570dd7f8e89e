"""k-nearest-neighbour router: a distance-weighted average of the neighbours' labels.

Native model: scikit-learn ``KNeighborsRegressor`` (multi-output, brute force, euclidean;
on unit-length embeddings euclidean distance ranks exactly like cosine similarity).

Export: the ONNX graph is built here from the fitted model's own arrays rather than by
skl2onnx. skl2onnx 1.20 converts ``weights="distance"`` by negating the TopK distances
and clamping them at 1e-6, so every neighbour gets the same weight: its graph is the
*uniform* average (measured: 5.9e-3 off sklearn on random unit vectors), which our parity
check rejects. The graph below is small and does what sklearn does, in two steps:

    shortlist:  the ``k + margin`` smallest |x_i|^2 - 2 q.x_i  (one float32 Gemm)
    exact:      d = |q - x_i| in float64 over the shortlist only;  take the k smallest;
                w = 1 / max(d, 1e-12);  quality = sum(w * y) / sum(w)

Why two steps: the float32 expansion loses ~1e-7 absolute to cancellation, which for a
near-duplicate neighbour (d ~ 0.05) is a 2e-5 relative error in its weight, enough to
fail a 1e-5 parity check; but a float64 product over every training row is not what
onnxruntime's fast kernels do (measured 0.6-1.5 ms a request for 1,440 rows, more than the
rest of the decision besides the encoder). The float32 shortlist only has to *contain*
the k nearest, which an error of 1e-6 cannot upset unless ``margin`` further rows sit
within 1e-6 of the k-th distance. (sklearn gives an exact-duplicate neighbour all the
weight; the floor approximates that.)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from sklearn.neighbors import KNeighborsRegressor, NearestNeighbors

from trainer.routers.base import INPUT_NAME, OUTPUT_NAME

OPSET = 17
_DISTANCE_FLOOR = 1e-12
# Extra float32-shortlisted rows beyond k (at least k) re-measured exactly in float64.
_SHORTLIST_MARGIN = 16


@dataclass
class KnnRouter:
    k: int = 20
    router_type: str = "knn"
    # float64 distances like sklearn's; the float32 output rounding is ~6e-8.
    parity_tolerance: float = 1e-5
    _model: KNeighborsRegressor | None = None
    _merged_rows: int = 0

    @classmethod
    def from_params(cls, params: Mapping[str, object]) -> KnnRouter:
        unknown = set(params) - {"k"}
        if unknown:
            raise ValueError(f"unknown knn parameters {sorted(unknown)}")
        k = params.get("k", cls.k)
        if not isinstance(k, int) or k < 1:
            raise ValueError("knn k must be a positive integer")
        return cls(k=k)

    def fit(
        self, embeddings: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None
    ) -> None:
        """``weights`` [n, m] marks observed cells (> 0, e.g. inverse propensity): each
        model's column is first replaced by the masked neighbour average of that model's
        observed labels (``masked_neighbour_average``), so the graph stays the plain KNN."""
        if weights is not None:
            labels = masked_neighbour_average(embeddings, labels, weights, self.k)
        # Identical embeddings (e.g. prompts that share a passage longer than the encoder's
        # token limit) are one point with their labels averaged: they cannot be told apart,
        # and as separate points they tie, which sklearn and TopK may break differently.
        points, inverse = np.unique(np.asarray(embeddings, np.float32), axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        targets = np.zeros((points.shape[0], labels.shape[1]), np.float64)
        np.add.at(targets, inverse, np.asarray(labels, np.float64))
        targets /= np.bincount(inverse, minlength=points.shape[0])[:, None]
        self._merged_rows = int(embeddings.shape[0] - points.shape[0])
        k = min(self.k, points.shape[0])
        model = KNeighborsRegressor(
            n_neighbors=k, weights="distance", algorithm="brute", metric="euclidean"
        )
        model.fit(points, targets.astype(np.float32))
        self._model = model

    @property
    def model(self) -> KNeighborsRegressor:
        if self._model is None:
            raise RuntimeError("knn router is not fitted")
        return self._model

    def predict_native(self, embeddings: np.ndarray) -> np.ndarray:
        out = np.asarray(self.model.predict(np.asarray(embeddings, np.float32)), np.float32)
        return out.reshape(len(embeddings), -1)

    def hyperparameters(self) -> dict[str, object]:
        return {
            "k": int(self.model.n_neighbors),
            "weights": "distance",
            "metric": "euclidean (unit vectors: cosine order)",
            "train_rows": int(self.model.n_samples_fit_),
            "duplicate_rows_merged": self._merged_rows,
        }

    def to_onnx(self) -> bytes:
        model = self.model
        points = np.asarray(model._fit_X, dtype=np.float32)  # [n, dim]
        targets = np.asarray(model._y, dtype=np.float32).reshape(points.shape[0], -1)  # [n, m]
        n, dim = points.shape
        m = targets.shape[1]
        k = int(model.n_neighbors)
        shortlist = min(n, k + max(k, _SHORTLIST_MARGIN))
        inits = [
            numpy_helper.from_array(np.ascontiguousarray(points), "points"),
            # Rows are float32, so casting a gathered row to float64 is exact.
            numpy_helper.from_array(
                (points.astype(np.float64) ** 2).sum(axis=1).astype(np.float32).reshape(1, n),
                "points_sq",
            ),
            numpy_helper.from_array(targets.astype(np.float64), "targets"),
            numpy_helper.from_array(np.array([_DISTANCE_FLOOR]), "floor"),
            numpy_helper.from_array(np.array([shortlist], np.int64), "shortlist"),
            numpy_helper.from_array(np.array([k], np.int64), "k"),
            numpy_helper.from_array(np.array([1], np.int64), "axis1"),
            numpy_helper.from_array(np.array([2], np.int64), "axis2"),
        ]
        nodes = [
            # |x|^2 - 2 q.x orders rows like the distance (|q|^2 is the same for every row).
            helper.make_node(
                "Gemm",
                [INPUT_NAME, "points", "points_sq"],
                ["approx"],
                alpha=-2.0,
                beta=1.0,
                transB=1,
            ),
            helper.make_node(
                "TopK", ["approx", "shortlist"], ["_", "short_index"], axis=1, largest=0, sorted=0
            ),
            helper.make_node("Gather", ["points", "short_index"], ["short_points"], axis=0),
            helper.make_node("Cast", ["short_points"], ["short_points64"], to=TensorProto.DOUBLE),
            helper.make_node("Cast", [INPUT_NAME], ["query64"], to=TensorProto.DOUBLE),
            helper.make_node("Unsqueeze", ["query64", "axis1"], ["query64_3d"]),
            helper.make_node("Sub", ["short_points64", "query64_3d"], ["diff"]),
            helper.make_node("Mul", ["diff", "diff"], ["diff_sq"]),
            helper.make_node("ReduceSum", ["diff_sq", "axis2"], ["d2"], keepdims=0),
            helper.make_node("Sqrt", ["d2"], ["dist"]),
            helper.make_node("TopK", ["dist", "k"], ["nn_dist", "nn_pos"], axis=1, largest=0),
            helper.make_node("GatherElements", ["short_index", "nn_pos"], ["nn_index"], axis=1),
            helper.make_node("Max", ["nn_dist", "floor"], ["nn_dist_floored"]),
            helper.make_node("Reciprocal", ["nn_dist_floored"], ["weights"]),
            helper.make_node("ReduceSum", ["weights", "axis1"], ["weight_sum"], keepdims=1),
            helper.make_node("Gather", ["targets", "nn_index"], ["nn_targets"], axis=0),
            helper.make_node("Unsqueeze", ["weights", "axis2"], ["weights_3d"]),
            helper.make_node("Mul", ["nn_targets", "weights_3d"], ["weighted"]),
            helper.make_node("ReduceSum", ["weighted", "axis1"], ["weighted_sum"], keepdims=0),
            helper.make_node("Div", ["weighted_sum", "weight_sum"], ["quality64"]),
            helper.make_node("Cast", ["quality64"], [OUTPUT_NAME], to=TensorProto.FLOAT),
        ]
        graph = helper.make_graph(
            nodes,
            "routeiq_knn",
            [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", dim])],
            [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", m])],
            initializer=inits,
        )
        onnx_model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", OPSET)],
            producer_name="routeiq-trainer",
        )
        onnx_model.ir_version = 8
        onnx.checker.check_model(onnx_model, full_check=True)
        return onnx_model.SerializeToString()


def masked_neighbour_average(
    embeddings: np.ndarray, labels: np.ndarray, weights: np.ndarray, k: int
) -> np.ndarray:
    """Per model, every row's label becomes the weighted average of the ``k`` nearest rows
    where that model was observed (weight ``weights[i, j] / distance``): unobserved cells
    never count as 0 or 1, and an often-explored model does not outvote a rarely-served one
    beyond its inverse propensity. A model never observed gets 0.5 (no information)."""
    x = np.asarray(embeddings, np.float32)
    y = np.asarray(labels, np.float64)
    w = np.asarray(weights, np.float64)
    out = np.full(y.shape, 0.5)
    for j in range(y.shape[1]):
        seen = np.flatnonzero(w[:, j] > 0)
        if seen.size == 0:
            continue
        finder = NearestNeighbors(n_neighbors=min(k, seen.size)).fit(x[seen])
        distance, index = finder.kneighbors(x)
        # The floor keeps a row's own observation dominant without dividing by zero.
        cell = w[seen[index], j] / np.maximum(distance, 1e-6)
        out[:, j] = (cell * y[seen[index], j]).sum(axis=1) / cell.sum(axis=1)
    return out.astype(np.float32)
