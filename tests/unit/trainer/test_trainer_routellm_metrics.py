"""RouteLLM metrics (APGR, CPT) on hand-made cases, and the quality report around them."""

from __future__ import annotations

import numpy as np
import pytest

from trainer.quality_report import choose_pair, plot_curves, quality_report
from trainer.routellm_metrics import (
    bootstrap_figures,
    oracle_figures,
    random_figures,
    router_figures,
)

# Four prompts: weak right on 0 and 1; strong right on 0, 2 and 3.
WEAK = np.array([1.0, 1.0, 0.0, 0.0])
STRONG = np.array([1.0, 0.0, 1.0, 1.0])


def test_pgr_curve_of_a_perfect_order():
    # Strong-only wins are prompts 2 and 3, then 0 (tie), then 1 (a loss).
    fig = router_figures(np.array([0.0, -1.0, 1.0, 0.9]), WEAK, STRONG)
    # q_weak = 0.5, q_strong = 0.75: PGR after 0..4 strong calls.
    np.testing.assert_allclose(fig.curve.pgr, [0.0, 1.0, 2.0, 2.0, 1.0])
    assert fig.apgr == pytest.approx((0 + 1) / 8 + (1 + 2) / 8 + (2 + 2) / 8 + (2 + 1) / 8)
    assert fig.cpt50 == 0.25 and fig.cpt80 == 0.25
    assert oracle_figures(WEAK, STRONG).apgr == pytest.approx(fig.apgr)


def test_a_backwards_router_is_worse_than_random():
    fig = router_figures(np.array([0.0, 1.0, -1.0, -0.9]), WEAK, STRONG)
    np.testing.assert_allclose(fig.curve.pgr, [0.0, -1.0, -1.0, 0.0, 1.0])
    assert fig.apgr < 0.5
    assert fig.cpt50 == 1.0


def test_random_baseline_is_the_diagonal():
    fig = random_figures(WEAK, STRONG)
    assert fig.apgr == pytest.approx(0.5)
    # On a grid of four prompts PGR is 0.75 at 75% strong calls, so 80% needs all of them.
    assert fig.cpt50 == pytest.approx(0.5) and fig.cpt80 == 1.0


def test_pgr_is_undefined_when_the_strong_model_is_not_better():
    with pytest.raises(ValueError, match="not better"):
        router_figures(np.zeros(4), STRONG, STRONG)


def test_bootstrap_of_two_prompts_draws_each_resample_at_its_rate():
    """Prompt 0: only the strong model right; prompt 1: both wrong. Four equally likely
    resamples: {0, 0} APGR 0.5 (PGR 0, 0.5, 1); {0, 1} and {1, 0} APGR 0.75 (PGR 0, 1, 1,
    CPT(50%) at one call of two); {1, 1} has no gap to recover (NaN)."""
    boot = bootstrap_figures(
        np.array([1.0, 0.0]), np.array([0.0, 0.0]), np.array([1.0, 0.0]), resamples=4000, seed=3
    )
    undefined = np.isnan(boot.apgr)
    assert undefined.mean() == pytest.approx(0.25, abs=0.03)
    assert (boot.apgr[~undefined] == 0.5).mean() == pytest.approx(1 / 3, abs=0.03)
    assert set(np.unique(boot.apgr[~undefined])) == {0.5, 0.75}
    assert set(np.unique(boot.cpt50[~undefined])) == {0.5}
    assert np.array_equal(np.isnan(boot.cpt50), undefined)


def test_bootstrap_centres_on_the_point_figures_and_is_seeded():
    rng = np.random.default_rng(0)
    weak = (rng.random(2000) < 0.6).astype(float)
    strong = (rng.random(2000) < 0.8).astype(float)
    advantage = strong - weak + rng.normal(0, 1.0, 2000)  # an informative, noisy router
    point = router_figures(advantage, weak, strong)
    boot = bootstrap_figures(advantage, weak, strong, resamples=300, seed=1)
    low, high = np.percentile(boot.apgr, [2.5, 97.5])
    assert low < point.apgr < high and high - low < 0.2
    assert abs(boot.apgr.mean() - point.apgr) < 0.02
    assert abs(np.median(boot.cpt50) - point.cpt50) < 0.05
    again = bootstrap_figures(advantage, weak, strong, resamples=300, seed=1)
    np.testing.assert_array_equal(again.apgr, boot.apgr)


def test_quality_report_and_plot(tmp_path):
    labels = np.stack([WEAK, STRONG], axis=1)
    costs = np.tile([0.1, 10.0], (4, 1))
    predicted = np.array([[0.9, 0.9], [0.9, 0.1], [0.1, 0.9], [0.2, 0.9]])
    report = quality_report(
        predicted, labels, costs, np.array([0.1, 10.0]), labels, ["weak", "strong"]
    )
    routellm = report["routellm"]
    assert routellm["weak"] == "weak" and routellm["strong"] == "strong"
    assert routellm["random"]["apgr"] == 0.5
    assert routellm["router"]["apgr"] == routellm["oracle"]["apgr"]
    assert report["top_pick_best_rate"] == 1.0
    assert report["quality_error"]["weak"]["mae"] == pytest.approx(0.125)
    curve = report["curve"]
    assert curve[0] == [100.0, 0.5] and curve[-1] == [10000.0, 0.75]
    png = plot_curves(
        tmp_path / "q.png",
        {"router": curve},
        {"weak": (100.0, 0.5), "strong": (10000.0, 0.75)},
        title="toy",
    )
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_pair_is_cheapest_against_best_trained():
    assert choose_pair(np.array([5.0, 1.0, 9.0]), np.array([[0.2, 0.1, 0.9]])).strong == 2
    assert choose_pair(np.array([1.0, 2.0]), np.array([[0.9, 0.1]])) is None
