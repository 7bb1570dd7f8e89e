"""Budget calibration: which ``cost_weight`` sends a given share of calls to the strong model.

RouteLLM's users state a budget as "at most X % of calls to the strong model" and calibrate
the router's threshold for it on held-out prompts. A RouteIQ bundle's threshold is its
``cost_weight``; this module measures, on the held-out split, the share of prompts the
bundle's own ranking rule (``decision_service.policy.rank``, every bundle candidate offered
at its bundle price, in bundle order) sends to the strong model at each weight, and writes
the table the service looks a requested share up in
(``decision_service.manifest.StrongShareCalibration``).

**Strong model**: the candidate with the best mean quality on the *training* labels, as the
RouteLLM figures define it (``trainer.quality_report.choose_pair``).

**The share is a step function of the weight.** With ``c_j = log2(price_j / cheapest)`` (0
for an unpriced or free candidate) the strong model ``s`` is ranked first on a prompt iff
for every other candidate ``j``::

    (q_s - q_j) - w * (c_s - c_j) > 0        (a tie goes to the earlier candidate)

Each condition bounds ``w`` on one side, so ``s`` wins on one interval of ``w`` per prompt
and the held-out share changes only at the interval ends. The share is evaluated at ``w = 0``,
``w = 1`` and the middle of every step between consecutive interval ends in [0, 1] (the
range ``cost_weight`` may take), never on an end, where a tie would decide. For each share
reached the table keeps the middle of its widest step (the weight a small shift of the
predictions moves least), then thins the shares to at least ``RESOLUTION`` apart. The share
falls as the weight grows when the strong model is the dearest candidate (the usual case);
otherwise it need not be monotone, and the table still maps every share it lists to a
weight that realises it.

**Lookup ("at most")**: the service serves the weight of the largest listed share not above
the request's target, so a target is met from below, to within ``RESOLUTION`` plus one step
of the held-out set (``1 / held-out prompts`` for a router whose predictions do not tie).
A target below the smallest share any weight in [0, 1] reaches gets that smallest share.
"""

from __future__ import annotations

import numpy as np

from decision_service.manifest import StrongShareCalibration, StrongSharePoint

RESOLUTION = 0.005  # listed shares are at least this far apart (<= 201 points)
WEIGHT_MIN, WEIGHT_MAX = 0.0, 1.0  # the cost_weight range a manifest and a request allow
REPORT_TARGETS = (0.1, 0.25, 0.5, 0.8)


def price_penalties(prices: np.ndarray) -> np.ndarray:
    """[m] ``log2(price / cheapest positive price)``; 0 for a free or unpriced candidate."""
    prices = np.asarray(prices, np.float64)
    positive = prices[prices > 0]
    if positive.size == 0:
        return np.zeros_like(prices)
    safe = np.where(prices > 0, prices, positive.min())
    return np.where(prices > 0, np.log2(safe / positive.min()), 0.0)


def strong_model(train_labels: np.ndarray) -> int:
    """The column with the best mean training quality (the first on a tie)."""
    return int(np.argmax(np.asarray(train_labels, np.float64).mean(axis=0)))


def ranked_first(quality: np.ndarray, prices: np.ndarray, cost_weight: float) -> np.ndarray:
    """[n] the column ``policy.rank`` puts first on each row (ties: the earlier column)."""
    scores = np.asarray(quality, np.float64) - cost_weight * price_penalties(prices)[None, :]
    return np.asarray(np.argmax(scores, axis=1))


def realised_share(
    quality: np.ndarray, prices: np.ndarray, strong: int, cost_weight: float
) -> float:
    """Share of rows on which ``strong`` is ranked first at ``cost_weight``."""
    return float(np.mean(ranked_first(quality, prices, cost_weight) == strong))


