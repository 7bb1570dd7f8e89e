"""``make bench-quality``: every router family on one data set, beside the baselines.

Reads any format ``trainer.sources.formats`` detects (RouteLLM CSVs, judgements JSONL,
LLMRouter JSONL). For each split seed (``--seeds``, default 0 1 2) trains every family on
one half of the prompts, proves ONNX parity, evaluates on the other half with the exported
graphs; then prints, per family, the mean over seeds of APGR, CPT(50%) and CPT(80%) with
bootstrap 95% intervals (``tools.quality.seeds``: held-out prompts resampled per seed),
beside random, oracle and every single model, under the data set's name (``--name``, else
the data file's stem or directory's name). Published figures appear only for the benchmark
they were measured on (RouteLLM's MMLU figures only when the reader identified the files as
RouteLLM's MMLU; see ``trainer.quality_report``). The same settings (``BENCH_PARAMS``) for
every data set. Writes ``quality.json``, ``quality_cost.png`` (quality against dollars,
first seed), ``pgr_curve.png`` and ``model_share.png`` (``tools.quality.plots``) to ``--out``.
"""

from __future__ import annotations

import json
import multiprocessing
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from decision_service.encoder import OnnxEncoder
from tools.quality.plots import plot_model_share, plot_pgr
from tools.quality.seeds import SeedFigures, mean_curve, summarise
from trainer import pipeline
from trainer.data import split_queries
from trainer.quality_report import (
    choose_pair,
    oracle_curve,
    plot_curves,
    plot_title,
    published_reference,
)
from trainer.routellm_metrics import (
    bootstrap_figures,
    oracle_figures,
    random_figures,
    router_figures,
)
from trainer.sources.formats import dataset_name

FAMILIES = ("knn", "svm", "mlp", "mf", "blend")
SEEDS = (0, 1, 2)
RESAMPLES = 1000
PLOTS = ("quality_cost.png", "pgr_curve.png", "model_share.png")
# Fixed before the benchmark was run; not tuned on the held-out half (blend: see
# trainer/routers/blend.py and docs/quality.md, "What was tried").
BENCH_PARAMS: dict[str, dict[str, object]] = {
    "knn": {"k": 100},
    "svm": {"c": 1.0, "epsilon": 0.2},
    "mlp": {"epochs": 20, "hidden": [128]},
    "mf": {"epochs": 15, "rank": 64},
    "blend": {"clusters": [32, 64, 128], "mlp_weight": 0.25, "mlp_epochs": 20, "mlp_hidden": [128]},
}


def _pct(value: object) -> str:
    return "   n/a" if value is None else f"{float(value):>5.1f}%"  # type: ignore[arg-type]


def _mean(values: Sequence[float]) -> float:
    return round(float(np.mean(values)), 4)


def _train_one(
    data_dir: Path,
    encoder_dir: Path,
    cache_dir: Path | None,
    seed: int,
    family: str,
    family_params: dict[str, object],
    bundles_dir: Path,
) -> tuple[dict[str, object], np.ndarray]:
    """Train, export and evaluate one family on one split: its figures and held-out predictions."""
    started = time.perf_counter()
    encoder = OnnxEncoder(encoder_dir, intra_op_threads=2)
    prepared = pipeline.prepare(
        data_dir, encoder, split_seed=seed, test_fraction=0.5, cache_dir=cache_dir
    )
    trained = pipeline.train_bundle(
        prepared, family, encoder, bundles_dir, seed=seed, params=family_params
    )
    quality = trained.metrics["quality"]
    assert isinstance(quality, dict)
    entry: dict[str, object] = {
        "seconds": round(time.perf_counter() - started, 1),
        "bundle": str(trained.directory),
        "parity": trained.written.manifest.training["parity"],
        "quality_mae": quality["quality_mae"],
        "top_pick_best_rate": quality["top_pick_best_rate"],
        "curve_dollars_quality": quality["curve"],
    }
    return entry, trained.held_out_predicted


