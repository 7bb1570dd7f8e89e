"""bench-quality's pictures: the PGR / strong-call-share curve and the per-model share chart.

* ``pgr_curve.png``: every family's PGR against the share of calls sent to the strong model
  (mean over the split seeds), random and oracle, the target point (PGR 0.5 at 25% strong
  calls, i.e. CPT(50%) <= 25%) and, only beside the data set it was published for, the
  published router's CPT(50%) and CPT(80%) points.
* ``model_share.png``: for one router, the share of held-out prompts each candidate gets as
  the cost weight of the serving rule (``quality - w * log2(price / cheapest)``) grows from
  0 (quality only) to 2, with the bundle's default weight marked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from trainer.evaluate import DEFAULT_COST_WEIGHT, utility
from trainer.quality_report import PublishedReference, save_figure

TARGET_SHARE, TARGET_PGR = 0.25, 0.5
SHARE_WEIGHTS = tuple(float(w) for w in np.concatenate([[0.0], np.geomspace(1e-3, 2.0, 80)]))


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt


def plot_pgr(
    path: Path,
    curves: Mapping[str, np.ndarray],
    *,
    oracle: np.ndarray | None,
    reference: PublishedReference | None,
    title: str,
) -> Path:
    """``curves``: family -> [[strong-call share, PGR], ...]."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.8), dpi=110)
    for name, xy in curves.items():
        ax.plot(100 * xy[:, 0], xy[:, 1], label=name, linewidth=1.6)
    ax.plot([0, 100], [0, 1], "--", color="black", lw=1, label="random")
    if oracle is not None:
        ax.plot(100 * oracle[:, 0], oracle[:, 1], ":", color="grey", label="oracle")
    ax.scatter(
        [100 * TARGET_SHARE], [TARGET_PGR], marker="*", s=160, color="red", zorder=4,
        label="target: PGR 0.5 at 25% strong calls",
    )  # fmt: skip
    if reference is not None:
        ax.scatter(
            [reference.cpt50_pct, reference.cpt80_pct], [0.5, 0.8], marker="s", s=40,
            color="purple", zorder=4, label=reference.label,
        )  # fmt: skip
    ax.axhline(TARGET_PGR, color="red", lw=0.6, alpha=0.4)
    ax.set_xlim(0, 100)
    ax.set_ylim(-0.05, 1.3 if oracle is not None and oracle[:, 1].max() > 1.05 else 1.05)
    ax.set_xlabel("calls sent to the strong model (%)")
    ax.set_ylabel("PGR (share of the weak-to-strong quality gap recovered)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    return save_figure(fig, plt, path)


def model_shares(
    predicted: np.ndarray, prices: np.ndarray, weights: Sequence[float] = SHARE_WEIGHTS
) -> np.ndarray:
    """[len(weights), m]: the share of prompts whose top pick is each model, per cost weight."""
    m = predicted.shape[1]
    shares = []
    for weight in weights:
        choice = np.argmax(utility(predicted, prices, weight), axis=1)
        shares.append(np.bincount(choice, minlength=m) / len(choice))
    return np.asarray(shares)


def plot_model_share(
    path: Path,
    predicted: np.ndarray,
    prices: np.ndarray,
    names: Sequence[str],
    *,
    title: str,
) -> Path:
    plt = _pyplot()
    shares = model_shares(predicted, prices)
    weights = np.asarray(SHARE_WEIGHTS)
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    ax.stackplot(weights, 100 * shares.T, labels=[n.rsplit("/", 1)[-1] for n in names])
    ax.axvline(DEFAULT_COST_WEIGHT, color="black", lw=1, ls="--")
    ax.annotate(
        f"default cost weight {DEFAULT_COST_WEIGHT:g}",
        (DEFAULT_COST_WEIGHT, 102),
        fontsize=7,
        ha="center",
        annotation_clip=False,
    )
    ax.set_xscale("symlog", linthresh=1e-3)
    ax.set_xlim(0, weights[-1])
    ax.set_ylim(0, 100)
    ax.set_xlabel("cost weight w in quality - w * log2(price / cheapest)  (0 = quality only)")
    ax.set_ylabel("share of held-out prompts (%)")
    ax.set_title(title, fontsize=9, pad=14)
    ax.legend(fontsize=8, loc="upper right")
    return save_figure(fig, plt, path)
