"""``python -m trainer``: synth, train and build end to end (reusing the cached encoder)."""

from __future__ import annotations

from pathlib import Path

import pytest

from decision_service.bundle import load_bundle
from decision_service.encoder import OnnxEncoder
from trainer.cli import main
from trainer.defaults import BUILD_ENCODER_VARIANTS, DEFAULT_ENCODER_VARIANT
from trainer.pipeline import SOURCE_ENCODER, parse_variant


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


def test_build_serves_int8_t128_by_default_and_fp32_is_one_flag_away(
    encoder_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    # The layout before the split: the fp32 export at ARTIFACTS/encoder. It is moved to
    # ARTIFACTS/encoder-fp32 (the symlink itself, no re-export) and the default derived.
    (artifacts / "encoder").symlink_to(encoder_dir, target_is_directory=True)
    assert main(["build", "--out", str(artifacts), "-n", "90", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "build finished in" in out and "(int8-t128)" in out
    source = artifacts / SOURCE_ENCODER
    assert source.is_symlink() and source.resolve() == encoder_dir.resolve()
    assert not (artifacts / "encoder").is_symlink()  # derived, never written through the link
    encoder = OnnxEncoder(artifacts / "encoder")
    assert (encoder.identity.variant, encoder.identity.max_tokens) == ("int8-t128", 128)
    for router_type in ("knn", "mlp"):
        pointer = artifacts / router_type
        assert pointer.is_symlink()
        bundle = load_bundle(pointer, encoder)  # trained on the variant: its hash is pinned
        assert bundle.manifest.router_type == router_type
    assert main(["encoder", "--out", str(source)]) == 0
    assert "already validates" in capsys.readouterr().out

    args = ["build", "--out", str(artifacts), "-n", "90", "--seed", "3"]
    assert main([*args, "--encoder-variant", "fp32"]) == 0
    assert source.is_symlink()  # the source is reused, not exported again
    fp32 = OnnxEncoder(artifacts / "encoder")
    assert fp32.identity == OnnxEncoder(encoder_dir).identity
    load_bundle(artifacts / "knn", fp32)
    with pytest.raises(SystemExit):
        main([*args, "--encoder-variant", "int4"])


def test_encoder_variant_names_parse_to_graph_and_token_limit():
    assert parse_variant("int8-t128") == (True, 128)
    assert parse_variant("fp32") == (False, 256)
    assert parse_variant("fp32-t64") == (False, 64)
    for bad in ("int4", "int8-t512", "fp32-x", "int8-t0"):
        with pytest.raises(ValueError):
            parse_variant(bad)
    assert DEFAULT_ENCODER_VARIANT in BUILD_ENCODER_VARIANTS


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