def run(
    data_dir: Path,
    encoder_dir: Path,
    out_dir: Path,
    *,
    cache_dir: Path | None,
    seeds: Sequence[int] = SEEDS,
    families: tuple[str, ...] = FAMILIES,
    params: Mapping[str, Mapping[str, object]] | None = None,
    name: str | None = None,
    resamples: int = RESAMPLES,
) -> dict[str, object]:
    if not seeds:
        raise ValueError("give at least one split seed")
    out_dir = Path(out_dir)
    encoder = OnnxEncoder(encoder_dir, intra_op_threads=2)
    prepared = pipeline.prepare(
        data_dir, encoder, split_seed=seeds[0], test_fraction=0.5, cache_dir=cache_dir
    )
    data = prepared.data
    names = [c.model_name for c in data.candidates]
    runs: dict[str, dict[int, dict[str, object]]] = {f: {} for f in families}
    figures: dict[str, list[SeedFigures]] = {f: [] for f in families}
    curves: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {f: [] for f in families}
    predictions: dict[str, np.ndarray] = {}  # first seed's held-out predictions
    baselines: dict[str, list[dict[str, float | None]]] = {"random": [], "oracle": []}
    oracle_curves = []
    for seed in seeds:
        split = split_queries(len(data.prompts), seed=seed, test_fraction=0.5)
        test_labels = data.labels[split.test]
        pair = choose_pair(data.prices, data.labels[split.train])
        if pair is not None:
            weak, strong = test_labels[:, pair.weak], test_labels[:, pair.strong]
            oracle = oracle_figures(weak, strong)
            baselines["oracle"].append(oracle.as_dict())
            baselines["random"].append(random_figures(weak, strong).as_dict())
            oracle_curves.append((oracle.curve.strong_share, oracle.curve.pgr))
        for family in families:
            # A fresh process per family and seed: the memory one training and its ONNX
            # sessions take (gigabytes on 7k prompts) is returned before the next starts.
            with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
                entry, predicted = pool.submit(
                    _train_one,
                    data_dir,
                    encoder_dir,
                    cache_dir,
                    seed,
                    family,
                    dict((params or BENCH_PARAMS).get(family, {})),
                    out_dir / "bundles" / f"seed-{seed}",
                ).result()
            runs[family][seed] = entry
            predictions.setdefault(family, predicted)
            if pair is not None:
                advantage = predicted[:, pair.strong] - predicted[:, pair.weak]
                fig = router_figures(advantage, weak, strong)
                boot = bootstrap_figures(advantage, weak, strong, resamples=resamples, seed=seed)
                figures[family].append(SeedFigures(seed, fig, boot))
                curves[family].append((fig.curve.strong_share, fig.curve.pgr))
    first_split = split_queries(len(data.prompts), seed=seeds[0], test_fraction=0.5)
    pair = choose_pair(data.prices, data.labels[first_split.train])
    dataset = dataset_name(data_dir, name)
    reference = published_reference(data.benchmark)
    results: dict[str, dict[str, object]] = {}
    for family in families:
        per_seed = runs[family]
        results[family] = {
            "routellm": summarise(figures[family]) if figures[family] else None,
            "quality_mae": _mean([float(r["quality_mae"]) for r in per_seed.values()]),  # type: ignore[arg-type]
            "top_pick_best_rate": _mean(
                [float(r["top_pick_best_rate"]) for r in per_seed.values()]  # type: ignore[arg-type]
            ),
            "seeds": {str(s): r for s, r in per_seed.items()},
        }
    ranked = [f for f in families if results[f]["routellm"] is not None]
    best = max(ranked, key=lambda f: results[f]["routellm"]["apgr"]) if ranked else families[0]  # type: ignore[index]
    test_first = data.labels[first_split.test]
    summary: dict[str, object] = {
        "data": {
            "name": dataset,
            "format": prepared.data_format,
            "benchmark": data.benchmark,
            "dir": str(data_dir),
            "sha256": data.sha256,
            "read_report": data.report.as_dict(),
            "train_prompts": len(first_split.train),
            "test_prompts": len(first_split.test),
            "split_seeds": list(seeds),
        },
        "candidates": names,
        "published_reference": None if reference is None else reference.as_dict(),
        "baselines": {
            **{
                k: (
                    {
                        "apgr": _mean([float(v["apgr"]) for v in vs]),  # type: ignore[arg-type]
                        "cpt50_pct": _mean([float(v["cpt50_pct"]) for v in vs]),  # type: ignore[arg-type]
                        "cpt80_pct": _mean([float(v["cpt80_pct"]) for v in vs]),  # type: ignore[arg-type]
                    }
                    if vs
                    else None
                )
                for k, vs in baselines.items()
            },
            "single_models": {
                n: {
                    "quality": round(float(data.labels[:, j].mean()), 4),
                    "dollars_per_1k_requests": round(float(data.costs[:, j].mean() * 1000), 4),
                }
                for j, n in enumerate(names)
            },
        },
        "best": best,
        "families": results,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "quality.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    title = plot_title(dataset, len(first_split.test), seeds[0])
    singles_first = {
        n: (float(data.costs[first_split.test, j].mean() * 1000), float(test_first[:, j].mean()))
        for j, n in enumerate(names)
    }
    plot_curves(
        out_dir / "quality_cost.png",
        {f: runs[f][seeds[0]]["curve_dollars_quality"] for f in families},  # type: ignore[misc]
        singles_first,
        title=title,
        oracle=oracle_curve(test_first, data.costs[first_split.test], pair) if pair else None,
    )
    seeds_text = ", ".join(str(s) for s in seeds)
    if ranked:
        plot_pgr(
            out_dir / "pgr_curve.png",
            {f: mean_curve(curves[f]) for f in ranked},
            oracle=mean_curve(oracle_curves) if oracle_curves else None,
            reference=reference,
            title=f"{dataset}: {len(first_split.test)} held-out prompts, mean over split "
            f"seeds {seeds_text}",
        )
    plot_model_share(
        out_dir / "model_share.png",
        predictions[best],
        data.prices,
        names,
        title=f"{dataset}: {best} router, share of calls per model ({title.split(': ', 1)[1]})",
    )
    return summary


def _interval(bounds: object, pct: bool = False) -> str:
    if not isinstance(bounds, list):
        return ""
    low, high = bounds
    return f"[{low:.1f}, {high:.1f}]" if pct else f"[{low:.3f}, {high:.3f}]"


def format_summary(summary: dict[str, object]) -> str:
    families = summary["families"]
    baselines = summary["baselines"]
    data = summary["data"]
    assert isinstance(families, dict) and isinstance(baselines, dict) and isinstance(data, dict)
    seeds = ", ".join(str(s) for s in data["split_seeds"])
    header = (
        f"{'router':<31} {'APGR':>6} {'95% interval':>15} {'CPT(50%)':>9} {'95% interval':>13} "
        f"{'CPT(80%)':>9} {'MAE':>6} {'top=best':>9}  APGR per seed"
    )
    title = (
        f"{data['name']}: {data['test_prompts']} held-out prompts per split, split seeds "
        f"{seeds}; mean over seeds, bootstrap 95% interval of the mean (held-out prompts "
        "resampled per seed)"
    )
    lines = [title, "", header, "-" * len(header)]
    for family, r in families.items():
        f = r.get("routellm") or {}
        per_seed = " ".join(f"{v['apgr']:.3f}" for v in (f.get("per_seed") or {}).values())
        lines.append(
            f"{family:<31} {f.get('apgr', float('nan')):>6.3f} "
            f"{_interval(f.get('apgr_ci95')):>15} {_pct(f.get('cpt50_pct')):>9} "
            f"{_interval(f.get('cpt50_pct_ci95'), pct=True):>13} {_pct(f.get('cpt80_pct')):>9} "
            f"{r['quality_mae']:>6.3f} {r['top_pick_best_rate']:>9.3f}  {per_seed}"
        )
    for name in ("random", "oracle"):
        f = baselines.get(name) or {}
        lines.append(
            f"{name + ' (baseline)':<31} {f.get('apgr', float('nan')):>6.3f} {'':>15} "
            f"{_pct(f.get('cpt50_pct')):>9} {'':>13} {_pct(f.get('cpt80_pct')):>9}"
        )
    ref = summary.get("published_reference")
    if isinstance(ref, dict):  # only beside the benchmark it was measured on
        lines.append(
            f"{ref['label']:<31} {ref['apgr']:>6.3f} {'':>15} {_pct(ref['cpt50_pct']):>9} "
            f"{'':>13} {_pct(ref['cpt80_pct']):>9}"
        )
    best = summary.get("best")
    best_figures = (families.get(best) or {}).get("routellm") if isinstance(best, str) else None
    if isinstance(best_figures, dict):
        lines.append("")
        lines.append(
            f"best: {best}, APGR {best_figures['apgr']:.3f} "
            f"{_interval(best_figures['apgr_ci95'])}, CPT(50%) "
            f"{_pct(best_figures['cpt50_pct']).strip()} "
            f"{_interval(best_figures['cpt50_pct_ci95'], pct=True)}"
        )
    lines.append("")
    lines.append(f"{'single model (all prompts)':<40} {'quality':>8} {'$/1k req':>9}")
    for name, v in baselines["single_models"].items():
        lines.append(f"{name:<40} {v['quality']:>8.3f} {v['dollars_per_1k_requests']:>9.3f}")
    return "\n".join(lines)
