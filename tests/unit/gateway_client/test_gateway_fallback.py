"""Static fallback policies."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from gateway_client.fallback import (
    OrderedFallback,
    WeightedShuffleFallback,
    deployment_weight,
    make_fallback_policy,
)


def dep(id: str, *, weight: Any = None, info_weight: Any = None) -> dict[str, Any]:
    params: dict[str, Any] = {"model": f"openai/{id}"}
    info: dict[str, Any] = {"id": id}
    if weight is not None:
        params["weight"] = weight
    if info_weight is not None:
        info["weight"] = info_weight
    return {"model_name": "g", "litellm_params": params, "model_info": info}


def test_ordered_takes_the_first() -> None:
    deployments = [dep("a"), dep("b"), dep("c")]
    assert OrderedFallback().choose(deployments) is deployments[0]


def test_policies_refuse_an_empty_list() -> None:
    with pytest.raises(ValueError):
        OrderedFallback().choose([])
    with pytest.raises(ValueError):
        WeightedShuffleFallback().choose([])


@pytest.mark.parametrize(
    ("deployment", "expected"),
    [
        (dep("a"), 1.0),
        (dep("a", weight=3), 3.0),
        (dep("a", info_weight=2.5), 2.5),
        (dep("a", weight=4, info_weight=2), 4.0),  # litellm_params wins
        (dep("a", weight=0), 0.0),
        (dep("a", weight="2"), 2.0),
        (dep("a", weight=-1), 1.0),
        (dep("a", weight="heavy"), 1.0),
        (dep("a", weight=float("nan")), 1.0),
        (dep("a", weight=True), 1.0),
        ({"litellm_params": None}, 1.0),
    ],
)
def test_deployment_weight(deployment: dict[str, Any], expected: float) -> None:
    assert deployment_weight(deployment) == expected


def test_weighted_shuffle_follows_the_weights() -> None:
    deployments = [dep("a", weight=1), dep("b", weight=3), dep("c", weight=0)]
    policy = WeightedShuffleFallback(random.Random(7))
    counts = Counter(policy.choose(deployments)["model_info"]["id"] for _ in range(4000))
    assert counts["c"] == 0
    assert 0.2 < counts["a"] / 4000 < 0.3
    assert 0.7 < counts["b"] / 4000 < 0.8


def test_weighted_shuffle_is_uniform_when_every_weight_is_zero() -> None:
    deployments = [dep("a", weight=0), dep("b", weight=0)]
    policy = WeightedShuffleFallback(random.Random(1))
    counts = Counter(policy.choose(deployments)["model_info"]["id"] for _ in range(2000))
    assert set(counts) == {"a", "b"}


def test_weighted_shuffle_returns_the_same_object() -> None:
    deployments = [dep("a"), dep("b")]
    picked = WeightedShuffleFallback(random.Random(0)).choose(deployments)
    assert any(picked is d for d in deployments)


def test_make_fallback_policy() -> None:
    assert make_fallback_policy("ordered").name == "ordered"
    assert make_fallback_policy("weighted_shuffle").name == "weighted_shuffle"
    with pytest.raises(ValueError):
        make_fallback_policy("round_robin")
