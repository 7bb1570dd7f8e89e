"""bench-quality end to end on a tiny RouteLLM-format data set (no ../shared needed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tools.quality.bench_quality import format_summary, run

STRONG, WEAK = "gpt-4-1106-preview", "mistralai/Mixtral-8x7B-Instruct-v0.1"


def _write(directory: Path, n: int = 80) -> Path:
    """Arithmetic prompts the weak model gets right, history prompts only the strong one."""
    rng = np.random.default_rng(5)
    rows = [f"prompt,{WEAK},{STRONG}"]
    for i in range(n):
        if i % 2:
            text = f"What is {i} plus {i + 3}?\\nA. {2 * i + 3}\\nB. {i}\\nAnswer:"
            weak, strong = rng.random() < 0.9, rng.random() < 0.95
        else:
            text = f"In which century did treaty number {i} of the Holy Roman Empire end?"
            weak, strong = rng.random() < 0.2, rng.random() < 0.9
        rows.append(f'"{text}",{weak},{strong}')
    directory.mkdir(parents=True)
    (directory / "mmlu_toy.csv").write_text("\n".join(rows) + "\n")
    return directory


def test_every_family_on_a_half_split(encoder_dir: Path, tmp_path: Path):
    data = _write(tmp_path / "csv")
    summary = run(
        data,
        encoder_dir,
        tmp_path / "out",
        cache_dir=tmp_path / "cache",
        seed=1,
        params={
            "knn": {"k": 5},
            "svm": {},
            "mlp": {"epochs": 20},
            "mf": {"epochs": 20, "rank": 16},
        },
    )
    saved = json.loads((tmp_path / "out" / "quality.json").read_text())
    assert saved["data"]["train_prompts"] == saved["data"]["test_prompts"] == 40
    assert set(saved["families"]) == {"knn", "svm", "mlp", "mf"}
    assert saved["baselines"]["random"]["apgr"] == 0.5
    oracle = saved["baselines"]["oracle"]["apgr"]
    for family, result in saved["families"].items():
        figures = result["routellm"]["router"]
        # The split is easy to learn: every family beats random routing, none the oracle.
        assert 0.5 < figures["apgr"] <= oracle, (family, figures)
        parity = result["parity"]
        assert parity["max_abs_diff"] <= parity["tolerance"]
        assert Path(result["bundle"], "metrics.json").is_file()
    png = (tmp_path / "out" / "quality_cost.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    table = format_summary(summary)
    reference = next(line for line in table.splitlines() if line.startswith("RouteLLM best"))
    assert reference.split()[-3:] == ["0.603", "35.4%", "70.3%"]
    for name in ("knn", "svm", "mlp", "mf", "random (baseline)", "oracle (baseline)", STRONG):
        assert name in table
