"""SVM and MF routers: fit, export with parity, one quality per candidate, seeded."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.svm import SVR

from trainer.routers import (
    ROUTER_TYPES,
    MfRouter,
    RouterParityError,
    SvmRouter,
    export_with_parity,
    make_router,
)

from .toy_data import clustered


@pytest.fixture(scope="module")
def toy() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    x, y, quality = clustered(500)
    return x[:400], y[:400], x[400:], quality[400:]


def test_every_family_is_registered():
    assert ROUTER_TYPES == ("knn", "svm", "mlp", "mf", "blend")


@pytest.mark.parametrize(
    ("router_type", "params"),
    [
        ("svm", {}),
        ("mf", {"epochs": 40, "rank": 16}),
        ("blend", {"clusters": [3, 6], "mlp_epochs": 40}),
    ],
)
def test_family_exports_with_parity_and_learns_the_clusters(router_type, params, toy):
    x, y, held_out, truth = toy
    router = make_router(router_type, seed=1, **params)
    router.fit(x, y)
    exported = export_with_parity(router, held_out)
    assert exported.parity_max_abs_diff <= exported.parity_tolerance == 1e-5
    assert (exported.input_dim, exported.output_dim) == (32, 3)
    quality = exported.predict(held_out)
    assert quality.shape == (100, 3) and quality.min() >= 0.0 and quality.max() <= 1.0
    # Predicted quality tracks each cluster's true success rate (base-rate MAE would be ~0.27).
    assert np.abs(quality - truth).mean() < 0.15
    np.testing.assert_allclose(exported.predict(held_out[:1]), quality[:1], atol=1e-6)


def test_svm_graph_matches_one_sklearn_svr_per_candidate(toy):
    x, y, held_out, _ = toy
    router = SvmRouter(c=2.0, epsilon=0.05)
    router.fit(x, y)
    exported = export_with_parity(router, held_out)
    for j in range(3):
        reference = SVR(C=2.0, epsilon=0.05, gamma="scale").fit(x, y[:, j]).predict(held_out)
        np.testing.assert_allclose(
            exported.predict(held_out)[:, j], np.clip(reference, 0, 1), atol=1e-5
        )
    assert exported.hyperparameters["support_vectors"] == [
        int(m.support_vectors_.shape[0]) for m in router.models
    ]


def test_svm_caps_training_rows_reproducibly(toy):
    x, y, _, _ = toy
    a, b = SvmRouter(max_train_rows=50, seed=3), SvmRouter(max_train_rows=50, seed=3)
    a.fit(x, y)
    b.fit(x, y)
    assert all(m.support_vectors_.shape[0] <= 50 for m in a.models)
    np.testing.assert_array_equal(a.predict_native(x[:5]), b.predict_native(x[:5]))


def test_mf_scores_every_candidate_from_model_embeddings(toy):
    x, y, held_out, _ = toy
    router = MfRouter(epochs=3, rank=8, seed=2)
    router.fit(x, y)
    net = router.net
    assert tuple(net.model_embedding.shape) == (3, 8)
    assert tuple(net.text_proj.weight.shape) == (8, 32)
    again = MfRouter(epochs=3, rank=8, seed=2)
    again.fit(x, y)
    np.testing.assert_array_equal(router.predict_native(held_out), again.predict_native(held_out))


def test_mf_tampered_graph_fails_parity(toy, monkeypatch):
    import onnx
    from onnx import numpy_helper

    x, y, held_out, _ = toy
    router = MfRouter(epochs=2, rank=8)
    router.fit(x, y)
    model = onnx.load_from_string(router.to_onnx())
    for init in model.graph.initializer:
        values = numpy_helper.to_array(init)
        if values.ndim == 2:
            init.CopyFrom(numpy_helper.from_array(values + 0.05, init.name))
            break
    monkeypatch.setattr(router, "to_onnx", model.SerializeToString)
    with pytest.raises(RouterParityError, match="differ from native"):
        export_with_parity(router, held_out)


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="unknown svm parameters"):
        make_router("svm", kernel="linear")
    with pytest.raises(ValueError, match="svm c must be"):
        make_router("svm", c=0)
    with pytest.raises(ValueError, match="unknown mf parameters"):
        make_router("mf", dim=3)
    with pytest.raises(ValueError, match="mf rank must be"):
        make_router("mf", rank=0)


def test_knn_merges_identical_embeddings_so_ties_cannot_break_parity(toy):
    x, y, held_out, _ = toy
    # Prompts sharing a passage longer than the token limit embed identically: repeat rows
    # with conflicting labels and query exactly at them.
    x_dup = np.concatenate([x, x[:50], x[:50]])
    y_dup = np.concatenate([y, 1 - y[:50], y[:50]])
    router = make_router("knn", k=7)
    router.fit(x_dup, y_dup)
    exported = export_with_parity(router, np.concatenate([x[:50], held_out]))
    assert exported.hyperparameters["duplicate_rows_merged"] == 100
    assert exported.hyperparameters["train_rows"] == 400
    # An exact match gets (almost) all the weight: the mean of its duplicates' labels.
    expected = (y[:50] * 2 + (1 - y[:50])) / 3
    np.testing.assert_allclose(exported.predict(x[:50]), expected, atol=1e-5)


def test_blend_is_the_weighted_mean_of_its_mlp_and_cluster_heads(toy):
    x, y, held_out, truth = toy
    router = make_router("blend", seed=2, clusters=[4], mlp_epochs=30, mlp_weight=0.25)
    router.fit(x, y)
    (head,) = router._heads
    assert router.mlp is not None
    expected = 0.25 * router.mlp.predict_native(held_out) + 0.75 * head.predict(held_out)
    exported = export_with_parity(router, held_out)
    np.testing.assert_allclose(exported.predict(held_out), expected, atol=1e-5)
    # Each group's quality is its members' mean label: rows are probabilities, so in [0, 1].
    assert head.quality.shape == (4, 3) and 0.0 <= head.quality.min() <= head.quality.max() <= 1.0
    assert exported.hyperparameters["groups_used"] == [4]
    # The cluster head alone learns the clusters better than the base rate does.
    base_rate = np.abs(y.mean(axis=0) - truth).mean()
    assert np.abs(head.predict(held_out) - truth).mean() < base_rate / 2


def test_blend_without_its_mlp_is_the_cluster_heads_alone(toy):
    x, y, held_out, _ = toy
    router = make_router("blend", seed=2, clusters=[4, 8], mlp_weight=0.0)
    router.fit(x, y)
    assert router.mlp is None
    exported = export_with_parity(router, held_out)
    heads = np.mean([h.predict(held_out) for h in router._heads], axis=0)
    np.testing.assert_allclose(exported.predict(held_out), heads, atol=1e-5)
    assert exported.hyperparameters["mlp"] is None


def test_blend_refuses_bad_parameters():
    with pytest.raises(ValueError, match="clusters"):
        make_router("blend", clusters=[1])
    with pytest.raises(ValueError, match="mlp_weight"):
        make_router("blend", mlp_weight=1.5)
    with pytest.raises(ValueError, match="unknown mlp parameters"):
        make_router("blend", mlp_depth=3)
    with pytest.raises(ValueError, match="unknown blend parameter 'k'"):
        make_router("blend", k=3)
