"""``make bench-quality``: every router family on one data set, beside the baselines.

Reads any format ``trainer.sources.formats`` detects (RouteLLM CSVs, judgements JSONL,
LLMRouter JSONL). Trains KNN, SVM, MLP and MF on one half of the prompts (split fixed by
``--seed``), proves ONNX parity, evaluates on the other half with the exported graphs, and
prints APGR, CPT(50%), CPT(80%) beside random, oracle and every single model, under the data
set's name (``--name``, else the data file's stem or directory's name). Published figures
appear only for the benchmark they were measured on (RouteLLM's MMLU figures only when the
reader identified the files as RouteLLM's MMLU; see ``trainer.quality_report``). Writes
``quality.json`` and ``quality_cost.png`` to ``--out``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path

from decision_service.encoder import OnnxEncoder
from trainer import pipeline
from trainer.quality_report import (
    choose_pair,
    oracle_curve,
    plot_curves,
    plot_title,
    published_reference,
)
from trainer.sources.formats import dataset_name

FAMILIES = ("knn", "svm", "mlp", "mf")
# Fixed before the benchmark was run; not tuned on the held-out half.
BENCH_PARAMS: dict[str, dict[str, object]] = {
    "knn": {"k": 100},
    "svm": {"c": 1.0, "epsilon": 0.2},
    "mlp": {"epochs": 20, "hidden": [128]},
    "mf": {"epochs": 15, "rank": 64},
}


def _pct(value: object) -> str:
    return "   n/a" if value is None else f"{float(value):>5.1f}%"  # type: ignore[arg-type]


def _routellm(result: Mapping[str, object]) -> dict[str, object]:
    figures = result.get("routellm")
    return figures if isinstance(figures, dict) else {}


def run(
    data_dir: Path,
    encoder_dir: Path,
    out_dir: Path,
    *,
    cache_dir: Path | None,
    seed: int = 0,
    families: tuple[str, ...] = FAMILIES,
    params: Mapping[str, Mapping[str, object]] | None = None,
    name: str | None = None,
) -> dict[str, object]:
    out_dir = Path(out_dir)
    encoder = OnnxEncoder(encoder_dir, intra_op_threads=2)
    prepared = pipeline.prepare(
        data_dir, encoder, split_seed=seed, test_fraction=0.5, cache_dir=cache_dir
    )
    data, split = prepared.data, prepared.split
    names = [c.model_name for c in data.candidates]
    results: dict[str, dict[str, object]] = {}
    for family in families:
        started = time.perf_counter()
        trained = pipeline.train_bundle(
            prepared,
            family,
            encoder,
            out_dir / "bundles",
            seed=seed,
            params=(params or BENCH_PARAMS).get(family, {}),
        )
        quality = trained.metrics["quality"]
        assert isinstance(quality, dict)
        results[family] = {
            "seconds": round(time.perf_counter() - started, 1),
            "bundle": str(trained.directory),
            "parity": trained.written.manifest.training["parity"],
            **quality,
        }
    first = next(iter(results.values()))
    pair = choose_pair(data.prices, data.labels[split.train])
    dataset = dataset_name(data_dir, name)
    reference = published_reference(data.benchmark)
    summary: dict[str, object] = {
        "data": {
            "name": dataset,
            "format": prepared.data_format,
            "benchmark": data.benchmark,
            "dir": str(data_dir),
            "sha256": data.sha256,
            "read_report": data.report.as_dict(),
            "train_prompts": len(split.train),
            "test_prompts": len(split.test),
            "split_seed": seed,
        },
        "candidates": names,
        "published_reference": None if reference is None else reference.as_dict(),
        "baselines": {
            "random": _routellm(first).get("random"),
            "oracle": _routellm(first).get("oracle"),
            "single_models": first["single_models"],
        },
        "families": results,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "quality.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    singles = first["single_models"]
    assert isinstance(singles, dict)
    plot_curves(
        out_dir / "quality_cost.png",
        {f: r["curve"] for f, r in results.items()},  # type: ignore[misc]
        {n: (v["dollars_per_1k_requests"], v["quality"]) for n, v in singles.items()},
        title=plot_title(dataset, len(split.test), seed),
        oracle=(
            oracle_curve(data.labels[split.test], data.costs[split.test], pair) if pair else None
        ),
    )
    return summary


def format_summary(summary: dict[str, object]) -> str:
    families = summary["families"]
    baselines = summary["baselines"]
    data = summary["data"]
    assert isinstance(families, dict) and isinstance(baselines, dict) and isinstance(data, dict)
    header = (
        f"{'router':<34} {'APGR':>6} {'CPT(50%)':>9} {'CPT(80%)':>9} {'MAE':>6} {'top=best':>9}"
    )
    title = plot_title(str(data["name"]), int(data["test_prompts"]), int(data["split_seed"]))
    lines = [title, "", header, "-" * len(header)]
    for family, r in families.items():
        f = r.get("routellm", {}).get("router", {})
        lines.append(
            f"{family:<34} {f.get('apgr', float('nan')):>6.3f} {_pct(f.get('cpt50_pct')):>9} "
            f"{_pct(f.get('cpt80_pct')):>9} {r['quality_mae']:>6.3f} "
            f"{r['top_pick_best_rate']:>9.3f}"
        )
    for name in ("random", "oracle"):
        f = baselines.get(name) or {}
        lines.append(
            f"{name + ' (baseline)':<34} {f.get('apgr', float('nan')):>6.3f} "
            f"{_pct(f.get('cpt50_pct')):>9} {_pct(f.get('cpt80_pct')):>9}"
        )
    ref = summary.get("published_reference")
    if isinstance(ref, dict):  # only beside the benchmark it was measured on
        lines.append(
            f"{ref['label']:<34} {ref['apgr']:>6.3f} {_pct(ref['cpt50_pct']):>9} "
            f"{_pct(ref['cpt80_pct']):>9}"
        )
    lines.append("")
    lines.append(f"{'single model':<40} {'quality':>8} {'$/1k req':>9}")
    for name, v in baselines["single_models"].items():
        lines.append(f"{name:<40} {v['quality']:>8.3f} {v['dollars_per_1k_requests']:>9.3f}")
    return "\n".join(lines)
