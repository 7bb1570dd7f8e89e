"""``python -m trainer``: synth, train and build end to end (reusing the cached encoder)."""

from __future__ import annotations

from pathlib import Path

import pytest

from decision_service.bundle import load_bundle
from decision_service.encoder import OnnxEncoder
from trainer.cli import main


def test_synth_then_train_prints_table_and_bundle_path(
    encoder_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    assert main(["synth", "--out", str(tmp_path / "data"), "-n", "60", "--seed", "2"]) == 0
    assert (tmp_path / "data" / "routing_data.jsonl").is_file()
    capsys.readouterr()
    code = main(
        [
            "train",
            "--router",
            "knn",
            "--k",
            "5",
            "--data",
            str(tmp_path / "data"),
            "--encoder",
            str(encoder_dir),
            "--out",
            str(tmp_path / "bundles"),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert any(line.startswith("router (knn)") for line in out)
    assert any(line.startswith("oracle") for line in out)
    bundle = Path(out[-1])
    assert bundle.parent == tmp_path / "bundles" and bundle.name.startswith("knn-")
    load_bundle(bundle, OnnxEncoder(encoder_dir))


def test_build_reuses_a_valid_encoder_and_points_at_fresh_bundles(
    encoder_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    (artifacts / "encoder").symlink_to(encoder_dir, target_is_directory=True)
    assert main(["build", "--out", str(artifacts), "-n", "90", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "build finished in" in out
    assert (artifacts / "encoder").is_symlink()  # valid, so not re-exported
    encoder = OnnxEncoder(artifacts / "encoder")
    for router_type in ("knn", "mlp"):
        pointer = artifacts / router_type
        assert pointer.is_symlink()
        assert load_bundle(pointer, encoder).manifest.router_type == router_type
    assert main(["encoder", "--out", str(artifacts / "encoder")]) == 0
    assert "already validates" in capsys.readouterr().out


def test_unusable_data_is_a_one_line_error_with_exit_code_2(
    encoder_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    data = tmp_path / "data"
    data.mkdir()
    (data / "gsm8k.csv").write_text('prompt,verdict\n"What is 2+2?",maybe\n')
    args = ["train", "--router", "knn", "--data", str(data), "--out", str(tmp_path / "b")]
    assert main([*args, "--encoder", str(encoder_dir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {data / 'gsm8k.csv'}, line 1: no label column")
    assert "to fix:" in err and "Traceback" not in err

    assert main([*args, "--encoder", str(tmp_path / "no-encoder")]) == 2
    assert "is not an encoder directory" in capsys.readouterr().err
