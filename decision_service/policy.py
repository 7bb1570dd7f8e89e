"""Ranking policy: turn predicted quality per model into an ordering of the request's candidates.

Utility of a candidate (higher is better)::

    score = predicted_quality - cost_weight * log2(cost / cheapest_cost)

where ``cheapest_cost`` is the lowest known price among the request's candidates. So
``cost_weight`` is the quality (0..1) a candidate must gain to be worth each doubling of
price; 0 ranks by quality alone. A candidate's price is the request's
``cost_per_million_tokens`` when given, else the bundle's price for that model; a
candidate with no known price pays no penalty.

Candidates whose model the router does not know are never dropped: they are ranked after
every known candidate, in request order, with ``known_to_router=False`` and score 0.
Model names match exactly, else by the part after the last ``/`` (``openai/gpt-4o`` is
``gpt-4o``), else case-insensitively.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .domain import CandidateIn, RankedCandidate
from .manifest import CandidateModel


class ModelIndex:
    """Finds the router output column for a candidate's model name."""

    def __init__(self, models: Sequence[CandidateModel]) -> None:
        self.models = list(models)
        self._exact = {m.model_name: i for i, m in enumerate(models)}
        self._base: dict[str, int] = {}
        self._folded: dict[str, int] = {}
        for i, m in enumerate(models):
            self._base.setdefault(_base_name(m.model_name), i)
            self._folded.setdefault(_base_name(m.model_name).lower(), i)

    def column(self, model_name: str) -> int | None:
        if model_name in self._exact:
            return self._exact[model_name]
        base = _base_name(model_name)
        if base in self._base:
            return self._base[base]
        return self._folded.get(base.lower())

    def price(self, candidate: CandidateIn, column: int | None = None) -> float | None:
        """The request's price for ``candidate``, else this index's price for its model."""
        if candidate.cost_per_million_tokens is not None:
            return candidate.cost_per_million_tokens
        if column is None:
            column = self.column(candidate.model_name)
        return self.models[column].cost_per_million_tokens if column is not None else None


def rank(
    candidates: Sequence[CandidateIn],
    quality: np.ndarray,
    index: ModelIndex,
    cost_weight: float,
) -> list[RankedCandidate]:
    """Rank ``candidates`` best first given ``quality`` (one value per bundle model)."""
    columns = [index.column(c.model_name) for c in candidates]
    costs = [index.price(c, col) for c, col in zip(candidates, columns, strict=True)]
    positive = [cost for cost in costs if cost is not None and cost > 0]
    cheapest = min(positive) if positive else None

    known: list[tuple[float, int, RankedCandidate]] = []
    unknown: list[RankedCandidate] = []
    for order, (cand, col, cost) in enumerate(zip(candidates, columns, costs, strict=True)):
        if col is None:
            unknown.append(RankedCandidate(cand.id, cand.model_name, 0.0, 0.0, cost or 0.0, False))
            continue
        q = float(quality[col])
        penalty = 0.0
        if cheapest is not None and cost is not None and cost > 0:
            penalty = cost_weight * math.log2(cost / cheapest)
        score = q - penalty
        known.append(
            (-score, order, RankedCandidate(cand.id, cand.model_name, score, q, cost or 0.0, True))
        )
    known.sort(key=lambda item: (item[0], item[1]))
    return [r for _, _, r in known] + unknown


def selection_reason(ranked: Sequence[RankedCandidate]) -> str:
    if len(ranked) == 1:
        return "only_candidate"
    if not ranked[0].known_to_router:
        return "no_known_candidates"
    return "highest_score"


@dataclass(frozen=True)
class Exploration:
    """The ranking to serve (chosen candidate first) and the probability it was chosen."""

    ranked: list[RankedCandidate]
    propensity: float
    explored: bool


def explore(ranked: list[RankedCandidate], rate: float, decision_id: str) -> Exploration:
    """Epsilon-greedy over the router-known candidates, reproducible from ``decision_id``.

    With probability ``rate`` the served candidate is drawn uniformly from the ``n`` known
    candidates (the best-scored one included), else the best-scored one is served; so it is
    chosen with probability ``1 - rate + rate/n`` and each other known one with ``rate/n``.
    A drawn candidate moves to the front; the rest keep their order. Unknown models are
    never explored: the router has no column to learn them into.
    """
    if rate <= 0.0:  # the default: no scan of the candidates on the hot path
        return Exploration(ranked, 1.0, False)
    known = sum(1 for r in ranked if r.known_to_router)
    if known < 2:
        return Exploration(ranked, 1.0, False)
    # Two independent uniforms from the id's hash: the same id always draws the same way,
    # so a logged decision can be replayed, and no shared RNG state is touched by threads.
    digest = hashlib.sha256(decision_id.encode("utf-8")).digest()
    coin = int.from_bytes(digest[:8], "big") / 2.0**64
    pick = int.from_bytes(digest[8:16], "big") % known
    if coin >= rate or pick == 0:
        return Exploration(ranked, 1.0 - rate + rate / known, False)
    served = [ranked[pick], *ranked[:pick], *ranked[pick + 1 :]]
    return Exploration(served, rate / known, True)


def _base_name(model_name: str) -> str:
    return model_name.rsplit("/", 1)[-1]
