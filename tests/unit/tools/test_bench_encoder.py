"""bench-encoder end to end on a tiny RouteLLM-format data set (no ../shared needed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tests.unit.tools.test_bench_quality import STRONG, WEAK, _write
from tools.quality.bench_encoder import RESULT_FILE, SEED_CONTROL, format_summary, run
from trainer.encoder_variants import MIN_COSINE
from trainer.routellm_metrics import strong_calls


def test_strong_calls_is_the_threshold_point_of_the_curve():
    advantage = np.array([0.1, 0.9, -0.2, 0.5, 0.5, 0.0])
    assert strong_calls(advantage, 0.5).tolist() == [False, True, False, True, True, False]
    # Ties go in prompt order (the stable sort the APGR curve uses).
    assert strong_calls(advantage, 2 / 6).tolist() == [False, True, False, True, False, False]
    assert not strong_calls(advantage, 0.0).any() and strong_calls(advantage, 1.0).all()


def test_every_variant_trained_on_its_own_embeddings(encoder_dir: Path, tmp_path: Path):
    data = _write(tmp_path / "csv")
    summary = run(
        data,
        encoder_dir,
        tmp_path / "out",
        cache_dir=tmp_path / "cache",
        seed=1,
        families=("knn",),
        token_limits=(12, 256),
        params={"knn": {"k": 5}},
        latency_prompts=5,
        latency_repeats=1,
        latency_warmup=1,
    )
    saved = json.loads((tmp_path / "out" / RESULT_FILE).read_text())
    assert saved == json.loads(json.dumps(summary.as_dict()))
    assert saved["data"]["test_prompts"] == 40
    assert (saved["data"]["weak"], saved["data"]["strong"]) == (WEAK, STRONG)

    encoders = {e["variant"]: e for e in saved["encoders"]}
    assert list(encoders) == ["fp32", "fp32-t12", "int8", "int8-t12"]
    assert encoders["fp32"]["mean_cosine"] == 1.0 and encoders["fp32"]["truncated_share"] == 0
    for name in ("fp32-t12", "int8-t12"):  # the toy prompts are 15-30 tokens long
        assert encoders[name]["truncated_share"] > 0.5
        assert encoders[name]["mean_tokens"] <= 12
    assert MIN_COSINE <= encoders["int8"]["mean_cosine"] < 1.0
    assert encoders["fp32-t12"]["mean_cosine"] < 1.0
    assert len({e["digest"] for e in encoders.values()}) == 4
    for e in encoders.values():
        assert set(e["latency_ms"]) == {"p50", "p99", "mean"}
        assert 0 < e["latency_ms"]["p50"] <= e["latency_ms"]["p99"]

    routers = {(r["variant"], r["family"]): r for r in saved["routers"]}
    assert set(routers) == {(v, "knn") for v in [*encoders, SEED_CONTROL]}
    reference = routers[("fp32", "knn")]
    assert reference["apgr_delta"] == 0.0 and set(reference["agreement"].values()) == {1.0}
    assert reference["apgr_delta_ci95"] == [0.0, 0.0]
    # KNN has no training randomness: another seed is the same router.
    assert set(routers[(SEED_CONTROL, "knn")]["agreement"].values()) == {1.0}
    for (variant, _), r in routers.items():
        assert 0.0 <= r["agreement"]["strong_share=0.5"] <= 1.0
        assert r["apgr_delta"] == round(r["apgr"] - reference["apgr"], 4)
        low, high = r["apgr_delta_ci95"]
        assert -1.0 < low <= high < 1.0
        bundle = json.loads(Path(r["bundle"], "manifest.json").read_text())
        expected = "fp32" if variant == SEED_CONTROL else variant
        assert bundle["encoder"]["variant"] == expected  # trained on the variant it serves with

    table = format_summary(summary)
    for name in (*encoders, SEED_CONTROL, "agree@50%"):
        assert name in table
