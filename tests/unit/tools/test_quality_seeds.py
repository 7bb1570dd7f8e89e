"""bench-quality's aggregation over split seeds, and the per-model share chart's figures."""

from __future__ import annotations

import numpy as np
import pytest

from tools.quality.plots import model_shares, plot_model_share, plot_pgr
from tools.quality.seeds import SeedFigures, mean_curve, summarise
from trainer.routellm_metrics import BootstrapFigures, Curve, RouteLLMFigures

GRID = np.linspace(0.0, 1.0, 5)


def _seed(seed: int, apgr: float, cpt50: float, boot_apgr: np.ndarray) -> SeedFigures:
    curve = Curve(GRID, GRID, GRID)
    return SeedFigures(
        seed,
        RouteLLMFigures(apgr, cpt50, 0.8, curve),
        BootstrapFigures(boot_apgr, np.full(len(boot_apgr), cpt50)),
    )


def test_mean_over_seeds_and_interval_of_the_seed_mean():
    ramp = np.arange(100) / 100
    summary = summarise([_seed(0, 0.60, 0.30, ramp), _seed(4, 0.70, 0.20, ramp[::-1].copy())])
    assert summary["seeds"] == [0, 4]
    assert summary["apgr"] == 0.65 and summary["cpt50_pct"] == 25.0 and summary["cpt80_pct"] == 80.0
    # Resample b of the mean is the mean of each seed's resample b: 0.495 every time.
    assert summary["apgr_ci95"] == [0.495, 0.495]
    assert summary["cpt50_pct_ci95"] == [25.0, 25.0]
    assert summary["per_seed"]["4"] == {"apgr": 0.7, "cpt50_pct": 20.0, "cpt80_pct": 80.0}
    same = summarise([_seed(0, 0.6, 0.3, ramp), _seed(1, 0.6, 0.3, ramp)])
    assert same["apgr_ci95"] == [round(float(v), 4) for v in np.percentile(ramp, [2.5, 97.5])]
    assert same["bootstrap"]["resamples"] == 100


def test_undefined_resamples_are_left_out_and_mismatched_seeds_refused():
    with_nan = np.array([0.5, np.nan, 0.7, 0.6])
    summary = summarise([_seed(0, 0.6, 0.3, with_nan)])
    assert summary["apgr_ci95"] == [
        round(float(v), 4) for v in np.percentile([0.5, 0.7, 0.6], [2.5, 97.5])
    ]
    with pytest.raises(ValueError, match="as many bootstrap resamples"):
        summarise([_seed(0, 0.6, 0.3, with_nan), _seed(1, 0.6, 0.3, with_nan[:2])])
    with pytest.raises(ValueError, match="no seed"):
        summarise([])


def test_mean_curve_averages_on_a_common_grid():
    a = (np.array([0.0, 0.5, 1.0]), np.array([0.0, 1.0, 1.0]))
    b = (np.array([0.0, 1.0]), np.array([0.0, 1.0]))
    curve = mean_curve([a, b], points=3)
    np.testing.assert_allclose(curve, [[0.0, 0.0], [0.5, 0.75], [1.0, 1.0]])


def test_model_shares_move_to_the_cheap_model_as_the_cost_weight_grows(tmp_path):
    # Prompt 0: strong 0.3 better; prompt 1: 0.05 better; prompt 2: weak better.
    predicted = np.array([[0.5, 0.8], [0.7, 0.75], [0.9, 0.6]])
    prices = np.array([1.0, 8.0])  # log2 ratio 3: weight w costs the strong model 3w
    shares = model_shares(predicted, prices, weights=(0.0, 0.01, 0.05, 0.2))
    np.testing.assert_allclose(shares, [[1 / 3, 2 / 3], [1 / 3, 2 / 3], [2 / 3, 1 / 3], [1, 0]])
    path = plot_model_share(
        tmp_path / "s.png", predicted, prices, ["a/weak", "b/strong"], title="t"
    )
    assert path.read_bytes().startswith(b"\x89PNG")
    curves = {"r": np.stack([GRID, GRID**0.5], axis=1)}
    pgr = plot_pgr(tmp_path / "p.png", curves, oracle=None, reference=None, title="t")
    assert pgr.read_bytes().startswith(b"\x89PNG")
