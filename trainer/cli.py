"""``python -m trainer``: export the encoder, make data, train routers, build everything.

    python -m trainer encoder --out artifacts/encoder-fp32
    python -m trainer quantize --encoder artifacts/encoder-fp32 --out artifacts-int8/encoder
    python -m trainer encoder-variant --encoder artifacts/encoder-fp32 --out DIR [--int8]
                              [--max-tokens 128]
    python -m trainer synth   --out artifacts/data [-n 1800] [--seed 7]
    python -m trainer train   --router knn --data artifacts/data --encoder artifacts/encoder \\
                              --out artifacts [--seed 7] [--k 20 | --epochs 40]
    python -m trainer build   --out artifacts [-n 1800] [--seed 7] [--encoder-variant fp32]
    python -m trainer publish  --registry URI --bundle DIR [--name N] [--promote canary]
    python -m trainer promote  --registry URI --version V --channel stable [--floor X]
                               [--metric apgr] [--force --reason TEXT]
    python -m trainer rollback --registry URI --channel stable [--reason TEXT]
    python -m trainer pull     --registry URI --channel stable --dest DIR
    python -m trainer versions --registry URI
    python -m trainer telemetry (--jaeger URL --service S [--since-hours 24] | --otlp FILE...)
                               --out FILE.jsonl

Installed, the same CLI is the console script ``routeiq-trainer``. ``--help`` and the
registry commands import neither torch nor scikit-learn.

URI is a directory, file:///dir, or s3://bucket/prefix (endpoint from --s3-endpoint or
ROUTEIQ_S3_ENDPOINT, e.g. MinIO; credentials as boto3 finds them).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from decision_service.errors import RouteIQError
from trainer.defaults import BUILD_ENCODER_VARIANTS, DEFAULT_ENCODER_VARIANT
from trainer.errors import RoutingDataError
from trainer.routers import ROUTER_TYPES


def _parser() -> argparse.ArgumentParser:
    # `routeiq-trainer` when run as the console script, else `python -m trainer`.
    script = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    prog = script if script.startswith("routeiq-") else "python -m trainer"
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    enc = sub.add_parser("encoder", help="export all-MiniLM-L6-v2 to an ONNX encoder directory")
    enc.add_argument("--out", type=Path, required=True)
    enc.add_argument("--force", action="store_true", help="re-export even if DIR already validates")

    qz = sub.add_parser(
        "quantize", help="derive the int8 encoder variant (routers must be trained on it)"
    )
    qz.add_argument("--encoder", type=Path, required=True, help="fp32 encoder directory")
    qz.add_argument("--out", type=Path, required=True)

    ev = sub.add_parser(
        "encoder-variant",
        help="derive an int8 and/or shorter-token-limit encoder (routers must be trained on it)",
    )
    ev.add_argument("--encoder", type=Path, required=True, help="source encoder directory")
    ev.add_argument("--out", type=Path, required=True)
    ev.add_argument("--int8", action="store_true", help="quantize the (fp32) graph to int8")
    ev.add_argument(
        "--max-tokens", type=int, default=None, help="token limit (default: the source's)"
    )

    syn = sub.add_parser("synth", help="write a synthetic routing data set (LLMRouter format)")
    syn.add_argument("--out", type=Path, required=True)
    syn.add_argument("-n", type=int, default=1800, help="number of prompts (default 1800)")
    syn.add_argument("--seed", type=int, default=7)

    tr = sub.add_parser("train", help="train one router, evaluate it, write a bundle")
    tr.add_argument("--router", choices=ROUTER_TYPES, required=True)
    tr.add_argument("--data", type=Path, required=True, help="data directory or file")
    tr.add_argument("--encoder", type=Path, required=True, help="encoder directory")
    tr.add_argument("--out", type=Path, required=True, help="parent of the versioned bundle")
    tr.add_argument("--seed", type=int, default=7, help="split and training seed")
    tr.add_argument("--test-fraction", type=float, default=0.2)
    tr.add_argument("--cost-weight", type=float, default=None, help="bundle default (0.05)")
    tr.add_argument("--k", type=int, default=None, help="knn: neighbours")
    tr.add_argument("--epochs", type=int, default=None, help="mlp: training epochs")
    tr.add_argument("--hidden", type=int, nargs="+", default=None, help="mlp: hidden widths")
    tr.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="any router parameter, e.g. --param c=2.0 --param rank=64 (repeatable)",
    )
    tr.add_argument(
        "--data-format",
        choices=("auto", "llmrouter", "routellm-csv", "judgements"),
        default="auto",
        help="default: detected (trainer/sources/formats.py)",
    )
    tr.add_argument("--cache", type=Path, default=None, help="embedding cache directory")
    tr.add_argument("--mlflow", action="store_true", help="log the run to MLflow (optional)")
    tr.add_argument("--tracking-uri", default=None, help="MLflow URI (default ./mlruns)")
    tr.add_argument("--experiment", default="routeiq-router")

    def registry_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--registry", required=True, help="dir, file:///dir or s3://bucket/prefix")
        p.add_argument("--name", default="routeiq-router", help="registry entry name")
        p.add_argument("--s3-endpoint", default=None, help="S3 endpoint URL (MinIO, moto)")

    pb = sub.add_parser("publish", help="upload a bundle as an immutable registry version")
    registry_args(pb)
    pb.add_argument("--bundle", type=Path, required=True)
    pb.add_argument("--promote", default=None, metavar="CHANNEL", help="then promote (gated)")
    pr = sub.add_parser("promote", help="point a channel at a version (quality-gated)")
    registry_args(pr)
    pr.add_argument("--version", required=True)
    pr.add_argument("--channel", default="stable")
    for p in (pb, pr):
        p.add_argument("--metric", default="apgr", help="held-out gate metric (metrics.json)")
        p.add_argument("--floor", type=float, default=None, help="refuse below this value")
        p.add_argument("--force", action="store_true", help="override the gate (needs --reason)")
        p.add_argument("--reason", default=None)
    rb = sub.add_parser("rollback", help="point a channel back at its previous version")
    registry_args(rb)
    rb.add_argument("--channel", default="stable")
    rb.add_argument("--reason", default=None)
    pl = sub.add_parser("pull", help="materialise a channel's bundle into DEST/<version>")
    registry_args(pl)
    pl.add_argument("--channel", default="stable")
    pl.add_argument("--dest", type=Path, required=True)
    vs = sub.add_parser("versions", help="list versions and channels")
    registry_args(vs)

    tm = sub.add_parser("telemetry", help="extract decision examples from Jaeger or OTLP JSON")
    tm.add_argument("--jaeger", default=None, help="Jaeger query base URL")
    tm.add_argument("--service", default="routeiq-decision")
    tm.add_argument("--since-hours", type=float, default=24.0)
    tm.add_argument("--page-size", type=int, default=100)
    tm.add_argument("--otlp", type=Path, nargs="*", default=None, help="Collector file output")
    tm.add_argument("--out", type=Path, required=True)

    bd = sub.add_parser("build", help="encoder + synthetic data + knn and mlp bundles")
    bd.add_argument("--out", type=Path, required=True, help="artifacts directory")
    bd.add_argument("-n", type=int, default=1800, help="number of prompts (default 1800)")
    bd.add_argument("--seed", type=int, default=7)
    bd.add_argument(
        "--encoder-variant",
        choices=BUILD_ENCODER_VARIANTS,
        default=DEFAULT_ENCODER_VARIANT,
        help=f"the encoder the service loads and the routers are trained on (default "
        f"{DEFAULT_ENCODER_VARIANT}: int8 weights, 128 tokens; fp32 is the exported model at "
        "256 tokens, kept as the source in OUT/encoder-fp32 either way)",
    )
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
    try:
        return _run(args)
    except (RoutingDataError, RouteIQError) as exc:
        # The message already names the file, the line and the fix: no traceback needed.
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    # Each command imports what it uses: the registry and telemetry commands (the model-sync
    # loop runs `pull`) and --help load neither torch nor scikit-learn.
    if args.command in {"publish", "promote", "rollback", "pull", "versions"}:
        from trainer.registry_cli import run_registry_command

        return run_registry_command(args)

    if args.command == "telemetry":
        from trainer.registry_cli import run_telemetry_command

        return run_telemetry_command(args)

    if args.command == "encoder":
        from trainer.encoder_export import encoder_is_valid, export_encoder

        if not args.force and encoder_is_valid(args.out):
            print(f"encoder at {args.out} already validates; use --force to re-export")
            return 0
        exported = export_encoder(args.out)
        print(
            f"encoder written to {exported.directory} (parity {exported.parity_max_abs_diff:.2e})"
        )
        return 0

    if args.command == "quantize":
        from trainer.encoder_variants import quantize_int8

        variant = quantize_int8(args.encoder, args.out)
        print(
            f"int8 encoder written to {variant.directory} (cosine to fp32: "
            f"min {variant.min_cosine:.3f}, mean {variant.mean_cosine:.3f})"
        )
        return 0

    if args.command == "encoder-variant":
        from trainer.encoder_variants import derive_variant

        variant = derive_variant(args.encoder, args.out, int8=args.int8, max_tokens=args.max_tokens)
        identity = variant.manifest.identity
        print(
            f"{identity.variant} encoder ({identity.max_tokens} tokens) written to "
            f"{variant.directory} (cosine to its source on {variant.compared_texts} parity "
            f"texts: min {variant.min_cosine:.3f}, mean {variant.mean_cosine:.3f})"
        )
        return 0

    if args.command == "synth":
        from trainer import pipeline

        out = pipeline.write_synthetic(args.out, n=args.n, seed=args.seed)
        print(f"synthetic routing data written to {out}")
        return 0

    if args.command == "train":
        from decision_service.encoder import OnnxEncoder
        from trainer import pipeline
        from trainer.evaluate import DEFAULT_COST_WEIGHT

        params: dict[str, object] = {}
        if args.router == "knn" and args.k is not None:
            params["k"] = args.k
        if args.router == "mlp":
            if args.epochs is not None:
                params["epochs"] = args.epochs
            if args.hidden is not None:
                params["hidden"] = args.hidden
        for item in args.param:
            key, _, raw = item.partition("=")
            params[key] = json.loads(raw) if raw else None
        encoder = OnnxEncoder(args.encoder, intra_op_threads=2)
        prepared = pipeline.prepare(
            args.data,
            encoder,
            split_seed=args.seed,
            test_fraction=args.test_fraction,
            data_format=args.data_format,
            cache_dir=args.cache,
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
        print(_calibration_line(result.metrics))
        if args.mlflow:
            _track(args, result, params)
        print(result.directory)
        return 0

    if args.command == "build":
        from trainer import pipeline

        built = pipeline.build(
            args.out, n=args.n, seed=args.seed, encoder_variant=args.encoder_variant
        )
        for router_type, trained in built.bundles.items():
            print(trained.table)
            print(f"{router_type}: {trained.directory} <- {built.artifacts / router_type}\n")
        print(f"encoder: {built.encoder_dir} ({args.encoder_variant})")
        print(f"build finished in {built.seconds:.1f}s")
        return 0
    raise AssertionError(f"unhandled command {args.command}")


def _track(args: argparse.Namespace, result: object, params: dict[str, object]) -> None:
    """Log the run to MLflow: parameters, headline metrics, the plot and the bundle."""
    import tempfile

    from trainer.pipeline import TrainResult
    from trainer.quality_report import plot_curves
    from trainer.tracking import log_run

    assert isinstance(result, TrainResult)
    quality = result.metrics["quality"]
    headline = result.metrics["headline"]
    assert isinstance(quality, dict) and isinstance(headline, dict)
    with tempfile.TemporaryDirectory() as tmp:
        plot = plot_curves(
            Path(tmp) / "quality_cost.png",
            {args.router: quality["curve"]},
            {
                n: (v["dollars_per_1k_requests"], v["quality"])
                for n, v in quality["single_models"].items()
            },
            title=result.written.manifest.bundle_version,
        )
        log_run(
            tracking_uri=args.tracking_uri,
            experiment=args.experiment,
            run_name=result.written.manifest.bundle_version,
            params={"router": args.router, "seed": args.seed, "data": str(args.data), **params},
            metrics=headline,
            artifacts=[plot],
            bundle_dir=result.directory,
        )


def _calibration_line(metrics: dict[str, object]) -> str:
    """One line: the weight the bundle's table gives per share, and its held-out share."""
    calibration = metrics.get("strong_share_calibration")
    if not isinstance(calibration, dict):
        return "no strong-share calibration"
    points = ", ".join(
        f"{p['target']:.0%} -> cost_weight {p['cost_weight']:.4f} ({p['realised_share']:.1%})"
        for p in calibration["held_out"]
    )
    return f"strong-share calibration ({calibration['strong_model']}, held-out): {points}"
