"""Router families: fit, export, parity with the native model, and loud parity failures."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from sklearn.neighbors import KNeighborsRegressor

from trainer.routers import (
    INPUT_NAME,
    OUTPUT_NAME,
    KnnRouter,
    MlpRouter,
    RouterParityError,
    export_with_parity,
    make_router,
)

from .toy_data import clustered, unit_rows


@pytest.fixture(scope="module")
def toy() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Clustered unit vectors whose labels depend on the cluster, plus held-out rows."""
    x, y, _ = clustered(400)
    return x[:300], y[:300], x[300:]


@pytest.mark.parametrize("router_type", ["knn", "mlp"])
def test_router_exports_with_parity(router_type: str, toy):
    x, y, held_out = toy
    router = make_router(router_type, seed=1, **({"epochs": 5} if router_type == "mlp" else {}))
    router.fit(x, y)
    exported = export_with_parity(router, held_out)
    assert exported.parity_max_abs_diff <= exported.parity_tolerance == 1e-5
    assert (exported.input_dim, exported.output_dim, exported.parity_rows) == (32, 3, 100)
    assert (exported.input_name, exported.output_name) == (INPUT_NAME, OUTPUT_NAME)
    quality = exported.predict(held_out)
    assert quality.dtype == np.float32 and quality.shape == (100, 3)
    assert quality.min() >= 0.0 and quality.max() <= 1.0
    # One row at a time (as served) gives the same numbers as a batch.
    np.testing.assert_allclose(exported.predict(held_out[:1]), quality[:1], atol=1e-6)


def test_knn_graph_is_distance_weighted_like_sklearn_even_for_near_duplicates(toy):
    x, y, _ = toy
    rng = np.random.default_rng(1)
    near = x[:20] + 1e-3 * unit_rows(20, 32, rng)
    near = (near / np.linalg.norm(near, axis=1, keepdims=True)).astype(np.float32)
    router = KnnRouter(k=7)
    router.fit(x, y)
    exported = export_with_parity(router, near)
    reference = KNeighborsRegressor(n_neighbors=7, weights="distance").fit(x, y).predict(near)
    np.testing.assert_allclose(exported.predict(near), reference, atol=1e-5)
    uniform = KNeighborsRegressor(n_neighbors=7).fit(x, y).predict(near)
    assert np.abs(reference - uniform).max() > 0.05  # the weighting really matters here


def test_knn_k_is_capped_by_training_rows(toy):
    x, y, held_out = toy
    router = KnnRouter(k=50)
    router.fit(x[:10], y[:10])
    assert export_with_parity(router, held_out).hyperparameters["k"] == 10


def _tamper(onnx_bytes: bytes, delta: float) -> bytes:
    model = onnx.load_from_string(onnx_bytes)
    for init in model.graph.initializer:
        values = numpy_helper.to_array(init)
        if values.dtype.kind == "f" and values.ndim == 2:
            init.CopyFrom(numpy_helper.from_array(values + delta, init.name))
            break
    return model.SerializeToString()


@pytest.mark.parametrize("router_type", ["knn", "mlp"])
def test_tampered_graph_fails_parity_loudly(router_type: str, toy, monkeypatch):
    x, y, held_out = toy
    router = make_router(router_type, seed=1, **({"epochs": 3} if router_type == "mlp" else {}))
    router.fit(x, y)
    genuine = router.to_onnx
    monkeypatch.setattr(router, "to_onnx", lambda: _tamper(genuine(), 0.05))
    with pytest.raises(RouterParityError, match="differ from native"):
        export_with_parity(router, held_out)


def test_tolerance_below_float_rounding_fails_parity(toy):
    x, y, held_out = toy
    router = MlpRouter(epochs=3, seed=1)
    router.fit(x, y)
    router.parity_tolerance = 1e-12
    with pytest.raises(RouterParityError, match="tolerance 1e-12"):
        export_with_parity(router, held_out)


def test_wrong_graph_names_fail_export(toy, monkeypatch):
    x, y, held_out = toy
    router = KnnRouter(k=3)
    router.fit(x, y)
    model = onnx.load_from_string(router.to_onnx())
    model.graph.output[0].name = "variable"
    model.graph.node[-1].output[0] = "variable"
    monkeypatch.setattr(router, "to_onnx", model.SerializeToString)
    with pytest.raises(RouterParityError, match="outputs \\['variable'\\]"):
        export_with_parity(router, held_out)


def test_mlp_training_is_seeded(toy):
    x, y, held_out = toy
    a, b = MlpRouter(epochs=3, seed=4), MlpRouter(epochs=3, seed=4)
    a.fit(x, y)
    b.fit(x, y)
    np.testing.assert_array_equal(a.predict_native(held_out), b.predict_native(held_out))


def test_unknown_parameters_are_refused():
    with pytest.raises(ValueError, match="unknown knn parameters"):
        make_router("knn", neighbours=3)
    with pytest.raises(ValueError, match="unknown mlp parameters"):
        make_router("mlp", layers=2)
    with pytest.raises(ValueError, match="unknown router type"):
        make_router("forest")


def test_skl2onnx_still_drops_knn_distance_weights(toy):
    """Why knn.py builds its own graph: skl2onnx turns weights="distance" into uniform.

    If this starts failing, skl2onnx has fixed its converter and could replace the
    hand-built graph (the parity check would then prove it).
    """
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    from trainer.routers.base import onnx_session

    x, y, held_out = toy
    weighted = KNeighborsRegressor(n_neighbors=7, weights="distance").fit(x, y)
    uniform = KNeighborsRegressor(n_neighbors=7).fit(x, y)
    graph = convert_sklearn(weighted, initial_types=[("x", FloatTensorType([None, 32]))])
    (out,) = onnx_session(graph.SerializeToString()).run(None, {"x": held_out})
    np.testing.assert_allclose(out, uniform.predict(held_out), atol=1e-5)
    assert np.abs(out - weighted.predict(held_out)).max() > 1e-3
