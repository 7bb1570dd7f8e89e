"""The training pipeline: data -> embeddings -> router -> parity-checked ONNX -> bundle.

``build`` does all of it into one artifacts directory laid out for the service::

    ARTIFACTS/encoder-fp32/            the exported fp32 encoder (256 tokens): the source
    ARTIFACTS/encoder/                 the serving variant derived from it (default int8-t128):
                                       encoder.json, encoder.onnx, tokenizer.json
    ARTIFACTS/data/                    routing_data.jsonl, llm_data.json, dataset.json
    ARTIFACTS/knn-<utc>-<sha8>/        a versioned bundle (manifest.json, router.onnx)
    ARTIFACTS/knn -> knn-<utc>-<sha8>  stable pointer, swapped atomically
    ARTIFACTS/mlp-..., ARTIFACTS/mlp   the same for the MLP

so ``--bundle ARTIFACTS/knn`` finds its encoder at ``ARTIFACTS/encoder`` whether or not the
service resolves the symlink first. The routers are trained on the serving variant's own
embeddings (a bundle pins its encoder's hash); ``encoder_variant="fp32"`` serves the
exported encoder itself.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from decision_service.atomic import point_symlink
from decision_service.encoder import OnnxEncoder
from decision_service.manifest import graph_variant
from trainer.bundle_writer import WrittenBundle, write_bundle
from trainer.calibration import calibrate, calibration_summary, strong_model
from trainer.data import RoutingData, Split, split_queries
from trainer.defaults import DEFAULT_ENCODER_VARIANT
from trainer.embed_cache import embed_with_cache
from trainer.encoder_export import ENCODER_VARIANT, MAX_TOKENS, encoder_is_valid, export_encoder
from trainer.encoder_variants import INT8, derive_variant
from trainer.evaluate import DEFAULT_COST_WEIGHT, PolicyResult, evaluate, find, format_table
from trainer.lineage import lineage
from trainer.quality_report import quality_report
from trainer.routers import export_with_parity, make_router
from trainer.sources.formats import DATA_FORMATS, read_data  # noqa: F401  (re-exported)
from trainer.synthetic import DATASET_META, generate, write_llmrouter

log = logging.getLogger(__name__)

SAMPLE_COUNT = 3
UTILITY_RULE = "quality - cost_weight * log2(price_per_million / cheapest price_per_million)"
METRICS_FILE = "metrics.json"
SOURCE_ENCODER = "encoder-fp32"  # under ARTIFACTS: the exported encoder variants derive from
LINEAGE_FILE = "lineage.json"


@dataclass(frozen=True)
class PreparedData:
    data: RoutingData
    embeddings: np.ndarray  # float32 [n, dim], rows as data.prompts
    split: Split
    origin: dict[str, object]
    data_format: str = "llmrouter"


@dataclass(frozen=True)
class TrainResult:
    written: WrittenBundle
    results: list[PolicyResult]
    table: str
    metrics: dict[str, object]
    held_out_predicted: np.ndarray  # [test, m] what the exported graph predicts, split.test order

    @property
    def directory(self) -> Path:
        return self.written.directory


def write_synthetic(out_dir: Path, *, n: int, seed: int) -> Path:
    return write_llmrouter(generate(n, seed), out_dir)


def prepare(
    data_dir: Path,
    encoder: OnnxEncoder,
    *,
    split_seed: int,
    test_fraction: float = 0.2,
    data_format: str = "auto",
    cache_dir: Path | None = None,
) -> PreparedData:
    """Read, embed (through ``cache_dir`` when given) and split a data set."""
    data, data_format = read_data(data_dir, data_format)
    if data.report.records_skipped or data.report.queries_dropped_incomplete:
        log.warning("routing data: %s", data.report.as_dict())
    started = time.perf_counter()
    embeddings = embed_with_cache(encoder, data.prompts, cache_dir)
    log.info("embedded %d prompts in %.1fs", len(data.prompts), time.perf_counter() - started)
    meta_path = Path(data_dir) / DATASET_META
    origin: dict[str, object] = {}
    if meta_path.is_file():
        loaded = json.loads(meta_path.read_text())
        if isinstance(loaded, dict):
            origin = loaded
    split = split_queries(len(data.prompts), seed=split_seed, test_fraction=test_fraction)
    return PreparedData(
        data=data, embeddings=embeddings, split=split, origin=origin, data_format=data_format
    )


def pick_samples(prepared: PreparedData, count: int = SAMPLE_COUNT) -> list[str]:
    """``count`` held-out prompts, of different kinds where the data says kinds."""
    data, test = prepared.data, prepared.split.test
    chosen: list[int] = []
    seen_kinds: set[str | None] = set()
    for i in test:
        if data.kinds[i] not in seen_kinds or data.kinds[i] is None:
            chosen.append(int(i))
            seen_kinds.add(data.kinds[i])
        if len(chosen) == count:
            break
    for i in test:  # fewer kinds than samples: fill with any held-out prompt
        if len(chosen) == count:
            break
        if int(i) not in chosen:
            chosen.append(int(i))
    return [data.prompts[i] for i in chosen]


def train_bundle(
    prepared: PreparedData,
    router_type: str,
    encoder: OnnxEncoder,
    out_parent: Path,
    *,
    seed: int = 0,
    params: Mapping[str, object] | None = None,
    default_cost_weight: float = DEFAULT_COST_WEIGHT,
    now: datetime | None = None,
) -> TrainResult:
    """Fit ``router_type`` on the training split, prove parity, evaluate, write the bundle."""
    data, split, emb = prepared.data, prepared.split, prepared.embeddings
    router = make_router(router_type, seed=seed, **dict(params or {}))
    started = time.perf_counter()
    router.fit(emb[split.train], data.labels[split.train])
    exported = export_with_parity(router, emb[split.test])
    log.info(
        "%s trained and exported in %.1fs (parity %.2e <= %g)",
        router_type,
        time.perf_counter() - started,
        exported.parity_max_abs_diff,
        exported.parity_tolerance,
    )
    predicted = exported.predict(emb[split.test])  # what serving computes
    names = [c.model_name for c in data.candidates]
    results = evaluate(
        predicted,
        data.labels[split.test],
        data.costs[split.test],
        data.prices,
        data.labels[split.train],
        candidate_names=names,
        router_name=f"router ({router_type})",
        cost_weights=(default_cost_weight, 0.0),
    )
    report = quality_report(
        predicted,
        data.labels[split.test],
        data.costs[split.test],
        data.prices,
        data.labels[split.train],
        names,
    )
    metrics = headline_metrics(report, results, default_cost_weight)
    # The same held-out rows as the metrics: the weight per share of strong-model calls.
    strong = strong_model(data.labels[split.train])
    calibration = calibrate(predicted, data.prices, strong, names[strong])
    calibration_check = calibration_summary(calibration, predicted, data.prices, strong)
    kinds = Counter(k for k in data.kinds if k is not None)
    training: dict[str, object] = {
        "data": {
            "rows": data.report.records_used,
            "queries": len(data.prompts),
            "train_queries": len(split.train),
            "test_queries": len(split.test),
            "split_seed": split.seed,
            "test_fraction": split.test_fraction,
            "kinds": dict(sorted(kinds.items())),
            "sha256": data.sha256,
            "read_report": data.report.as_dict(),
            "origin": prepared.origin,
        },
        "router": exported.hyperparameters,
        "parity": {
            "max_abs_diff": exported.parity_max_abs_diff,
            "tolerance": exported.parity_tolerance,
            "held_out_rows": exported.parity_rows,
        },
        "utility": UTILITY_RULE,
        "metrics": {"held_out": [r.as_dict() for r in results], "headline": metrics},
        "strong_share_calibration": calibration_check,
    }
    created = (now or datetime.now(UTC)).astimezone(UTC)
    rows = {
        "records_used": data.report.records_used,
        "records_skipped": data.report.records_skipped,
        "queries": len(data.prompts),
        "train_queries": len(split.train),
        "test_queries": len(split.test),
    }
    metrics_doc: dict[str, object] = {
        "headline": metrics,
        "policies": [r.as_dict() for r in results],
        "quality": report,
        "strong_share_calibration": {
            "strong_model": calibration.strong_model,
            "points": len(calibration.points),
            "held_out": calibration_check,
        },
    }
    lineage_doc = lineage(
        router_type=router_type,
        data_sha256=data.sha256,
        data_format=prepared.data_format,
        rows=rows,
        split={"seed": split.seed, "test_fraction": split.test_fraction},
        encoder_digest=encoder.identity.digest,
        hyperparameters=exported.hyperparameters,
        created=created,
    )
    written = write_bundle(
        out_parent,
        exported,
        encoder=encoder,
        candidates=data.candidates,
        sample_prompts=pick_samples(prepared),
        training=training,
        default_cost_weight=default_cost_weight,
        strong_share_calibration=calibration,
        now=created,
        extra_files={
            METRICS_FILE: _json_bytes(metrics_doc),
            LINEAGE_FILE: _json_bytes(lineage_doc),
        },
    )
    title = (
        f"{router_type}: {len(split.test)} held-out prompts, {len(names)} candidates; "
        f"utility = {UTILITY_RULE}"
    )
    return TrainResult(
        written=written,
        results=results,
        table=format_table(results, title=title),
        metrics=metrics_doc,
        held_out_predicted=predicted,
    )


def headline_metrics(
    report: dict[str, object], results: list[PolicyResult], default_cost_weight: float
) -> dict[str, object]:
    """The flat figures a quality gate compares (see ``decision_service.bundle_registry.Gate``)."""
    router = find(results, "router", default_cost_weight)
    headline: dict[str, object] = {
        "utility": round(router.utility, 4),
        "quality": round(router.quality, 4),
        "top_pick_best_rate": report["top_pick_best_rate"],
        "quality_mae": report["quality_mae"],
    }
    routellm = report.get("routellm")
    if isinstance(routellm, dict):
        headline.update(routellm["router"])
    return headline


def _json_bytes(value: object) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True, default=_np_default) + "\n").encode()


def _np_default(obj: object) -> object:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def parse_variant(variant: str) -> tuple[bool, int]:
    """``int8-t128`` -> (int8, 128 tokens); ``fp32`` -> (False, 256)."""
    graph = graph_variant(variant)
    suffix = variant[len(graph) :]
    if graph not in (ENCODER_VARIANT, INT8) or (suffix and not suffix.startswith("-t")):
        raise ValueError(f"unknown encoder variant {variant!r} (e.g. fp32, int8, int8-t128)")
    limit = int(suffix[2:]) if suffix else MAX_TOKENS
    if not 0 < limit <= MAX_TOKENS:
        raise ValueError(f"encoder variant {variant!r}: token limit must be in 1..{MAX_TOKENS}")
    return graph == INT8, limit


def _variant_of(directory: Path) -> str | None:
    try:
        return OnnxEncoder(directory).identity.variant
    except Exception:  # not there, or not loadable: not reusable
        return None


def ensure_serving_encoder(out_dir: Path, variant: str = DEFAULT_ENCODER_VARIANT) -> Path:
    """``out_dir/encoder`` as ``variant``, derived from the fp32 export in ``out_dir/encoder-fp32``.

    Both are reused while they validate. An artifacts directory from before the split (the
    fp32 encoder at ``out_dir/encoder``) has it moved to ``encoder-fp32`` instead of
    exporting again.
    """
    int8, limit = parse_variant(variant)
    source, target = out_dir / SOURCE_ENCODER, out_dir / "encoder"
    fp32_ok = encoder_is_valid(source) and _variant_of(source) == ENCODER_VARIANT
    if not fp32_ok and _variant_of(target) == ENCODER_VARIANT and encoder_is_valid(target):
        if source.is_symlink() or source.is_file():
            source.unlink()
        elif source.exists():
            shutil.rmtree(source)
        target.rename(source)  # a symlink moves as a symlink
        fp32_ok = True
        log.info("moved the fp32 encoder %s -> %s (the source of the variants)", target, source)
    if not fp32_ok:
        export_encoder(source)
    elif _variant_of(target) == variant:
        return target
    if target.is_symlink():
        target.unlink()  # never write through a link into what it points at
    started = time.perf_counter()
    derive_variant(source, target, int8=int8, max_tokens=None if limit == MAX_TOKENS else limit)
    log.info("%s encoder derived in %.1fs", variant, time.perf_counter() - started)
    return target


@dataclass(frozen=True)
class BuildResult:
    artifacts: Path
    encoder_dir: Path  # the serving variant
    data_dir: Path
    bundles: dict[str, TrainResult]
    seconds: float


def build(
    out_dir: Path,
    *,
    n: int = 1800,
    seed: int = 7,
    router_types: tuple[str, ...] = ("knn", "mlp"),
    router_params: Mapping[str, Mapping[str, object]] | None = None,
    encoder_variant: str = DEFAULT_ENCODER_VARIANT,
) -> BuildResult:
    """Encoders (reused when valid), synthetic data, every router, stable pointers.

    The routers are trained on ``encoder_variant`` (int8 variants embed one prompt per run,
    as they serve), which the service then loads from ``out_dir/encoder``.
    """
    started = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    encoder_dir = ensure_serving_encoder(out_dir, encoder_variant)
    data_dir = write_synthetic(out_dir / "data", n=n, seed=seed)
    encoder = OnnxEncoder(encoder_dir, intra_op_threads=2)
    prepared = prepare(data_dir, encoder, split_seed=seed)
    bundles = {}
    for router_type in router_types:
        params = (router_params or {}).get(router_type, {})
        result = train_bundle(prepared, router_type, encoder, out_dir, seed=seed, params=params)
        point_symlink(out_dir / router_type, result.directory.name)
        bundles[router_type] = result
    return BuildResult(
        artifacts=out_dir,
        encoder_dir=encoder_dir,
        data_dir=data_dir,
        bundles=bundles,
        seconds=time.perf_counter() - started,
    )
