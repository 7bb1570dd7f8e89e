"""Train a router from traffic: decisions joined with outcomes and feedback (partial labels).

Each joined decision observes one model, the one served, so its row of the label matrix
has one observed cell. Training never reads the others as 0 or 1:

* **MLP / MF**: masked loss. A cell's BCE weight is 0 unless observed, so only the served
  model's output gets a gradient from that row (``torch_head.train_bce``).
* **KNN**: a masked per-model neighbour average (``knn.masked_neighbour_average``) fills
  each model's column from the rows where that model was observed.
* **Inverse propensity**: an observed cell weighs ``1 / propensity``, clipped at
  ``max_weight`` (a few rare explorations must not dominate) and used as a weighted mean,
  so models the old router rarely served count as if they had been served as often as the
  top choice. Without exploration every propensity is 1.0 and the weighting changes
  nothing; the router then learns only about models it already chose (docs/learning.md).

SVM needs a label for every model and is refused here. The bundle carries a strong-share
calibration table measured on the traffic's own embeddings (``trainer.learn_calibration``).

    python -m trainer.learn --events events.jsonl --otlp traces.json \\
        --base-bundle artifacts/bundles/current --encoder artifacts/encoder --router mlp \\
        --out artifacts/bundles
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from decision_service.manifest import CandidateModel
from decision_service.policy import ModelIndex
from trainer.learn_calibration import (
    CALIBRATION_FRACTION,
    calibrate_on_traffic,
    calibration_rows,
    choose_strong_model,
)
from trainer.routers import ExportedRouter, export_with_parity, make_router
from trainer.sources.traffic import TrafficExample, TrafficJoin

PARTIAL_ROUTERS = ("knn", "mlp", "mf")
DEFAULT_MAX_WEIGHT = 20.0
# The bundle's load-time check replays these through the encoder and the router: fixed
# texts, so no user's prompt is written into a bundle trained from traffic.
SAMPLE_PROMPTS = (
    "What is 17 * 23?",
    "Write a short poem about the sea.",
    "Summarise the causes of the First World War in three sentences.",
)


class PartialRouter(Protocol):
    def fit(
        self, embeddings: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None
    ) -> None: ...


@dataclass(frozen=True)
class PartialLabels:
    embeddings: np.ndarray  # float32 [n, dim]
    labels: np.ndarray  # float32 [n, m]: the observed label in its cell, 0 elsewhere
    weights: np.ndarray  # float32 [n, m]: clipped 1/propensity in the observed cell, else 0
    dropped: Counter[str]

    @property
    def observed(self) -> np.ndarray:
        """Examples per model column."""
        return (self.weights > 0).sum(axis=0)

    def subset(self, rows: np.ndarray) -> PartialLabels:
        return PartialLabels(
            self.embeddings[rows], self.labels[rows], self.weights[rows], self.dropped
        )


def partial_labels(
    examples: Sequence[TrafficExample],
    candidates: Sequence[CandidateModel],
    *,
    max_weight: float = DEFAULT_MAX_WEIGHT,
) -> PartialLabels:
    """One row per example whose served model is a column (matched like the service does)."""
    index = ModelIndex(candidates)
    dims = Counter(e.embedding.shape[0] for e in examples)
    dim = dims.most_common(1)[0][0] if dims else 0
    rows, cols, labels, weights = [], [], [], []
    dropped: Counter[str] = Counter()
    for example in examples:
        column = index.column(example.model_name)
        if column is None:
            dropped["model_not_in_bundle"] += 1
            continue
        if example.embedding.shape[0] != dim:
            dropped["embedding_dimension_differs"] += 1
            continue
        rows.append(example.embedding)
        cols.append(column)
        labels.append(example.label)
        weights.append(min(1.0 / example.propensity, max_weight))
    n, m = len(rows), len(candidates)
    y = np.zeros((n, m), np.float32)
    w = np.zeros((n, m), np.float32)
    y[np.arange(n), cols] = labels
    w[np.arange(n), cols] = weights
    x = np.stack(rows).astype(np.float32) if rows else np.zeros((0, dim), np.float32)
    return PartialLabels(x, y, w, dropped)


def fit_partial(
    data: PartialLabels, router_type: str, *, seed: int = 0, **params: object
) -> ExportedRouter:
    """Fit ``router_type`` on partial labels and export it with the parity check."""
    if router_type not in PARTIAL_ROUTERS:
        raise ValueError(
            f"{router_type} needs a label for every model; train one of {PARTIAL_ROUTERS} "
            "from traffic"
        )
    if data.embeddings.shape[0] < 2:
        raise ValueError("fewer than 2 labelled decisions: nothing to train on")
    router = make_router(router_type, seed=seed, **params)
    partial: PartialRouter = router  # type: ignore[assignment]  # the three families accept weights
    partial.fit(data.embeddings, data.labels, data.weights)
    return export_with_parity(router, data.embeddings[: min(64, len(data.embeddings))])


def main(argv: Sequence[str] | None = None) -> int:
    from decision_service.bundle import read_manifest
    from decision_service.encoder import OnnxEncoder
    from trainer.bundle_writer import write_bundle

    parser = argparse.ArgumentParser(prog="python -m trainer.learn", description=__doc__)
    parser.add_argument("--events", type=Path, nargs="*", default=[], help="events JSONL files")
    parser.add_argument("--otlp", type=Path, nargs="*", default=[], help="OTLP JSON files")
    parser.add_argument("--jaeger", help="Jaeger query base URL")
    parser.add_argument("--service", default="routeiq-decision-service")
    parser.add_argument("--hours", type=float, default=24.0, help="Jaeger window, hours back")
    parser.add_argument("--base-bundle", type=Path, required=True, help="its candidates")
    parser.add_argument("--encoder", type=Path, required=True, help="the serving encoder dir")
    parser.add_argument("--router", default="mlp", choices=PARTIAL_ROUTERS)
    parser.add_argument("--max-weight", type=float, default=DEFAULT_MAX_WEIGHT)
    parser.add_argument("--out", type=Path, required=True, help="parent dir of the bundle")
    parser.add_argument("--seed", type=int, default=0, help="fit and calibration-split seed")
    parser.add_argument(
        "--calibration-fraction",
        type=float,
        default=CALIBRATION_FRACTION,
        help="share of the labelled decisions held out of fitting to calibrate the "
        "strong-share table on, when that is >= 100 rows (else every row is used); 0: none",
    )
    args = parser.parse_args(argv)
    if not 0.0 <= args.calibration_fraction < 1.0:
        parser.error(f"--calibration-fraction {args.calibration_fraction} must be in [0, 1)")

    join = TrafficJoin()
    join.add_events_file(args.events)
    join.add_otlp_json(args.otlp)
    if args.jaeger:
        import time

        end_us = int(time.time() * 1e6)
        start_us = end_us - int(args.hours * 3600e6)
        join.add_jaeger(args.jaeger, service=args.service, start_us=start_us, end_us=end_us)
    examples = join.join()
    base = read_manifest(args.base_bundle)
    data = partial_labels(examples, base.candidates, max_weight=args.max_weight)
    report = {
        **join.report.as_dict(),
        "dropped_at_training": dict(data.dropped),
        "rows": int(data.embeddings.shape[0]),
        "observed_per_model": {
            c.model_name: int(v) for c, v in zip(base.candidates, data.observed, strict=True)
        },
    }
    rows = calibration_rows(
        len(data.embeddings), fraction=args.calibration_fraction, seed=args.seed
    )
    try:
        exported = fit_partial(data.subset(rows.fit), args.router, seed=args.seed)
    except ValueError as exc:
        print(json.dumps(report, indent=2))  # the join report says what was missing
        print(f"trainer.learn: not training: {exc}", file=sys.stderr)
        return 2
    strong = choose_strong_model(
        base.candidates, data.labels, data.weights, base.strong_share_calibration
    )
    calibration = calibrate_on_traffic(exported, data.embeddings, rows, base.candidates, strong)
    report["fit_rows"] = len(rows.fit)
    report["strong_share_calibration"] = calibration.report
    print(json.dumps(report, indent=2))
    written = write_bundle(
        args.out,
        exported,
        encoder=OnnxEncoder(args.encoder),
        candidates=base.candidates,
        sample_prompts=SAMPLE_PROMPTS,
        training={"origin": "traffic", "join": report, "router": exported.hyperparameters},
        default_cost_weight=base.default_cost_weight,
        strong_share_calibration=calibration.table,
    )
    # The trainer's layout, so `trainer publish` finds the encoder beside the bundle.
    beside = args.out / "encoder"
    if not beside.exists() and not beside.is_symlink():
        beside.symlink_to(args.encoder.resolve(), target_is_directory=True)
    print(f"wrote {written.directory}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
