"""Held-out evaluation: the utility rule, the baselines, and routers beating random."""

from __future__ import annotations

import numpy as np
import pytest

from trainer.evaluate import DEFAULT_COST_WEIGHT, evaluate, find, format_table, utility


def test_utility_penalises_each_price_doubling_by_the_cost_weight():
    prices = np.array([1.0, 2.0, 8.0])
    u = utility(np.array([[0.5, 0.5, 0.5]]), prices, 0.1)
    np.testing.assert_allclose(u, [[0.5, 0.4, 0.2]])
    np.testing.assert_allclose(utility(np.ones((1, 3)), prices, 0.0), np.ones((1, 3)))


def test_baselines_on_a_hand_made_case():
    labels = np.array([[1.0, 1.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]], np.float32)
    costs = np.array([[1.0, 10.0]] * 4)
    prices = np.array([1.0, 10.0])
    predicted = labels.copy()  # a perfect router
    results = evaluate(predicted, labels, costs, prices, labels, candidate_names=["cheap", "dear"])
    oracle, router = find(results, "oracle", 0.0), find(results, "router", 0.0)
    assert oracle.quality == router.quality == 1.0
    assert oracle.dollars_per_1k == pytest.approx((1 + 10 + 1 + 10) / 4 * 1000)
    assert find(results, "random", 0.0).quality == pytest.approx(0.625)
    single = find(results, "single best", 0.0)
    assert single.policy == "single best (dear)" and single.quality == 0.75
    assert router.best_pick_rate == 1.0
    table = format_table(results, title="toy")
    assert "single best (dear)" in table and table.startswith("toy")


@pytest.mark.parametrize("router_type", ["knn", "mlp"])
def test_trained_router_beats_random_on_held_out_prompts(router_type, trained_artifacts):
    results = trained_artifacts.results[router_type].results
    for weight in (DEFAULT_COST_WEIGHT, 0.0):
        router = find(results, "router", weight)
        random = find(results, "random", weight)
        assert router.utility > random.utility + 0.08, format_table(results)
        assert router.best_pick_rate > random.best_pick_rate + 0.1, format_table(results)
    # At the default weight the router spends less than always taking gpt-4o would.
    router = find(results, "router", DEFAULT_COST_WEIGHT)
    expensive = find(results, "single best", 0.0)
    assert router.dollars_per_1k < 0.7 * expensive.dollars_per_1k, format_table(results)
