"""RouteLLM's routing metrics for a strong/weak pair (arXiv:2406.18665, section 5.1).

A router is swept over its threshold: the prompts are ordered by the router's predicted
advantage of the strong model (``quality_strong - quality_weak``), and the first ``k`` of
them go to the strong model, for every ``k`` from 0 to n. At each point

* strong-call share ``x = k / n``;
* quality ``Q(x)`` = mean realised quality of the chosen models;
* performance gap recovered ``PGR(x) = (Q(x) - Q_weak) / (Q_strong - Q_weak)``, where
  ``Q_weak`` / ``Q_strong`` are the all-weak / all-strong qualities.

``APGR`` is the area under ``PGR(x)`` for x in [0, 1] (trapezoid rule over all n + 1
points; RouteLLM approximates the same integral on a grid). ``CPT(p)`` is the smallest
strong-call share at which ``PGR`` reaches ``p`` (``None`` when it never does).
Baselines: random routing (expected PGR(x) = x, so APGR 0.5, CPT(p) = p) and the oracle
(strong model exactly where it is right and the weak model wrong).
Ties in predicted advantage are broken by prompt order after a stable sort, i.e. not in
the router's favour.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Curve:
    strong_share: np.ndarray  # [n + 1] in [0, 1]
    quality: np.ndarray  # [n + 1]
    pgr: np.ndarray  # [n + 1]


@dataclass(frozen=True)
class RouteLLMFigures:
    apgr: float
    cpt50: float | None  # strong-call share in [0, 1]
    cpt80: float | None
    curve: Curve

    def as_dict(self) -> dict[str, float | None]:
        return {
            "apgr": round(self.apgr, 4),
            "cpt50_pct": None if self.cpt50 is None else round(100 * self.cpt50, 2),
            "cpt80_pct": None if self.cpt80 is None else round(100 * self.cpt80, 2),
        }


def curve_from_order(order: np.ndarray, weak: np.ndarray, strong: np.ndarray) -> Curve:
    """The curve when prompts go to the strong model in ``order`` (first = first routed)."""
    n = len(weak)
    weak = np.asarray(weak, np.float64)
    strong = np.asarray(strong, np.float64)
    gain = (strong - weak)[order]
    quality = weak.mean() + np.concatenate([[0.0], np.cumsum(gain)]) / n
    q_weak, q_strong = weak.mean(), strong.mean()
    if q_strong <= q_weak:
        raise ValueError(
            f"the strong model ({q_strong:.4f}) is not better than the weak one ({q_weak:.4f}) "
            "on these prompts: PGR is undefined"
        )
    pgr = (quality - q_weak) / (q_strong - q_weak)
    return Curve(strong_share=np.arange(n + 1) / n, quality=quality, pgr=pgr)


def _cpt(curve: Curve, target: float) -> float | None:
    reached = np.nonzero(curve.pgr >= target - 1e-12)[0]
    return float(curve.strong_share[reached[0]]) if reached.size else None


def figures(curve: Curve) -> RouteLLMFigures:
    apgr = float(np.trapezoid(curve.pgr, curve.strong_share))
    return RouteLLMFigures(apgr, _cpt(curve, 0.5), _cpt(curve, 0.8), curve)


def router_figures(advantage: np.ndarray, weak: np.ndarray, strong: np.ndarray) -> RouteLLMFigures:
    """Route the largest predicted advantages to the strong model first."""
    order = np.argsort(-np.asarray(advantage, np.float64), kind="stable")
    return figures(curve_from_order(order, weak, strong))


def strong_calls(advantage: np.ndarray, share: float) -> np.ndarray:
    """bool [n]: the prompts a router sends to the strong model at strong-call share ``share``.

    The threshold that sends ``round(share * n)`` prompts to the strong model: the largest
    predicted advantages, ties in prompt order, exactly the point ``k = round(share * n)``
    of the curve ``router_figures`` sweeps.
    """
    advantage = np.asarray(advantage, np.float64)
    n = len(advantage)
    k = round(share * n)
    chosen = np.zeros(n, dtype=bool)
    chosen[np.argsort(-advantage, kind="stable")[:k]] = True
    return chosen


def oracle_figures(weak: np.ndarray, strong: np.ndarray) -> RouteLLMFigures:
    return router_figures(
        np.asarray(strong, np.float64) - np.asarray(weak, np.float64), weak, strong
    )


def random_figures(weak: np.ndarray, strong: np.ndarray) -> RouteLLMFigures:
    """The expectation over random orders: quality is linear in the strong-call share."""
    n = len(weak)
    share = np.arange(n + 1) / n
    q_weak, q_strong = float(np.mean(weak)), float(np.mean(strong))
    curve = Curve(share, q_weak + share * (q_strong - q_weak), share.copy())
    return figures(curve)


@dataclass(frozen=True)
class BootstrapFigures:
    """APGR and CPT(50%) (a share in [0, 1]) of each bootstrap resample; NaN where undefined."""

    apgr: np.ndarray  # [resamples]
    cpt50: np.ndarray  # [resamples]


def bootstrap_figures(
    advantage: np.ndarray,
    weak: np.ndarray,
    strong: np.ndarray,
    *,
    resamples: int = 1000,
    seed: int = 0,
    chunk: int = 100,
) -> BootstrapFigures:
    """``router_figures`` on ``resamples`` resamples of the prompts, drawn with replacement.

    Each resample is routed as ``router_figures`` routes a data set: largest predicted
    advantage first, ties (here also the copies of one prompt) in prompt order; its PGR is
    relative to the resample's own all-weak and all-strong qualities, and is NaN when the
    strong model is not better on the resample.
    """
    advantage = np.asarray(advantage, np.float64)
    weak = np.asarray(weak, np.float64)
    strong = np.asarray(strong, np.float64)
    n = len(advantage)
    order = np.argsort(-advantage, kind="stable")
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    rng = np.random.default_rng(seed)
    apgr, cpt50 = [], []
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        chosen = order[np.sort(rank[rng.integers(0, n, size=(size, n))], axis=1)]
        gap = strong[chosen].mean(axis=1) - weak[chosen].mean(axis=1)
        gained = np.cumsum(strong[chosen] - weak[chosen], axis=1) / n
        pgr = np.concatenate([np.zeros((size, 1)), gained], axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            pgr = np.where(gap[:, None] > 0, pgr / gap[:, None], np.nan)
        apgr.append(np.trapezoid(pgr, dx=1.0 / n, axis=1))
        reached = pgr >= 0.5 - 1e-12
        first = np.argmax(reached, axis=1) / n
        cpt50.append(np.where(reached.any(axis=1), first, np.nan))
    return BootstrapFigures(np.concatenate(apgr), np.concatenate(cpt50))
