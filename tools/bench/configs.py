"""The encoder configurations `make bench` compares, and the bundles it builds for them once.

    ARTIFACTS/encoder, knn, mlp, data      the default, from ``python -m trainer build``
                                           (int8-t128 unless built with --encoder-variant)
    ARTIFACTS/encoder-fp32                 the exported fp32 encoder the default derives from
    ARTIFACTS/knn-k10                      a second KNN version (RSS with three loaded)
    ARTIFACTS/fp32/encoder                 -> ../encoder-fp32: the reference configuration
    ARTIFACTS/fp32/knn, mlp, knn-k10       the same routers trained on the fp32 encoder
    ARTIFACTS/.bench-built                 stamp: the inputs the above were built from

Each configuration keeps the ``trainer build`` layout (``encoder`` beside the bundle
pointers), and a bundle pins its encoder's hash, so the fp32 bundles only load with the fp32
encoder. The default configuration comes first: every BRIEF target is judged on it; fp32 at
256 tokens is measured beside it as the reference (skipped when the default is fp32). The
build is skipped while the stamp matches both encoders and the data and every pointer
resolves; delete the stamp to force it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

STAMP = ".bench-built"
RECIPE = 2  # bump when what ensure_built writes changes
SEED = 7  # the split and training seed `python -m trainer build` uses
SOURCE_ENCODER = "encoder-fp32"  # as trainer.pipeline.SOURCE_ENCODER (not imported: numpy)
REFERENCE = "fp32"
# pointer name -> (router type, parameters); "knn" and "mlp" as `trainer build` trains them.
ROUTERS: dict[str, tuple[str, Mapping[str, object]]] = {
    "knn": ("knn", {}),
    "mlp": ("mlp", {}),
    "knn-k10": ("knn", {"k": 10}),
}


@dataclass(frozen=True)
class EncoderConfig:
    """An encoder and the KNN bundle trained on it, laid out as ``trainer build`` does."""

    name: str
    root: Path
    default: bool = False

    @property
    def encoder_dir(self) -> Path:
        return self.root / "encoder"

    @property
    def bundle_dir(self) -> Path:
        return self.root / "knn"

    @property
    def rss_bundles(self) -> tuple[Path, Path, Path]:
        """Three different bundle versions on this encoder: the service keeps three loaded."""
        return (self.root / "knn", self.root / "mlp", self.root / "knn-k10")

    def service_args(self) -> list[str]:
        return ["--encoder", str(self.encoder_dir)]


def encoder_variant(encoder_dir: Path) -> str:
    """The variant name in ``encoder_dir/encoder.json`` (``int8-t128``, ``fp32`` ...)."""
    manifest = json.loads((encoder_dir / "encoder.json").read_text())
    return str(manifest["identity"]["variant"])


def configurations(artifacts: Path) -> list[EncoderConfig]:
    """The default configuration first, then the fp32 reference unless the default is fp32."""
    default = EncoderConfig(encoder_variant(artifacts / "encoder"), artifacts, default=True)
    if default.name == REFERENCE:
        return [default]
    return [default, EncoderConfig(REFERENCE, artifacts / REFERENCE)]


def _inputs_key(artifacts: Path) -> dict[str, object]:
    digest = hashlib.sha256()
    files = [artifacts / "encoder/encoder.json", artifacts / SOURCE_ENCODER / "encoder.json"]
    for path in [*sorted((artifacts / "data").iterdir()), *files]:
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return {"recipe": RECIPE, "inputs_sha256": digest.hexdigest()}


def _is_built(artifacts: Path, key: dict[str, object]) -> bool:
    stamp = artifacts / STAMP
    if not stamp.is_file() or json.loads(stamp.read_text()) != key:
        return False
    return all(
        (config.encoder_dir / "encoder.json").is_file()
        and all((b / "manifest.json").is_file() for b in config.rss_bundles)
        for config in configurations(artifacts)
    )


def _train(root: Path, data_dir: Path, names: list[str], cache_dir: Path | None) -> dict[str, Path]:
    """Train the routers ``names`` (keys of ROUTERS) on ``root/encoder``; point root/<name>."""
    from decision_service.atomic import point_symlink
    from decision_service.encoder import OnnxEncoder
    from trainer.pipeline import prepare, train_bundle

    encoder = OnnxEncoder(root / "encoder", intra_op_threads=2)
    prepared = prepare(data_dir, encoder, split_seed=SEED, cache_dir=cache_dir)
    written: dict[str, Path] = {}
    for name in names:
        router_type, params = ROUTERS[name]
        result = train_bundle(prepared, router_type, encoder, root, seed=SEED, params=params)
        point_symlink(root / name, result.directory.name)
        written[name] = root / name
    return written


def ensure_built(artifacts: Path, cache_dir: Path | None = None) -> list[EncoderConfig]:
    """The configurations, building what the bench adds to ARTIFACTS if stale."""
    if not (artifacts / SOURCE_ENCODER / "encoder.json").is_file():
        raise SystemExit(
            f"{artifacts / SOURCE_ENCODER} is missing: run `make artifacts` (python -m trainer "
            f"build --out {artifacts}) first"
        )
    key = _inputs_key(artifacts)
    if _is_built(artifacts, key):
        return configurations(artifacts)
    found = configurations(artifacts)
    data_dir = artifacts / "data"
    print("building the bench's extra bundles (once; cached by ARTIFACTS/.bench-built) ...")
    _train(found[0].root, data_dir, ["knn-k10"], cache_dir)
    for reference in found[1:]:
        reference.root.mkdir(exist_ok=True)
        link = reference.encoder_dir
        if link.is_symlink() or link.exists():
            link.unlink()
        os.symlink(Path("..") / SOURCE_ENCODER, link, target_is_directory=True)
        _train(reference.root, data_dir, list(ROUTERS), cache_dir)
    (artifacts / STAMP).write_text(json.dumps(key) + "\n")
    return found
