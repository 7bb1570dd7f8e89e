"""bench-quality end to end on tiny data sets (no ../shared needed), named as given."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tools.quality import bench_quality
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


@pytest.fixture
def plot_titles(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The titles bench-quality gives its plots (the PNG itself is still written)."""
    titles: list[str] = []
    real = bench_quality.plot_curves

    def record(*args: object, title: str, **kwargs: object) -> Path:
        titles.append(title)
        return real(*args, title=title, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(bench_quality, "plot_curves", record)
    return titles


def test_every_family_on_two_split_seeds(encoder_dir: Path, tmp_path: Path, plot_titles: list[str]):
    data = _write(tmp_path / "csv")
    summary = run(
        data,
        encoder_dir,
        tmp_path / "out",
        cache_dir=tmp_path / "cache",
        seeds=(1, 2),
        resamples=200,
        params={
            "knn": {"k": 5},
            "svm": {},
            "mlp": {"epochs": 20},
            "mf": {"epochs": 20, "rank": 16},
            "blend": {"clusters": [2, 3], "mlp_epochs": 20},
        },
    )
    saved = json.loads((tmp_path / "out" / "quality.json").read_text())
    assert saved["data"]["train_prompts"] == saved["data"]["test_prompts"] == 40
    assert saved["data"]["split_seeds"] == [1, 2]
    assert set(saved["families"]) == {"knn", "svm", "mlp", "mf", "blend"}
    assert saved["baselines"]["random"]["apgr"] == 0.5
    oracle = saved["baselines"]["oracle"]["apgr"]
    for family, result in saved["families"].items():
        figures = result["routellm"]
        # The split is easy to learn: every family beats random routing, none the oracle.
        assert 0.5 < figures["apgr"] <= oracle, (family, figures)
        per_seed = [v["apgr"] for v in figures["per_seed"].values()]
        assert len(per_seed) == 2 and figures["apgr"] == pytest.approx(np.mean(per_seed), abs=1e-4)
        low, high = figures["apgr_ci95"]
        assert low <= high and low - 0.1 < figures["apgr"] < high + 0.1
        assert figures["bootstrap"]["resamples"] == 200
        for seed in ("1", "2"):
            parity = result["seeds"][seed]["parity"]
            assert parity["max_abs_diff"] <= parity["tolerance"]
            assert Path(result["seeds"][seed]["bundle"], "metrics.json").is_file()
    best = saved["best"]
    assert saved["families"][best]["routellm"]["apgr"] == max(
        r["routellm"]["apgr"] for r in saved["families"].values()
    )
    for png in ("quality_cost.png", "pgr_curve.png", "model_share.png"):
        assert (tmp_path / "out" / png).read_bytes().startswith(b"\x89PNG"), png
    table = format_summary(summary)
    # mmlu_<subject>.csv files: RouteLLM's MMLU, so its published figures stand beside it.
    assert saved["data"]["benchmark"] == "mmlu" and saved["data"]["name"] == "csv"
    assert plot_titles == ["csv: 40 held-out prompts (split seed 1)"]
    assert table.splitlines()[0].startswith("csv: 40 held-out prompts per split, split seeds 1, 2")
    reference = next(line for line in table.splitlines() if line.startswith("RouteLLM best"))
    assert reference.split()[-3:] == ["0.603", "35.4%", "70.3%"]
    assert saved["published_reference"]["source"].startswith("arXiv:2406.18665, MMLU")
    assert f"best: {best}, APGR" in table
    for name in ("knn", "svm", "mlp", "mf", "blend", "random (baseline)", "oracle (baseline)"):
        assert name in table


def test_other_data_sets_get_their_own_name_and_no_mmlu_reference(
    encoder_dir: Path, tmp_path: Path, plot_titles: list[str]
):
    """A GSM8K-style responses file, as RouteLLM publishes it, under its own name."""
    rows = [f"prompt,{WEAK},{STRONG},{WEAK}_response,{STRONG}_response"]
    for line in _write(tmp_path / "src").joinpath("mmlu_toy.csv").read_text().splitlines()[1:]:
        rows.append(f'{line},"The answer, step by step:\n#### 7","#### 7"')
    data = tmp_path / "gsm8k" / "gsm8k_responses.csv"
    data.parent.mkdir()
    data.write_text("\n".join(rows) + "\n")

    def knn_only(out: str, name: str | None = None) -> dict[str, object]:
        return run(
            data,
            encoder_dir,
            tmp_path / out,
            cache_dir=tmp_path / "cache",
            seeds=(1,),
            resamples=50,
            families=("knn",),
            params={"knn": {"k": 5}},
            name=name,
        )

    summary = knn_only("out")
    table = format_summary(summary)
    saved = json.loads((tmp_path / "out" / "quality.json").read_text())
    assert summary["published_reference"] is saved["published_reference"] is None
    assert saved["data"]["name"] == "gsm8k_responses" and saved["data"]["benchmark"] is None
    assert saved["data"]["read_report"]["ignored_columns"].keys() == {
        f"{WEAK}_response",
        f"{STRONG}_response",
    }
    assert plot_titles == ["gsm8k_responses: 40 held-out prompts (split seed 1)"]
    assert table.splitlines()[0].startswith("gsm8k_responses: 40 held-out prompts per split")
    assert "MMLU" not in table and "published" not in table
    assert table.splitlines()[4].startswith("knn")

    named = knn_only("out2", name="GSM8K (RouteLLM)")
    assert plot_titles[-1] == "GSM8K (RouteLLM): 40 held-out prompts (split seed 1)"
    assert format_summary(named).startswith("GSM8K (RouteLLM): 40 held-out prompts")
    assert named["best"] == "knn"
    assert named["published_reference"] is None  # a name alone claims no reference
