"""Strong-share calibration for a router trained from traffic (``trainer.learn``).

A service with ``ROUTEIQ_STRONG_SHARE`` refuses a bundle without a calibration table, so a
bundle learned from traffic carries one, built like ``trainer train``'s
(``trainer.calibration.calibrate``) but on the traffic itself:

* **Rows**: the share of calls sent to the strong model is a property of the distribution of
  requests, and the decisions' embeddings are a sample of exactly that distribution. Each
  decision counts once (no inverse-propensity weight: the share is per request, whichever
  model served it). When there are enough decisions a seeded ``fraction`` of them (at least
  ``MIN_HELD_OUT_ROWS``) is held out of fitting and calibrated on, so the table measures
  predictions on prompts the router did not fit; with fewer the router is calibrated on the
  rows it was fitted on, which the report and the manifest say (``also_trained_on``).
* **Predictions**: the exported graph's (``ExportedRouter.predict``, what serving computes),
  ranked with every bundle candidate at its bundle price, as ``trainer train`` does.
* **Strong model**: the base bundle's calibration ``strong_model`` when it has a table and
  that model is still a candidate, so a fleet's "share of calls to X" keeps meaning the same
  X across retrains. Otherwise the candidate with the highest weighted mean observed label
  (the inverse-propensity weights of training, so it estimates the model's mean quality
  over the traffic, not over the prompts the old router happened to send it) among those
  observed at least ``MIN_OBSERVATIONS`` times; a model seen on fewer decisions cannot be
  called the best. With no such candidate no table is written and the report says why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from decision_service.manifest import CandidateModel, StrongShareCalibration
from trainer.calibration import calibrate, calibration_summary
from trainer.data import candidate_prices
from trainer.routers import ExportedRouter

CALIBRATION_FRACTION = 0.2  # of the labelled decisions, held out of fitting
# Below this many held-out rows a share is measured in steps of > 1 % with a sampling error
# of ~5 points at 50 %: calibrating on every (fitted) row is then the better estimate.
MIN_HELD_OUT_ROWS = 100
MIN_OBSERVATIONS = 10  # decisions a model must have served to be chosen as the strong one


@dataclass(frozen=True)
class CalibrationRows:
    fit: np.ndarray  # row indices the router is fitted on, ascending
    calibrate: np.ndarray  # row indices the table is calibrated on, ascending
    held_out: bool  # True when no calibration row was fitted on


def calibration_rows(n: int, *, fraction: float, seed: int) -> CalibrationRows:
    """Hold a seeded ``fraction`` of ``n`` rows out for calibration when that is at least
    ``MIN_HELD_OUT_ROWS`` and leaves 2 to fit; else fit and calibrate on every row."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"calibration fraction {fraction} must be in [0, 1)")
    size = round(n * fraction)
    if size < MIN_HELD_OUT_ROWS or n - size < 2:
        every = np.arange(n)
        return CalibrationRows(fit=every, calibrate=every, held_out=False)
    order = np.random.default_rng(seed).permutation(n)
    return CalibrationRows(
        fit=np.sort(order[size:]), calibrate=np.sort(order[:size]), held_out=True
    )


@dataclass(frozen=True)
class StrongChoice:
    column: int | None  # None: no candidate qualifies
    rule: str  # how it was chosen, or why none was


def choose_strong_model(
    candidates: Sequence[CandidateModel],
    labels: np.ndarray,
    weights: np.ndarray,
    base_table: StrongShareCalibration | None,
) -> StrongChoice:
    """The base table's strong model if still a candidate, else the best observed one.

    ``labels`` and ``weights`` are the partial labels [n, m] (a weight of 0 = unobserved).
    """
    names = [c.model_name for c in candidates]
    note = ""
    if base_table is not None:
        if base_table.strong_model in names:
            return StrongChoice(
                names.index(base_table.strong_model), "the base bundle's calibration strong_model"
            )
        note = f"the base bundle's strong_model {base_table.strong_model!r} is not a candidate; "
    observed = (weights > 0).sum(axis=0)
    total = weights.sum(axis=0, dtype=np.float64)
    means = np.divide(
        (weights * labels).sum(axis=0, dtype=np.float64),
        total,
        out=np.zeros(len(names)),
        where=total > 0,
    )
    usable = observed >= MIN_OBSERVATIONS
    if not usable.any():
        seen = ", ".join(f"{n}: {int(o)}" for n, o in zip(names, observed, strict=True))
        return StrongChoice(
            None,
            f"{note}no candidate was observed on at least {MIN_OBSERVATIONS} decisions "
            f"({seen}); serve more traffic or raise exploration_rate",
        )
    column = int(np.argmax(np.where(usable, means, -np.inf)))  # first on a tie
    return StrongChoice(
        column,
        f"{note}the highest weighted mean observed label ({means[column]:.3f} over "
        f"{int(observed[column])} decisions) among candidates observed at least "
        f"{MIN_OBSERVATIONS} times",
    )


@dataclass(frozen=True)
class TrafficCalibration:
    table: StrongShareCalibration | None
    report: dict[str, object]  # printed by trainer.learn and kept in the manifest's training


def calibrate_on_traffic(
    exported: ExportedRouter,
    embeddings: np.ndarray,
    rows: CalibrationRows,
    candidates: Sequence[CandidateModel],
    strong: StrongChoice,
) -> TrafficCalibration:
    """The table of ``exported``'s predictions on ``embeddings[rows.calibrate]``, or none."""
    if strong.column is None:
        return TrafficCalibration(
            None,
            {
                "written": False,
                "reason": f"no strong model: {strong.rule}. The bundle has no "
                "strong_share_calibration: a service with ROUTEIQ_STRONG_SHARE refuses it "
                "and a request's strong_share gets FAILED_PRECONDITION",
            },
        )
    predicted = exported.predict(embeddings[rows.calibrate])  # what serving computes
    prices = candidate_prices(candidates)
    name = candidates[strong.column].model_name
    table = calibrate(predicted, prices, strong.column, name)
    return TrafficCalibration(
        table,
        {
            "written": True,
            "strong_model": name,
            "strong_model_rule": strong.rule,
            "rows": len(rows.calibrate),
            "also_trained_on": not rows.held_out,
            "points": len(table.points),
            "on_calibration_rows": calibration_summary(table, predicted, prices, strong.column),
        },
    )