def strong_intervals(
    quality: np.ndarray, prices: np.ndarray, strong: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the open interval (lo, hi) of weights on which ``strong`` is ranked first.

    An empty interval (the strong model never first) has ``lo >= hi``.
    """
    q = np.asarray(quality, np.float64)
    n, m = q.shape
    penalty = price_penalties(prices)
    lo, hi = np.full(n, -np.inf), np.full(n, np.inf)
    never = np.zeros(n, dtype=bool)
    for j in range(m):
        if j == strong:
            continue
        gap = q[:, strong] - q[:, j]  # strong's lead at weight 0
        slope = penalty[strong] - penalty[j]  # how fast a unit of weight eats it
        if slope > 0:
            hi = np.minimum(hi, gap / slope)
        elif slope < 0:
            lo = np.maximum(lo, gap / slope)
        else:  # same price: the weight cannot change who wins
            never |= gap < 0 if strong < j else gap <= 0
    lo[never], hi[never] = np.inf, -np.inf
    return lo, hi


def share_curve(
    quality: np.ndarray, prices: np.ndarray, strong: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weights in [0, 1], the held-out share each realises, and the width of its step.

    The weights are 0, 1 (width 0) and the middle of every step between interval ends.
    """
    lo, hi = strong_intervals(quality, prices, strong)
    n = len(lo)
    ends = np.concatenate([lo, hi])
    inside = ends[(ends > WEIGHT_MIN) & (ends < WEIGHT_MAX)]
    edges = np.unique(np.concatenate([[WEIGHT_MIN, WEIGHT_MAX], inside]))
    middles = (edges[:-1] + edges[1:]) / 2
    widths = np.diff(edges)
    real = lo < hi
    lo_sorted, hi_sorted = np.sort(lo[real]), np.sort(hi[real])
    # Inside (lo, hi) <=> lo < w and not hi <= w (hi > lo, so hi <= w implies lo < w).
    count = np.searchsorted(lo_sorted, middles, side="left") - np.searchsorted(
        hi_sorted, middles, side="right"
    )
    shares = count / n
    exact = [realised_share(quality, prices, strong, w) for w in (WEIGHT_MIN, WEIGHT_MAX)]
    weights = np.concatenate([[WEIGHT_MIN], middles, [WEIGHT_MAX]])
    return (
        weights,
        np.concatenate([[exact[0]], shares, [exact[1]]]),
        np.concatenate([[0.0], widths, [0.0]]),
    )


def calibrate(
    quality: np.ndarray, prices: np.ndarray, strong: int, strong_name: str
) -> StrongShareCalibration:
    """The calibration table of predicted ``quality`` [n, m] on held-out prompts."""
    quality = np.asarray(quality, np.float64)
    if quality.ndim != 2 or quality.shape[0] == 0:
        raise ValueError("calibration needs predicted quality [n >= 1, m] on held-out prompts")
    weights, shares, widths = share_curve(quality, prices, strong)
    widest: dict[float, tuple[float, float]] = {}  # share -> (step width, weight)
    for weight, share, width in zip(weights, shares, widths, strict=True):
        key = round(float(share), 12)
        if key not in widest or width > widest[key][0]:
            widest[key] = (float(width), float(weight))
    ordered = sorted(widest.items())
    kept = [ordered[0]]
    for share, entry in ordered[1:-1]:
        if share >= kept[-1][0] + RESOLUTION:
            kept.append((share, entry))
    if len(ordered) > 1:
        if ordered[-1][0] < kept[-1][0] + RESOLUTION and len(kept) > 1:
            kept.pop()  # the largest share always stays listed
        kept.append(ordered[-1])
    points = [
        StrongSharePoint(share=round(share, 6), cost_weight=round(weight, 9))
        for share, (_, weight) in kept
    ]
    return StrongShareCalibration(
        strong_model=strong_name, held_out_prompts=len(quality), points=points
    )


def calibration_summary(
    table: StrongShareCalibration,
    quality: np.ndarray,
    prices: np.ndarray,
    strong: int,
    targets: tuple[float, ...] = REPORT_TARGETS,
) -> list[dict[str, float]]:
    """For each target share: the weight the table serves and the share it realises on
    ``quality`` (the calibration rows themselves, or fresh ones to test the table)."""
    summary = []
    for target in targets:
        weight = table.cost_weight_for(target)
        summary.append(
            {
                "target": target,
                "cost_weight": weight,
                "realised_share": round(realised_share(quality, prices, strong, weight), 4),
            }
        )
    return summary
