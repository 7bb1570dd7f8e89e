"""Budget calibration (trainer.calibration): the table a bundle ships, and whether the weight it
gives for a share of strong-model calls realises that share on prompts it never saw."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from pydantic import ValidationError

from decision_service.domain import CandidateIn
from decision_service.manifest import BundleManifest, StrongShareCalibration, StrongSharePoint
from decision_service.policy import ModelIndex, rank
from trainer.calibration import (
    RESOLUTION,
    calibrate,
    price_penalties,
    ranked_first,
    realised_share,
    share_curve,
    strong_model,
)
from trainer.routers import export_with_parity, make_router

from .calibration_data import MODELS, STRONG, draw

TARGETS = (0.1, 0.25, 0.5, 0.8)
TOLERANCE = 0.03  # three points of share


@pytest.fixture(scope="module", params=["mlp", "knn"])
def routed(request: pytest.FixtureRequest) -> tuple[str, np.ndarray, np.ndarray, np.ndarray]:
    """A real router trained on one sample, its predictions on a held-out and a fresh one."""
    train, held_out, fresh = draw(3000, seed=1), draw(3000, seed=2), draw(6000, seed=3)
    params = {"epochs": 40} if request.param == "mlp" else {"k": 25}
    router = make_router(request.param, seed=0, **params)
    router.fit(train.embeddings, train.labels)
    exported = export_with_parity(router, held_out.embeddings[:200])
    assert strong_model(train.labels) == STRONG
    return (
        request.param,
        train.prices,
        exported.predict(held_out.embeddings),
        exported.predict(fresh.embeddings),
    )


def test_the_calibrated_weight_realises_the_share_on_fresh_prompts(
    routed: tuple[str, np.ndarray, np.ndarray, np.ndarray],
) -> None:
    name, prices, held_out, fresh = routed
    table = calibrate(held_out, prices, STRONG, MODELS[STRONG].model_name)
    # KNN predicts exactly 1.0 for several models where every neighbour was right; such a
    # tie goes to the cheaper model at any weight, so the strong model's share has a ceiling.
    ceiling = table.points[-1].share
    assert ceiling == pytest.approx(realised_share(held_out, prices, STRONG, 1e-9))
    realised = {}
    for target in TARGETS:
        weight = table.cost_weight_for(target)
        on_held_out = realised_share(held_out, prices, STRONG, weight)
        if target > ceiling:  # served with the ceiling, the most the router can send
            assert on_held_out == pytest.approx(ceiling)
            continue
        # "At most": met from below on the calibration rows, within the table's resolution.
        assert target - RESOLUTION - 2 / len(held_out) <= on_held_out <= target + 1e-9
        realised[target] = realised_share(fresh, prices, STRONG, weight)
    assert len(realised) >= 3, f"{name} reaches only {ceiling:.3f}"
    print(f"{name}: target -> share on 6000 fresh prompts {realised}")
    for target, share in realised.items():
        assert share == pytest.approx(target, abs=TOLERANCE), (name, target, share)


def test_without_calibration_the_share_is_far_from_a_target(
    routed: tuple[str, np.ndarray, np.ndarray, np.ndarray],
) -> None:
    # The figure the test above checks is not met by any weight: the default and the ends.
    _, prices, _, fresh = routed
    shares = {w: realised_share(fresh, prices, STRONG, w) for w in (0.0, 0.05, 1.0)}
    assert shares[0.0] > 0.5 + TOLERANCE and shares[1.0] < 0.1 - TOLERANCE, shares
    assert all(abs(shares[0.05] - t) > TOLERANCE for t in (0.1, 0.8)), shares


def test_the_table_follows_the_services_ranking_rule() -> None:
    rng = np.random.default_rng(5)
    quality = rng.random((300, 3))
    prices = np.array([0.3, 1.5, 10.0])
    index = ModelIndex(MODELS)
    candidates = [CandidateIn(id=m.model_name, model_name=m.model_name) for m in MODELS]
    for weight in (0.0, 0.03, 0.11, 0.4, 1.0):
        served = [rank(candidates, q, index, weight)[0].model_name for q in quality]
        names = [MODELS[j].model_name for j in ranked_first(quality, prices, weight)]
        assert served == names
    weights, shares, _ = share_curve(quality, prices, STRONG)
    for weight, share in zip(weights[::7], shares[::7], strict=True):
        assert share == realised_share(quality, prices, STRONG, float(weight))


def test_the_share_falls_as_the_weight_grows_when_the_strong_model_is_dearest() -> None:
    quality = np.random.default_rng(6).random((500, 3))
    table = calibrate(quality, np.array([0.3, 1.5, 10.0]), STRONG, "large-model")
    shares = [p.share for p in table.points]
    weights = [p.cost_weight for p in table.points]
    assert shares == sorted(shares) and weights == sorted(weights, reverse=True)
    assert all(b - a >= RESOLUTION - 1e-9 for a, b in itertools.pairwise(shares))
    assert table.points[0].share == 0.0 and table.points[-1].share == pytest.approx(
        realised_share(quality, np.array([0.3, 1.5, 10.0]), STRONG, 0.0)
    )
    assert len(table.points) <= 1 / RESOLUTION + 1


def test_tied_predictions_list_only_the_shares_a_weight_can_reach() -> None:
    # Two models, advantages in steps of 0.25: shares jump in big steps; "at most" picks the
    # step below a target, never the one above. Ties (advantage 0) go to the cheap model.
    advantage = np.repeat([0.0, 0.25, 0.5, 0.75], 25)
    quality = np.stack([np.full(100, 0.2), 0.2 + advantage], axis=1)
    prices = np.array([1.0, 4.0])  # log2 ratio 2: weight w costs the strong model 2w
    table = calibrate(quality, prices, 1, "big")
    assert [p.share for p in table.points] == [0.0, 0.25, 0.5, 0.75]
    assert realised_share(quality, prices, 1, table.cost_weight_for(0.6)) == 0.5
    assert realised_share(quality, prices, 1, table.cost_weight_for(0.9)) == 0.75  # ceiling
    # A small price gap: even weight 1 leaves the strong model 75 %, the floor of any ask.
    near = np.array([1.0, 1.1])
    table = calibrate(quality, near, 1, "big")
    assert table.points[0].share == 0.75
    assert realised_share(quality, near, 1, table.cost_weight_for(0.1)) == 0.75


def test_a_strong_model_cheaper_than_another_still_gets_a_table() -> None:
    quality = np.random.default_rng(7).random((400, 3))
    prices = np.array([0.3, 10.0, 1.5])  # the strong one (column 2) is not the dearest
    table = calibrate(quality, prices, 2, "medium")
    for point in table.points:
        assert realised_share(quality, prices, 2, point.cost_weight) == pytest.approx(point.share)


def test_free_and_unpriced_candidates_pay_no_penalty() -> None:
    assert price_penalties(np.array([0.0, 1.0, 4.0])).tolist() == [0.0, 0.0, 2.0]
    assert price_penalties(np.zeros(2)).tolist() == [0.0, 0.0]


def test_lookup_is_at_most_and_points_must_ascend() -> None:
    table = StrongShareCalibration(
        strong_model="big",
        held_out_prompts=10,
        points=[
            StrongSharePoint(share=0.1, cost_weight=0.5),
            StrongSharePoint(share=0.4, cost_weight=0.2),
            StrongSharePoint(share=0.9, cost_weight=0.0),
        ],
    )
    assert [table.cost_weight_for(s) for s in (0.0, 0.1, 0.39, 0.4, 0.95, 1.0)] == [
        0.5,
        0.5,
        0.5,
        0.2,
        0.0,
        0.0,
    ]
    with pytest.raises(ValidationError, match="ascending"):
        StrongShareCalibration(
            strong_model="big", held_out_prompts=10, points=list(reversed(table.points))
        )


def test_a_manifest_without_calibration_still_loads(trained_artifacts) -> None:  # type: ignore[no-untyped-def]
    manifest_path = trained_artifacts.bundle_dirs["knn"] / "manifest.json"
    document = json.loads(manifest_path.read_text())
    assert document["strong_share_calibration"]["strong_model"]
    del document["strong_share_calibration"]
    old = BundleManifest.model_validate(document)
    assert old.strong_share_calibration is None
