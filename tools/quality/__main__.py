"""``python -m tools.quality``: the routing-quality benches (``make bench-quality``,
``make bench-encoder``).

    python -m tools.quality bench-quality --data DIR_OR_FILE --encoder DIR --out DIR [--name N]
                            [--seeds 0 1 2] [--families ...] [--resamples 1000]
    python -m tools.quality bench-encoder --data DIR_OF_ROUTELLM_CSVS --encoder FP32_DIR \\
                            --out DIR [--routers knn mlp] [--token-limits 64 128 256]
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from trainer.routers import ROUTER_TYPES


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tools.quality", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    bq = sub.add_parser("bench-quality", help="all families on one data set, half/half")
    bq.add_argument("--data", type=Path, required=True, help="data directory or file")
    bq.add_argument("--name", default=None, help="data set name for the table and plot")
    bq.add_argument("--encoder", type=Path, required=True)
    bq.add_argument("--out", type=Path, required=True)
    bq.add_argument("--cache", type=Path, default=Path(".cache/embeddings"))
    bq.add_argument(
        "--seeds", type=int, nargs="+", default=[0, 1, 2], help="split seeds (default 0 1 2)"
    )
    bq.add_argument("--families", nargs="+", default=list(ROUTER_TYPES), choices=ROUTER_TYPES)
    bq.add_argument(
        "--resamples",
        type=int,
        default=1000,
        help="bootstrap resamples of each seed's held-out half",
    )

    be = sub.add_parser(
        "bench-encoder", help="fp32 vs int8 encoder and token limits: routing quality, latency"
    )
    be.add_argument("--data", type=Path, required=True)
    be.add_argument("--encoder", type=Path, required=True, help="fp32 encoder directory")
    be.add_argument("--out", type=Path, required=True)
    be.add_argument("--cache", type=Path, default=Path(".cache/embeddings"))
    be.add_argument("--seed", type=int, default=0)
    be.add_argument(
        "--routers",
        "--families",
        dest="families",
        nargs="+",
        default=["knn", "mlp"],
        choices=ROUTER_TYPES,
    )
    be.add_argument("--token-limits", type=int, nargs="+", default=[64, 128, 256])
    be.add_argument("--latency-prompts", type=int, default=200, help="held-out prompts timed")
    be.add_argument("--latency-repeats", type=int, default=3)
    be.add_argument("--threads", type=int, default=2, help="intra-op threads for embedding")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "bench-quality":
        from tools.quality.bench_quality import PLOTS, format_summary, run

        summary = run(
            args.data,
            args.encoder,
            args.out,
            cache_dir=args.cache,
            seeds=tuple(args.seeds),
            families=tuple(args.families),
            name=args.name,
            resamples=args.resamples,
        )
        print(format_summary(summary))
        print(
            f"\nfigures: {args.out / 'quality.json'}  plots: "
            + ", ".join(str(args.out / p) for p in PLOTS)
        )
        return 0

    from tools.quality import bench_encoder

    benched = bench_encoder.run(
        args.data,
        args.encoder,
        args.out,
        cache_dir=args.cache,
        seed=args.seed,
        families=tuple(args.families),
        token_limits=tuple(args.token_limits),
        latency_prompts=args.latency_prompts,
        latency_repeats=args.latency_repeats,
        threads=args.threads,
    )
    print(bench_encoder.format_summary(benched))
    print(f"\nfigures: {args.out / bench_encoder.RESULT_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
