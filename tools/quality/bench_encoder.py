"""``make bench-encoder``: what the int8 encoder and shorter token limits cost in routing.

For the fp32 encoder and its int8 variant, each at every ``--token-limits`` value
(``trainer.encoder_variants``: ``fp32``, ``fp32-t128``, ``int8-t64``, ...), on the split
``make bench-quality`` uses (half/half, ``--seed``):

1. embed every prompt with that variant (int8: one prompt per run; cached per identity in
   ``--cache``), and train every router family on the variant's own training embeddings
   (``bench_quality.BENCH_PARAMS``), as a bundle for that variant;
2. evaluate on the held-out half. Figures, per variant and family:

   * ``APGR``, ``CPT(50%)``, ``CPT(80%)``: ``trainer.routellm_metrics`` (weak = cheapest
     candidate, strong = best mean training quality); ``dAPGR`` is the difference to the
     reference router of the same family, with a 95% paired-bootstrap interval (both routers
     scored on the same 1000 resamples of the held-out prompts);
   * ``agree@50%``: the reference is the fp32 encoder at its own 256-token limit. Each router
     sends the half of the held-out prompts with the largest predicted advantage (strong
     minus weak quality) to the strong model (``routellm_metrics.strong_calls``, the point
     x = 0.5 of the APGR curve); agreement is the share of held-out prompts on which the
     variant's router and the reference router of the same family make the same choice.
     ``agree@w`` is the same for the bundle's own rule: the top pick of
     ``utility = quality - w * log2(price / cheapest)`` at the default cost weight ``w``.
     The JSON also has the 20% and 80% shares and cost weight 0;
   * a control row, ``fp32 seed+1``: the reference embeddings with the router trained on
     seed + 1, i.e. how far two fp32 routers of one family agree by chance of training.

   Per variant (held-out prompts): mean and min cosine of its embedding to the reference
   embedding; the share of prompts longer than its limit (tokens counted with [CLS] and
   [SEP], as the encoder truncates); the mean tokens it embeds; and single-prompt encoder
   latency (``OnnxEncoder.encode`` of one prompt, tokenizer included, one intra-op thread as
   the service runs it), p50/p99 over a fixed sample of held-out prompts, after warm-up,
   the variants interleaved prompt by prompt so that all see the same machine load.

Prints two tables and writes ``bench_encoder.json`` to ``--out``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime

from decision_service.encoder import OnnxEncoder
from tools.quality.bench_quality import BENCH_PARAMS
from trainer import pipeline
from trainer.embed_cache import embed_with_cache
from trainer.encoder_variants import FP32, INT8, derive_variant, variant_name
from trainer.evaluate import DEFAULT_COST_WEIGHT, utility
from trainer.quality_report import choose_pair
from trainer.routellm_metrics import router_figures, strong_calls

log = logging.getLogger(__name__)

FAMILIES = ("knn", "mlp")
TOKEN_LIMITS = (64, 128, 256)
AGREEMENT_SHARES = (0.2, 0.5, 0.8)
AGREEMENT_WEIGHTS = (DEFAULT_COST_WEIGHT, 0.0)
LATENCY_PROMPTS = 200
LATENCY_REPEATS = 3
LATENCY_WARMUP = 20
BOOTSTRAP_ROUNDS = 1000
RESULT_FILE = "bench_encoder.json"
SEED_CONTROL = "fp32 seed+1"


@dataclass(frozen=True)
class EncoderFigures:
    variant: str
    graph: str
    max_tokens: int
    digest: str
    directory: str
    onnx_mb: float
    mean_cosine: float  # to the reference embedding, held-out prompts
    min_cosine: float
    truncated_share: float  # held-out prompts longer than max_tokens
    mean_tokens: float  # tokens embedded per held-out prompt
    embed_seconds: float  # 0 when every prompt came from the cache
    latency_ms: dict[str, float]  # p50, p99, mean over the latency sample


@dataclass(frozen=True)
class RouterFigures:
    variant: str
    family: str
    apgr: float
    apgr_delta: float
    apgr_delta_ci95: list[float]  # paired bootstrap over held-out prompts
    cpt50_pct: float | None
    cpt80_pct: float | None
    agreement: dict[str, float]  # "strong_share=0.5" -> share of held-out prompts
    bundle: str


@dataclass(frozen=True)
class Summary:
    data: dict[str, object]
    definitions: dict[str, str]
    latency: dict[str, object]
    encoders: list[EncoderFigures]
    routers: list[RouterFigures]

    def as_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class _Variant:
    name: str
    graph: str
    max_tokens: int
    directory: Path


def _share_key(share: float) -> str:
    return f"strong_share={share:g}"


def _weight_key(weight: float) -> str:
    return f"cost_weight={weight:g}"


def derive_variants(
    fp32_dir: Path, out_dir: Path, token_limits: Sequence[int], *, int8: bool = True
) -> list[_Variant]:
    """The reference (``fp32_dir`` itself) first, then every other variant, derived."""
    reference = OnnxEncoder(fp32_dir).identity
    if reference.variant != FP32:
        raise ValueError(f"{fp32_dir} is a {reference.variant!r} encoder; pass the fp32 one")
    full = reference.max_tokens
    limits = sorted({int(n) for n in token_limits} | {full}, reverse=True)
    variants = [_Variant(FP32, FP32, full, Path(fp32_dir))]
    for limit in limits[1:]:
        name = variant_name(FP32, limit)
        derive_variant(fp32_dir, out_dir / name, max_tokens=limit)
        variants.append(_Variant(name, FP32, limit, out_dir / name))
    if int8:
        int8_dir = out_dir / INT8
        derive_variant(fp32_dir, int8_dir, int8=True)
        variants.append(_Variant(INT8, INT8, full, int8_dir))
        for limit in limits[1:]:
            name = variant_name(INT8, limit)
            # Same graph bytes as quantizing again (deterministic), without the wait.
            derive_variant(int8_dir, out_dir / name, max_tokens=limit)
            variants.append(_Variant(name, INT8, limit, out_dir / name))
    return variants


def token_lengths(encoder_dir: Path, texts: Sequence[str]) -> np.ndarray:
    """Untruncated token counts, [CLS] and [SEP] included (what a limit is compared with)."""
    from tokenizers import Tokenizer

    encoder = OnnxEncoder(encoder_dir)
    tokenizer = Tokenizer.from_file(str(Path(encoder_dir) / encoder.manifest.tokenizer_file))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return np.array([len(e.ids) for e in tokenizer.encode_batch(list(texts))], dtype=np.int64)


def measure_latency(
    encoders: Mapping[str, OnnxEncoder], prompts: Sequence[str], *, repeats: int, warmup: int
) -> dict[str, np.ndarray]:
    """Milliseconds of ``encode([prompt])`` per encoder, interleaved prompt by prompt."""
    names = list(encoders)
    for name in names:
        for prompt in list(prompts[:warmup]) or ["warm-up"]:
            encoders[name].encode([prompt])
    times: dict[str, list[float]] = {name: [] for name in names}
    step = 0
    for _ in range(repeats):
        for prompt in prompts:
            step += 1
            # Rotate who goes first, so no variant always runs right after another one.
            for name in names[step % len(names) :] + names[: step % len(names)]:
                started = time.perf_counter()
                encoders[name].encode([prompt])
                times[name].append((time.perf_counter() - started) * 1000)
    return {name: np.asarray(t, np.float64) for name, t in times.items()}


def apgr_delta_interval(
    advantage: np.ndarray,
    reference: np.ndarray,
    weak: np.ndarray,
    strong: np.ndarray,
    *,
    seed: int,
    rounds: int = BOOTSTRAP_ROUNDS,
) -> list[float]:
    """95% interval of APGR(advantage) - APGR(reference): paired bootstrap over prompts."""
    rng = np.random.default_rng(seed)
    n = len(weak)
    deltas = np.empty(rounds)
    for r in range(rounds):
        s = rng.integers(0, n, n)
        deltas[r] = (
            router_figures(advantage[s], weak[s], strong[s]).apgr
            - router_figures(reference[s], weak[s], strong[s]).apgr
        )
    low, high = np.percentile(deltas, [2.5, 97.5])
    return [round(float(low), 4), round(float(high), 4)]


def _agreement(
    predicted: np.ndarray, reference: np.ndarray, weak: int, strong: int, prices: np.ndarray
) -> dict[str, float]:
    agreement: dict[str, float] = {}
    for share in AGREEMENT_SHARES:
        a = strong_calls(predicted[:, strong] - predicted[:, weak], share)
        b = strong_calls(reference[:, strong] - reference[:, weak], share)
        agreement[_share_key(share)] = round(float(np.mean(a == b)), 4)
    for weight in AGREEMENT_WEIGHTS:
        a = np.argmax(utility(predicted, prices, weight), axis=1)
        b = np.argmax(utility(reference, prices, weight), axis=1)
        agreement[_weight_key(weight)] = round(float(np.mean(a == b)), 4)
    return agreement


def run(
    data_dir: Path,
    encoder_dir: Path,
    out_dir: Path,
    *,
    cache_dir: Path | None,
    seed: int = 0,
    families: tuple[str, ...] = FAMILIES,
    token_limits: Sequence[int] = TOKEN_LIMITS,
    params: Mapping[str, Mapping[str, object]] | None = None,
    latency_prompts: int = LATENCY_PROMPTS,
    latency_repeats: int = LATENCY_REPEATS,
    latency_warmup: int = LATENCY_WARMUP,
    threads: int = 2,
) -> Summary:
    out_dir = Path(out_dir)
    params = params or BENCH_PARAMS
    variants = derive_variants(Path(encoder_dir), out_dir / "encoders", token_limits)
    reference_encoder = OnnxEncoder(variants[0].directory, intra_op_threads=threads)
    prepared = pipeline.prepare(
        data_dir, reference_encoder, split_seed=seed, test_fraction=0.5, cache_dir=cache_dir
    )
    data, split = prepared.data, prepared.split
    test = split.test
    pair = choose_pair(data.prices, data.labels[split.train])
    if pair is None:
        raise ValueError("the cheapest candidate is also the best: no strong/weak pair to route")
    weak, strong = pair.weak, pair.strong
    weak_labels, strong_labels = data.labels[test, weak], data.labels[test, strong]
    prices = data.prices
    lengths = token_lengths(variants[0].directory, [data.prompts[i] for i in test])

    encoders: list[EncoderFigures] = []
    routers: list[RouterFigures] = []
    reference_predicted: dict[str, np.ndarray] = {}
    reference_apgr: dict[str, float] = {}

    def figures(
        name: str, family: str, trained: pipeline.TrainResult, reference: np.ndarray
    ) -> RouterFigures:
        predicted = trained.held_out_predicted
        advantage = predicted[:, strong] - predicted[:, weak]
        fig = router_figures(advantage, weak_labels, strong_labels).as_dict()
        apgr = float(fig["apgr"] or 0.0)
        interval = apgr_delta_interval(
            advantage,
            reference[:, strong] - reference[:, weak],
            weak_labels,
            strong_labels,
            seed=seed,
        )
        return RouterFigures(
            variant=name,
            family=family,
            apgr=apgr,
            apgr_delta=round(apgr - reference_apgr.get(family, apgr), 4),
            apgr_delta_ci95=interval,
            cpt50_pct=fig["cpt50_pct"],
            cpt80_pct=fig["cpt80_pct"],
            agreement=_agreement(predicted, reference, weak, strong, prices),
            bundle=str(trained.directory),
        )

    for variant in variants:
        encoder = OnnxEncoder(variant.directory, intra_op_threads=threads)
        started = time.perf_counter()
        if variant is variants[0]:
            embeddings = prepared.embeddings
        else:
            embeddings = embed_with_cache(encoder, data.prompts, cache_dir)
        embed_seconds = time.perf_counter() - started
        cosine = np.sum(embeddings[test] * prepared.embeddings[test], axis=1)
        encoders.append(
            EncoderFigures(
                variant=variant.name,
                graph=variant.graph,
                max_tokens=variant.max_tokens,
                digest=encoder.identity.digest,
                directory=str(variant.directory),
                onnx_mb=round((variant.directory / "encoder.onnx").stat().st_size / 2**20, 1),
                mean_cosine=round(float(cosine.mean()), 4),
                min_cosine=round(float(cosine.min()), 4),
                truncated_share=round(float(np.mean(lengths > variant.max_tokens)), 4),
                mean_tokens=round(float(np.minimum(lengths, variant.max_tokens).mean()), 1),
                embed_seconds=round(embed_seconds, 1),
                latency_ms={},
            )
        )
        own = dataclasses.replace(prepared, embeddings=embeddings)
        for family in families:
            trained = pipeline.train_bundle(
                own,
                family,
                encoder,
                out_dir / "bundles" / variant.name,
                seed=seed,
                params=params.get(family, {}),
            )
            if variant is variants[0]:
                reference_predicted[family] = trained.held_out_predicted
            routers.append(figures(variant.name, family, trained, reference_predicted[family]))
            if variant is variants[0]:
                reference_apgr[family] = routers[-1].apgr
            log.info("%s / %s: %s", variant.name, family, routers[-1])

    for family in families:  # the chance agreement of two fp32 routers of one family
        trained = pipeline.train_bundle(
            prepared,
            family,
            reference_encoder,
            out_dir / "bundles" / "fp32-seed-control",
            seed=seed + 1,
            params=params.get(family, {}),
        )
        routers.append(figures(SEED_CONTROL, family, trained, reference_predicted[family]))

    sample_index = np.random.default_rng(seed).permutation(len(test))[:latency_prompts]
    sample = [data.prompts[test[i]] for i in sample_index]
    timed = measure_latency(
        {v.name: OnnxEncoder(v.directory, intra_op_threads=1) for v in variants},
        sample,
        repeats=latency_repeats,
        warmup=latency_warmup,
    )
    encoders = [
        dataclasses.replace(
            e,
            latency_ms={
                "p50": round(float(np.percentile(timed[e.variant], 50)), 2),
                "p99": round(float(np.percentile(timed[e.variant], 99)), 2),
                "mean": round(float(timed[e.variant].mean()), 2),
            },
        )
        for e in encoders
    ]
    summary = Summary(
        data={
            "dir": str(data_dir),
            "sha256": data.sha256,
            "prompts": len(data.prompts),
            "train_prompts": len(split.train),
            "test_prompts": len(test),
            "split_seed": seed,
            "weak": data.candidates[weak].model_name,
            "strong": data.candidates[strong].model_name,
            "families": list(families),
            "params": {f: dict(params.get(f, {})) for f in families},
        },
        definitions={
            "reference": f"{FP32} at {variants[0].max_tokens} tokens, same router family",
            "agreement strong_share=s": "share of held-out prompts routed alike when each "
            "router sends the fraction s of them with the largest predicted advantage "
            "(strong - weak quality) to the strong model",
            "agreement cost_weight=w": "share of held-out prompts with the same top pick of "
            "quality - w * log2(price / cheapest price)",
            "truncated_share": "held-out prompts with more tokens ([CLS], [SEP] included) "
            "than the limit",
            "apgr_delta_ci95": f"2.5th and 97.5th percentiles of the APGR difference over "
            f"{BOOTSTRAP_ROUNDS} resamples (with replacement) of the held-out prompts, the "
            "variant's and the reference router scored on the same resample",
            "latency_ms": "OnnxEncoder.encode of one prompt (tokenizer included), one intra-op "
            "thread, variants interleaved",
            SEED_CONTROL: "reference embeddings, router trained with seed + 1",
        },
        latency={
            "prompts": len(sample),
            "repeats": latency_repeats,
            "warmup_runs": latency_warmup,
            "intra_op_threads": 1,
            "sample_mean_tokens_untruncated": round(
                float(lengths[sample_index].mean()) if len(sample) else 0.0, 1
            ),
            "cpus": os.cpu_count(),
            "onnxruntime": onnxruntime.__version__,
        },
        encoders=encoders,
        routers=routers,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / RESULT_FILE).write_text(json.dumps(summary.as_dict(), indent=2) + "\n")
    return summary


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}%"


def _interval(bounds: Sequence[float]) -> str:
    return f"[{bounds[0]:+.3f}, {bounds[1]:+.3f}]"


def format_summary(summary: Summary) -> str:
    header = (
        f"{'encoder':<12} {'tokens':>6} {'>limit':>7} {'mean tok':>8} {'cos fp32':>8} "
        f"{'min cos':>7} {'p50 ms':>7} {'p99 ms':>7} {'mean ms':>7} {'MB':>5}"
    )
    lines = [header, "-" * len(header)]
    for e in summary.encoders:
        lines.append(
            f"{e.variant:<12} {e.max_tokens:>6} {100 * e.truncated_share:>6.1f}% "
            f"{e.mean_tokens:>8.1f} {e.mean_cosine:>8.4f} {e.min_cosine:>7.4f} "
            f"{e.latency_ms.get('p50', float('nan')):>7.2f} "
            f"{e.latency_ms.get('p99', float('nan')):>7.2f} "
            f"{e.latency_ms.get('mean', float('nan')):>7.2f} {e.onnx_mb:>5.1f}"
        )
    half, weight = _share_key(0.5), _weight_key(DEFAULT_COST_WEIGHT)
    header = (
        f"{'encoder':<12} {'router':<6} {'APGR':>6} {'dAPGR':>7} {'95% interval':>16} "
        f"{'CPT(50%)':>8} {'CPT(80%)':>8} {'agree@50%':>9} {'agree@w':>8}"
    )
    lines += ["", header, "-" * len(header)]
    for family in dict.fromkeys(r.family for r in summary.routers):
        for r in (r for r in summary.routers if r.family == family):
            lines.append(
                f"{r.variant:<12} {r.family:<6} {r.apgr:>6.3f} {r.apgr_delta:>+7.3f} "
                f"{_interval(r.apgr_delta_ci95):>16} {_pct(r.cpt50_pct):>8} {_pct(r.cpt80_pct):>8} "
                f"{r.agreement[half]:>9.3f} {r.agreement[weight]:>8.3f}"
            )
    data = summary.data
    lines.append("")
    lines.append(
        f"{data['test_prompts']} held-out prompts (split seed {data['split_seed']}), "
        f"weak {data['weak']}, strong {data['strong']}; agree@w at cost weight "
        f"{DEFAULT_COST_WEIGHT:g}; latency: {summary.latency['prompts']} prompts x "
        f"{summary.latency['repeats']}, one thread"
    )
    return "\n".join(lines)
