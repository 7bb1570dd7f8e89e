"""The encoder configurations `make bench` compares, and the bundles it builds for them once.

    ARTIFACTS/encoder, knn, mlp, data      fp32, from ``python -m trainer build``
    ARTIFACTS/knn-k10                      a second fp32 KNN version (RSS with three loaded)
    ARTIFACTS/int8/encoder                 ``trainer quantize`` of ARTIFACTS/encoder
    ARTIFACTS/int8/knn, mlp, knn-k10       the same routers trained on the int8 encoder
    ARTIFACTS/.bench-built                 stamp: the inputs the above were built from

Each configuration keeps the ``trainer build`` layout (``encoder`` beside the bundle
pointers), and a bundle pins its encoder's hash, so the int8 bundles only load with the int8
encoder. The build is skipped while the stamp matches the fp32 encoder and the data and every
pointer resolves; delete the stamp to force it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

STAMP = ".bench-built"
RECIPE = 1  # bump when what ensure_built writes changes
SEED = 7  # the split and training seed `python -m trainer build` uses
INT8_ROOT = "int8"
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


def configurations(artifacts: Path) -> list[EncoderConfig]:
    return [EncoderConfig("fp32", artifacts), EncoderConfig("int8", artifacts / INT8_ROOT)]


def _inputs_key(artifacts: Path) -> dict[str, object]:
    digest = hashlib.sha256()
    for path in [*sorted((artifacts / "data").iterdir()), artifacts / "encoder/encoder.json"]:
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
    """The fp32 and int8 configurations, building what the bench adds to ARTIFACTS if stale."""
    key = _inputs_key(artifacts)
    if _is_built(artifacts, key):
        return configurations(artifacts)
    from trainer.encoder_variants import quantize_int8

    fp32, int8 = configurations(artifacts)
    data_dir = artifacts / "data"
    print("building the bench's extra bundles (once; cached by ARTIFACTS/.bench-built) ...")
    _train(fp32.root, data_dir, ["knn-k10"], cache_dir)
    variant = quantize_int8(fp32.encoder_dir, int8.encoder_dir)
    print(f"  int8 encoder: cosine to fp32 min {variant.min_cosine:.3f}", flush=True)
    _train(int8.root, data_dir, list(ROUTERS), cache_dir)
    (artifacts / STAMP).write_text(json.dumps(key) + "\n")
    return [fp32, int8]
