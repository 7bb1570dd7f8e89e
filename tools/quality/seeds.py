"""Several split seeds into one figure per family: the mean and a bootstrap 95% interval.

For each split seed the router is trained on one half and evaluated on the other; its
held-out prompts are resampled with replacement (``trainer.routellm_metrics.
bootstrap_figures``, independently per seed). Resample ``b`` of the seed mean is the mean
over seeds of each seed's resample ``b``; the interval is the 2.5th and 97.5th percentiles
of those seed means. It therefore covers the sampling of held-out prompts around the seeds'
mean, not how far another set of split seeds could move it (the per-seed figures show that).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from trainer.routellm_metrics import BootstrapFigures, RouteLLMFigures

INTERVAL = (2.5, 97.5)


@dataclass(frozen=True)
class SeedFigures:
    seed: int
    figures: RouteLLMFigures  # on the seed's whole held-out half
    bootstrap: BootstrapFigures


def _pct(share: float | None) -> float | None:
    return None if share is None else round(100.0 * share, 2)


def _mean_pct(shares: Sequence[float | None]) -> float | None:
    known = [s for s in shares if s is not None]
    return (
        None if len(known) < len(shares) or not known else round(100.0 * float(np.mean(known)), 2)
    )


def _interval(replicates: np.ndarray, scale: float, digits: int) -> list[float]:
    low, high = np.nanpercentile(replicates, INTERVAL)
    return [round(float(low) * scale, digits), round(float(high) * scale, digits)]


def summarise(per_seed: Sequence[SeedFigures]) -> dict[str, object]:
    """Mean over seeds of APGR, CPT(50%), CPT(80%); 95% intervals of the first two."""
    if not per_seed:
        raise ValueError("no seed to summarise")
    sizes = {len(s.bootstrap.apgr) for s in per_seed}
    if len(sizes) != 1:
        raise ValueError(f"every seed needs as many bootstrap resamples; got {sorted(sizes)}")
    with warnings.catch_warnings():  # a resample undefined on every seed stays NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        apgr_means = np.nanmean(np.stack([s.bootstrap.apgr for s in per_seed]), axis=0)
        cpt50_means = np.nanmean(np.stack([s.bootstrap.cpt50 for s in per_seed]), axis=0)
    return {
        "seeds": [s.seed for s in per_seed],
        "apgr": round(float(np.mean([s.figures.apgr for s in per_seed])), 4),
        "apgr_ci95": _interval(apgr_means, 1.0, 4),
        "cpt50_pct": _mean_pct([s.figures.cpt50 for s in per_seed]),
        "cpt50_pct_ci95": _interval(cpt50_means, 100.0, 2),
        "cpt80_pct": _mean_pct([s.figures.cpt80 for s in per_seed]),
        "per_seed": {
            str(s.seed): {
                "apgr": round(s.figures.apgr, 4),
                "cpt50_pct": _pct(s.figures.cpt50),
                "cpt80_pct": _pct(s.figures.cpt80),
            }
            for s in per_seed
        },
        "bootstrap": {
            "resamples": int(sizes.pop()),
            "scheme": "held-out prompts resampled per seed; interval of the seed mean",
        },
    }


def mean_curve(curves: Sequence[tuple[np.ndarray, np.ndarray]], points: int = 101) -> np.ndarray:
    """[[share, mean PGR], ...] on ``points`` evenly spaced strong-call shares."""
    grid = np.linspace(0.0, 1.0, points)
    pgr = np.mean([np.interp(grid, share, value) for share, value in curves], axis=0)
    return np.stack([grid, pgr], axis=1)
