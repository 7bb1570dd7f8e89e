"""Held-out evaluation of a router against random, single-best and oracle choices.

Ranking rule (the one the bundle's ``default_cost_weight`` is for):

    utility_j = quality_j - cost_weight * log2(price_j / cheapest price)

``price`` is the candidate's dollars per million tokens (floored at ``PRICE_FLOOR`` so a
free model does not make the ratio infinite). With the default weight 0.05 a model ten
times the price of the cheapest must be predicted ~0.17 better to be ranked above it;
with weight 0 the ranking is by predicted quality alone.

Policies, each choosing one candidate per held-out prompt:

* router: argmax utility of the router's predicted quality;
* random: uniform over candidates (reported as the exact expectation);
* single best: the one candidate with the best mean utility on the *training* labels;
* oracle: argmax utility of the realised labels, the cheaper candidate on ties.

Metrics: mean realised quality of the chosen model, mean dollars per 1000 requests (the
data's per-call cost), how often the choice is a best candidate (realised utility equal
to the prompt's maximum), and mean realised utility.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_COST_WEIGHT = 0.05
PRICE_FLOOR = 1e-3


def utility(quality: np.ndarray, prices: np.ndarray, cost_weight: float) -> np.ndarray:
    """[n, m] utility of each candidate; ``prices`` are dollars per million tokens, shape [m]."""
    floored = np.maximum(np.asarray(prices, np.float64), PRICE_FLOOR)
    penalty = cost_weight * np.log2(floored / floored.min())
    return np.asarray(quality, np.float64) - penalty[None, :]


@dataclass(frozen=True)
class PolicyResult:
    policy: str
    cost_weight: float
    quality: float
    dollars_per_1k: float
    best_pick_rate: float
    utility: float

    def as_dict(self) -> dict[str, float | str]:
        return {
            "policy": self.policy,
            "cost_weight": self.cost_weight,
            "quality": round(self.quality, 4),
            "dollars_per_1k_requests": round(self.dollars_per_1k, 4),
            "best_pick_rate": round(self.best_pick_rate, 4),
            "utility": round(self.utility, 4),
        }


def _cheapest_argmax(values: np.ndarray, prices: np.ndarray) -> np.ndarray:
    """Row-wise argmax; ties (within 1e-9) go to the cheaper candidate."""
    best = values.max(axis=1, keepdims=True)
    tied = values >= best - 1e-9
    masked_prices = np.where(tied, prices[None, :], np.inf)
    return np.asarray(masked_prices.argmin(axis=1))


def _score(
    name: str,
    weight: float,
    choice_probs: np.ndarray,  # [n, m] probability of choosing each candidate
    labels: np.ndarray,
    costs: np.ndarray,
    realised: np.ndarray,
) -> PolicyResult:
    is_best = realised >= realised.max(axis=1, keepdims=True) - 1e-9
    return PolicyResult(
        policy=name,
        cost_weight=weight,
        quality=float((choice_probs * labels).sum(axis=1).mean()),
        dollars_per_1k=float((choice_probs * costs).sum(axis=1).mean() * 1000),
        best_pick_rate=float((choice_probs * is_best).sum(axis=1).mean()),
        utility=float((choice_probs * realised).sum(axis=1).mean()),
    )


def evaluate(
    predicted: np.ndarray,
    labels: np.ndarray,
    costs: np.ndarray,
    prices: np.ndarray,
    train_labels: np.ndarray,
    *,
    candidate_names: list[str] | None = None,
    router_name: str = "router",
    cost_weights: tuple[float, ...] = (DEFAULT_COST_WEIGHT, 0.0),
) -> list[PolicyResult]:
    """Every policy at every cost weight on the held-out rows (``labels``, ``costs`` [n, m])."""
    n, m = labels.shape
    if predicted.shape != (n, m) or costs.shape != (n, m) or prices.shape != (m,):
        raise ValueError("predicted, labels, costs must be [n, m] and prices [m]")
    prices = np.asarray(prices, np.float64)
    eye = np.eye(m)
    results = []
    for weight in cost_weights:
        realised = utility(labels, prices, weight)
        single = int(np.argmax(utility(train_labels, prices, weight).mean(axis=0)))
        policies = {
            router_name: eye[np.argmax(utility(predicted, prices, weight), axis=1)],
            "random": np.full((n, m), 1.0 / m),
            "single best": np.tile(eye[single], (n, 1)),
            "oracle": eye[_cheapest_argmax(realised, prices)],
        }
        for name, probs in policies.items():
            label = name
            if name == "single best":
                label = f"{name} ({candidate_names[single] if candidate_names else single})"
            results.append(_score(label, weight, probs, labels, costs, realised))
    return results


def format_table(results: list[PolicyResult], *, title: str = "") -> str:
    header = (
        f"{'policy':<32} {'w':>5} {'quality':>8} {'$/1k req':>9} {'best-pick':>9} {'utility':>8}"
    )
    lines = [title] if title else []
    lines += [header, "-" * len(header)]
    previous = None
    for r in results:
        if previous is not None and r.cost_weight != previous:
            lines.append("")
        previous = r.cost_weight
        lines.append(
            f"{r.policy:<32} {r.cost_weight:>5.2f} {r.quality:>8.3f} {r.dollars_per_1k:>9.3f} "
            f"{r.best_pick_rate:>9.3f} {r.utility:>8.3f}"
        )
    return "\n".join(lines)


def find(results: list[PolicyResult], policy_prefix: str, cost_weight: float) -> PolicyResult:
    for r in results:
        if r.policy.startswith(policy_prefix) and r.cost_weight == cost_weight:
            return r
    raise KeyError(f"no result for {policy_prefix!r} at cost weight {cost_weight}")
