"""Static fallback policies: how a deployment is picked when the decision service is not used.

They work on LiteLLM deployment mappings (``{"litellm_params": {...}, "model_info": {...}}``)
but need nothing from LiteLLM.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, TypeVar

from .request import cost_per_million_tokens
from .router_view import is_mapping

Deployment = Mapping[str, Any]
D = TypeVar("D", bound=Deployment)

DEFAULT_WEIGHT = 1.0


class FallbackPolicy(Protocol):
    """Picks one deployment out of a non-empty list."""

    name: str

    def choose(self, deployments: Sequence[D]) -> D: ...


def deployment_weight(deployment: Deployment) -> float:
    """``litellm_params.weight``, else ``model_info.weight``, else 1. A value that is not a
    finite non-negative number counts as the default."""
    for section in ("litellm_params", "model_info"):
        params = deployment.get(section)
        if not is_mapping(params):
            continue
        raw = params.get("weight")
        if raw is None or isinstance(raw, bool):
            continue
        try:
            weight = float(raw)
        except (TypeError, ValueError):
            return DEFAULT_WEIGHT
        return weight if math.isfinite(weight) and weight >= 0 else DEFAULT_WEIGHT
    return DEFAULT_WEIGHT


def _require_some(deployments: Sequence[Deployment]) -> None:
    if not deployments:
        raise ValueError("a fallback policy needs at least one deployment")


class OrderedFallback:
    """The first deployment, in the order the router lists them."""

    name = "ordered"

    def choose(self, deployments: Sequence[D]) -> D:
        _require_some(deployments)
        return deployments[0]


class WeightedShuffleFallback:
    """A random deployment, drawn with probability proportional to its weight. When every
    weight is zero, a uniform draw."""

    name = "weighted_shuffle"

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng if rng is not None else random.Random()

    def choose(self, deployments: Sequence[D]) -> D:
        _require_some(deployments)
        if len(deployments) == 1:
            return deployments[0]
        weights = [deployment_weight(d) for d in deployments]
        if sum(weights) <= 0:
            return self._rng.choice(list(deployments))
        return self._rng.choices(list(deployments), weights=weights, k=1)[0]


class CheapestFallback:
    """The deployment with the lowest price per token (``input_cost_per_token`` and
    ``output_cost_per_token`` averaged, from ``model_info`` else ``litellm_params``).
    Deployments without a price come after every priced one; ties keep the router's order."""

    name = "cheapest"

    def choose(self, deployments: Sequence[D]) -> D:
        _require_some(deployments)
        best = deployments[0]
        best_cost = _cost_key(best)
        for deployment in deployments[1:]:
            cost = _cost_key(deployment)
            if cost < best_cost:
                best, best_cost = deployment, cost
        return best


def _cost_key(deployment: Deployment) -> float:
    cost = cost_per_million_tokens(deployment)
    return math.inf if cost is None else cost


POLICY_NAMES = (OrderedFallback.name, WeightedShuffleFallback.name, CheapestFallback.name)


def make_fallback_policy(name: str, *, rng: random.Random | None = None) -> FallbackPolicy:
    """The policy called ``name`` ("ordered", "weighted_shuffle" or "cheapest")."""
    if name == OrderedFallback.name:
        return OrderedFallback()
    if name == WeightedShuffleFallback.name:
        return WeightedShuffleFallback(rng)
    if name == CheapestFallback.name:
        return CheapestFallback()
    raise ValueError(f"unknown fallback policy {name!r}; expected one of {', '.join(POLICY_NAMES)}")
