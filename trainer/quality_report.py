"""Held-out quality figures of a router, as JSON, and the quality/cost curve as a PNG.

Per router on the held-out split:

* ``quality_error``: per candidate, mean absolute error and RMSE of the predicted quality
  against the realised label (for 0/1 labels the squared error is the Brier score);
* ``top_pick_best_rate``: how often the candidate with the highest predicted quality is a
  best candidate for that prompt (realised quality equal to the prompt's maximum);
* ``routellm``: APGR, CPT(50%), CPT(80%) for the pair weak = cheapest candidate, strong =
  the candidate with the best mean *training* quality (see ``trainer.routellm_metrics``),
  beside the random and oracle baselines on the same prompts;
* ``single_models``: every candidate used alone (quality and $ per 1k requests);
* ``curve``: the router's quality/cost frontier: for a strong/weak pair the threshold
  sweep, otherwise a sweep of the willingness-to-pay weight of the ranking utility.

Tables and plots name the data set they were given (``trainer.sources.formats.dataset_name``:
``--name``, else the data file's stem or directory's name). Published figures
(``PUBLISHED_REFERENCES``) are keyed by the benchmark the reader identified the files as
(``RoutingData.benchmark``, e.g. ``mmlu`` for RouteLLM's ``mmlu_<subject>.csv`` files) and
shown only for that benchmark: a name alone never claims a reference, nor do row counts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trainer.evaluate import utility
from trainer.routellm_metrics import (
    RouteLLMFigures,
    oracle_figures,
    random_figures,
    router_figures,
)


@dataclass(frozen=True)
class PublishedReference:
    label: str  # the table row's name
    apgr: float
    cpt50_pct: float
    cpt80_pct: float
    source: str

    def as_dict(self) -> dict[str, object]:
        return {
            "label": self.label,
            "apgr": self.apgr,
            "cpt50_pct": self.cpt50_pct,
            "cpt80_pct": self.cpt80_pct,
            "source": self.source,
        }


PUBLISHED_REFERENCES: dict[str, PublishedReference] = {
    "mmlu": PublishedReference(
        label="RouteLLM best published (MMLU)",
        apgr=0.603,
        cpt50_pct=35.4,
        cpt80_pct=70.3,
        source="arXiv:2406.18665, MMLU (all 57 subjects less contaminated prompts); best "
        "router: matrix factorisation trained on Arena + golden data",
    ),
}


def published_reference(benchmark: str | None) -> PublishedReference | None:
    return None if benchmark is None else PUBLISHED_REFERENCES.get(benchmark)


def plot_title(dataset: str, held_out: int, seed: int) -> str:
    return f"{dataset}: {held_out} held-out prompts (split seed {seed})"


WEIGHT_SWEEP = tuple(float(w) for w in np.concatenate([[0.0], np.geomspace(1e-3, 2.0, 60)]))
CURVE_POINTS = 101


@dataclass(frozen=True)
class Pair:
    weak: int
    strong: int


def choose_pair(prices: np.ndarray, train_labels: np.ndarray) -> Pair | None:
    """weak = cheapest; strong = best mean training quality; None when they coincide."""
    weak = int(np.argmin(prices))
    strong = int(np.argmax(np.asarray(train_labels).mean(axis=0)))
    return None if weak == strong else Pair(weak=weak, strong=strong)


def _sample(x: np.ndarray, y: np.ndarray, points: int = CURVE_POINTS) -> list[list[float]]:
    index = np.unique(np.linspace(0, len(x) - 1, points).round().astype(int))
    return [[round(float(x[i]), 6), round(float(y[i]), 6)] for i in index]


def router_curve(
    predicted: np.ndarray,
    labels: np.ndarray,
    costs: np.ndarray,
    prices: np.ndarray,
    pair: Pair | None,
) -> list[list[float]]:
    """[[dollars per 1k requests, quality], ...] from cheapest to dearest."""
    if pair is not None:
        w, s = pair.weak, pair.strong
        fig = router_figures(predicted[:, s] - predicted[:, w], labels[:, w], labels[:, s])
        order = np.argsort(-(predicted[:, s] - predicted[:, w]), kind="stable")
        extra = np.concatenate([[0.0], np.cumsum((costs[:, s] - costs[:, w])[order])])
        dollars = (costs[:, w].sum() + extra) / len(labels) * 1000
        return _sample(dollars, fig.curve.quality)
    points = []
    rows = np.arange(len(labels))
    for weight in WEIGHT_SWEEP:
        choice = np.argmax(utility(predicted, prices, weight), axis=1)
        points.append(
            (float(costs[rows, choice].mean() * 1000), float(labels[rows, choice].mean()))
        )
    points.sort()
    return [[round(c, 6), round(q, 6)] for c, q in points]


def quality_report(
    predicted: np.ndarray,
    labels: np.ndarray,
    costs: np.ndarray,
    prices: np.ndarray,
    train_labels: np.ndarray,
    names: Sequence[str],
) -> dict[str, object]:
    predicted = np.asarray(predicted, np.float64)
    labels = np.asarray(labels, np.float64)
    error = predicted - labels
    best = labels >= labels.max(axis=1, keepdims=True) - 1e-9
    top = np.argmax(predicted, axis=1)
    rows = np.arange(len(labels))
    pair = choose_pair(np.asarray(prices), train_labels)
    report: dict[str, object] = {
        "held_out_prompts": len(labels),
        "quality_error": {
            name: {
                "mae": round(float(np.abs(error[:, j]).mean()), 4),
                "rmse": round(float(np.sqrt((error[:, j] ** 2).mean())), 4),
            }
            for j, name in enumerate(names)
        },
        "quality_mae": round(float(np.abs(error).mean()), 4),
        "top_pick_best_rate": round(float(best[rows, top].mean()), 4),
        "top_pick_best_rate_random": round(float(best.mean()), 4),
        "single_models": {
            name: {
                "quality": round(float(labels[:, j].mean()), 4),
                "dollars_per_1k_requests": round(float(costs[:, j].mean() * 1000), 4),
            }
            for j, name in enumerate(names)
        },
        "curve": router_curve(predicted, labels, costs, np.asarray(prices), pair),
    }
    if pair is not None:
        weak, strong = labels[:, pair.weak], labels[:, pair.strong]
        advantage = predicted[:, pair.strong] - predicted[:, pair.weak]
        figs: dict[str, RouteLLMFigures] = {
            "router": router_figures(advantage, weak, strong),
            "random": random_figures(weak, strong),
            "oracle": oracle_figures(weak, strong),
        }
        report["routellm"] = {
            "weak": names[pair.weak],
            "strong": names[pair.strong],
            **{k: v.as_dict() for k, v in figs.items()},
        }
    return report


def plot_curves(
    path: Path,
    curves: Mapping[str, Sequence[Sequence[float]]],
    singles: Mapping[str, tuple[float, float]],
    *,
    title: str,
    oracle: Sequence[Sequence[float]] | None = None,
) -> Path:
    """Quality against $ per 1k requests: one line per router, one dot per single model."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    for name, points in curves.items():
        xy = np.asarray(points, np.float64)
        ax.plot(xy[:, 0], xy[:, 1], label=name, linewidth=1.6)
    if oracle is not None:
        xy = np.asarray(oracle, np.float64)
        ax.plot(xy[:, 0], xy[:, 1], label="oracle", linestyle=":", color="grey")
    single_xy = np.asarray(list(singles.values()), np.float64)
    if len(single_xy) == 2:
        ax.plot(single_xy[:, 0], single_xy[:, 1], "--", color="black", label="random", lw=1)
    for name, (cost, quality) in singles.items():
        ax.scatter([cost], [quality], color="black", zorder=3)
        ax.annotate(
            name.rsplit("/", 1)[-1],
            (cost, quality),
            fontsize=7,
            xytext=(4, -10),
            textcoords="offset points",
        )
    ax.set_xlabel("$ per 1k requests")
    ax.set_ylabel("mean realised quality")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return save_figure(fig, plt, path)


def save_figure(fig: Any, plt: Any, path: Path) -> Path:
    """Lay out ``fig``, write it to ``path`` (creating its folder) and close it."""
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def oracle_curve(labels: np.ndarray, costs: np.ndarray, pair: Pair) -> list[list[float]]:
    """The oracle's frontier: the prompts where only the strong model is right go first."""
    scores = np.zeros(labels.shape, np.float64)
    scores[:, pair.strong] = labels[:, pair.strong] - labels[:, pair.weak]
    return router_curve(scores, labels, costs, np.zeros(labels.shape[1]), pair)
