"""``python -m trainer``: export the encoder, make data, train routers, build everything.

    python -m trainer encoder --out artifacts/encoder
    python -m trainer synth   --out artifacts/data [-n 1800] [--seed 7]
    python -m trainer train   --router knn --data artifacts/data --encoder artifacts/encoder \\
                              --out artifacts [--seed 7] [--k 20 | --epochs 40]
    python -m trainer build   --out artifacts [-n 1800] [--seed 7]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from trainer.routers import ROUTER_TYPES


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m trainer", description=__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    enc = sub.add_parser("encoder", help="export all-MiniLM-L6-v2 to an ONNX encoder directory")
    enc.add_argument("--out", type=Path, required=True)
    enc.add_argument("--force", action="store_true", help="re-export even if DIR already validates")

    syn = sub.add_parser("synth", help="write a synthetic routing data set (LLMRouter format)")
    syn.add_argument("--out", type=Path, required=True)
    syn.add_argument("-n", type=int, default=1800, help="number of prompts (default 1800)")
    syn.add_argument("--seed", type=int, default=7)

    tr = sub.add_parser("train", help="train one router, evaluate it, write a bundle")
    tr.add_argument("--router", choices=ROUTER_TYPES, required=True)
    tr.add_argument("--data", type=Path, required=True, help="routing_data.jsonl + llm_data.json")
    tr.add_argument("--encoder", type=Path, required=True, help="encoder directory")
    tr.add_argument("--out", type=Path, required=True, help="parent of the versioned bundle")
    tr.add_argument("--seed", type=int, default=7, help="split and training seed")
    tr.add_argument("--test-fraction", type=float, default=0.2)
    tr.add_argument("--cost-weight", type=float, default=None, help="bundle default (0.05)")
    tr.add_argument("--k", type=int, default=None, help="knn: neighbours")
    tr.add_argument("--epochs", type=int, default=None, help="mlp: training epochs")
    tr.add_argument("--hidden", type=int, nargs="+", default=None, help="mlp: hidden widths")

    bd = sub.add_parser("build", help="encoder + synthetic data + knn and mlp bundles")
    bd.add_argument("--out", type=Path, required=True, help="artifacts directory")
    bd.add_argument("-n", type=int, default=1800, help="number of prompts (default 1800)")
    bd.add_argument("--seed", type=int, default=7)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here may download weights
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

    from decision_service.encoder import OnnxEncoder
    from trainer import pipeline
    from trainer.encoder_export import encoder_is_valid, export_encoder
    from trainer.evaluate import DEFAULT_COST_WEIGHT

    if args.command == "encoder":
        if not args.force and encoder_is_valid(args.out):
            print(f"encoder at {args.out} already validates; use --force to re-export")
            return 0
        exported = export_encoder(args.out)
        print(
            f"encoder written to {exported.directory} (parity {exported.parity_max_abs_diff:.2e})"
        )
        return 0

    if args.command == "synth":
        out = pipeline.write_synthetic(args.out, n=args.n, seed=args.seed)
        print(f"synthetic routing data written to {out}")
        return 0

    if args.command == "train":
        params: dict[str, object] = {}
        if args.router == "knn" and args.k is not None:
            params["k"] = args.k
        if args.router == "mlp":
            if args.epochs is not None:
                params["epochs"] = args.epochs
            if args.hidden is not None:
                params["hidden"] = args.hidden
        encoder = OnnxEncoder(args.encoder, intra_op_threads=2)
        prepared = pipeline.prepare(
            args.data, encoder, split_seed=args.seed, test_fraction=args.test_fraction
        )
        result = pipeline.train_bundle(
            prepared,
            args.router,
            encoder,
            args.out,
            seed=args.seed,
            params=params,
            default_cost_weight=(
                DEFAULT_COST_WEIGHT if args.cost_weight is None else args.cost_weight
            ),
        )
        print(result.table)
        print(result.directory)
        return 0

    if args.command == "build":
        built = pipeline.build(args.out, n=args.n, seed=args.seed)
        for router_type, trained in built.bundles.items():
            print(trained.table)
            print(f"{router_type}: {trained.directory} <- {built.artifacts / router_type}\n")
        print(f"encoder: {built.encoder_dir}")
        print(f"build finished in {built.seconds:.1f}s")
        return 0
    raise AssertionError(f"unhandled command {args.command}")
