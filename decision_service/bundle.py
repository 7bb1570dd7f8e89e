"""Router bundles: load a directory, prove it is safe and computes what training measured.

A bundle is refused (``BundleRefused``, with a message naming the problem) when its
manifest is invalid, a file is missing, unlisted or does not match its sha256, it holds a
pickle, an ONNX file references data outside the bundle, the graph's shapes disagree with
the manifest, it was trained on a different encoder than the one loaded, or replaying its
samples does not reproduce the recorded outputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from .encoder import Encoder
from .errors import BundleRefused
from .manifest import BUNDLE_MANIFEST, BundleManifest, sha256_file
from .router import OnnxRouterHead
from .safety import looks_like_pickle, refuse_unsafe_onnx
from .signing import SIGNATURE_FILE, SignaturePolicy


@dataclass(frozen=True)
class RouterBundle:
    """A validated bundle, ready to serve."""

    directory: Path
    manifest: BundleManifest
    head: OnnxRouterHead
    signed: bool = False

    @property
    def version(self) -> str:
        return self.manifest.bundle_version

    @property
    def strategy_name(self) -> str:
        return self.manifest.strategy_name


def read_manifest(directory: Path) -> BundleManifest:
    return _parse_manifest(directory, _read_manifest_bytes(directory))


def _read_manifest_bytes(directory: Path) -> bytes:
    path = Path(directory) / BUNDLE_MANIFEST
    if not path.is_file():
        raise BundleRefused(f"{directory} is not a router bundle: {BUNDLE_MANIFEST} missing")
    return path.read_bytes()


def _parse_manifest(directory: Path, raw: bytes) -> BundleManifest:
    try:
        return BundleManifest.model_validate_json(raw)
    except ValidationError as exc:
        raise BundleRefused(
            f"{Path(directory) / BUNDLE_MANIFEST} is not a valid bundle manifest: {exc}"
        ) from exc


def load_bundle(
    directory: Path,
    encoder: Encoder,
    *,
    intra_op_threads: int = 1,
    signatures: SignaturePolicy | None = None,
) -> RouterBundle:
    """Load and validate the bundle in ``directory`` against the loaded ``encoder``."""
    directory = Path(directory)
    # The signature is checked over the very bytes that are parsed, so a manifest swapped
    # between the two reads cannot slip through.
    raw = _read_manifest_bytes(directory)
    signed = (signatures or SignaturePolicy()).check(directory, raw)
    manifest = _parse_manifest(directory, raw)
    _check_files(directory, manifest)

    if manifest.encoder != encoder.identity:
        raise BundleRefused(
            f"bundle {manifest.bundle_version} was trained on encoder "
            f"{manifest.encoder.name}/{manifest.encoder.variant} ({manifest.encoder.digest}) "
            "but the "
            f"service runs {encoder.identity.name}/{encoder.identity.variant} "
            f"({encoder.identity.digest}); retrain it on the serving encoder"
        )
    graph = manifest.router
    if graph.input_dim != encoder.dimension:
        raise BundleRefused(
            f"router input dimension {graph.input_dim} != encoder dimension {encoder.dimension}"
        )
    if graph.output_dim != len(manifest.candidates):
        raise BundleRefused(
            f"router output dimension {graph.output_dim} != {len(manifest.candidates)} candidates"
        )
    router_path = directory / graph.file
    refuse_unsafe_onnx(router_path, directory, error=BundleRefused)
    head = OnnxRouterHead(router_path, graph, intra_op_threads=intra_op_threads)
    _replay_samples(manifest, head, encoder)
    return RouterBundle(directory=directory, manifest=manifest, head=head, signed=signed)


def reverify(bundle: RouterBundle, encoder: Encoder) -> None:
    """Replay a loaded bundle's samples again (before a rollback re-activates it)."""
    _replay_samples(bundle.manifest, bundle.head, encoder)


def _check_files(directory: Path, manifest: BundleManifest) -> None:
    present = {
        p.name for p in directory.iterdir() if p.name not in (BUNDLE_MANIFEST, SIGNATURE_FILE)
    }
    for name in sorted(present):
        path = directory / name
        if path.is_dir():
            raise BundleRefused(f"bundle holds a folder {name!r}; bundles are flat")
        if looks_like_pickle(path):
            raise BundleRefused(f"bundle holds {name!r}, a pickle; pickles are never loaded")
    unlisted = present - manifest.files.keys()
    if unlisted:
        raise BundleRefused(f"bundle holds files its manifest does not list: {sorted(unlisted)}")
    for name, expected in manifest.files.items():
        path = directory / name
        if Path(name).name != name:
            raise BundleRefused(f"manifest lists {name!r}, which is not a plain file name")
        if not path.is_file():
            raise BundleRefused(f"bundle file {name!r} listed in the manifest is missing")
        if sha256_file(path) != expected:
            raise BundleRefused(f"bundle file {name!r} does not match its sha256 in the manifest")
    if manifest.router.file not in manifest.files:
        raise BundleRefused(f"router graph {manifest.router.file!r} is not listed in files")


def _replay_samples(manifest: BundleManifest, head: OnnxRouterHead, encoder: Encoder) -> None:
    embeddings = np.asarray([s.embedding for s in manifest.samples], dtype=np.float32)
    expected = np.asarray([s.quality for s in manifest.samples], dtype=np.float32)
    if embeddings.shape[1:] != (encoder.dimension,) or expected.shape[1:] != (
        len(manifest.candidates),
    ):
        raise BundleRefused(
            f"samples have shapes {embeddings.shape} -> {expected.shape}; expected "
            f"[n, {encoder.dimension}] -> [n, {len(manifest.candidates)}]"
        )
    got = head.predict(embeddings)
    router_error = float(np.max(np.abs(got - expected)))
    if router_error > manifest.parity_tolerance:
        raise BundleRefused(
            f"router outputs differ from the manifest's samples by {router_error:.3g} "
            f"(tolerance {manifest.parity_tolerance:.3g})"
        )
    # One prompt per run, as requests are served: a dynamically quantized (int8) encoder's
    # output depends on its batch mates.
    encoded = np.concatenate([encoder.encode([s.prompt]).embeddings for s in manifest.samples])
    encoder_error = float(np.max(np.abs(encoded - embeddings)))
    if encoder_error > manifest.encoder_tolerance:
        raise BundleRefused(
            f"encoder embeddings of the sample prompts differ from the manifest by "
            f"{encoder_error:.3g} (tolerance {manifest.encoder_tolerance:.3g})"
        )
