"""The registry's read side: download a version and its encoder, verify, then make them visible.

Local layout written here (what the service reads with ``--bundle DEST/current``; its
encoder defaults to ``DEST/encoder``)::

    DEST/<version>/            a verified bundle: manifest.json, manifest.sig?, its files
    DEST/encoders/<key>/       a verified encoder (key: ``encoder_key`` of its identity)
    DEST/current -> <version>  swapped atomically, after the encoder link
    DEST/encoder -> encoders/<key>

Everything is downloaded into a hidden staging folder beside its target and checked there:
each file's sha256 against the manifest, the signature over the manifest's bytes (when the
policy asks), plain file names only, no unlisted files. Only a folder that passed is renamed
into place, so a partial or tampered download is never visible under a version's name.
This module imports neither torch nor scikit-learn: it runs in the service image.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from decision_service.atomic import point_symlink, staged
from decision_service.errors import BundleRefused
from decision_service.manifest import (
    BUNDLE_MANIFEST,
    ENCODER_MANIFEST,
    BundleManifest,
    EncoderIdentity,
    EncoderManifest,
    sha256_file,
)
from decision_service.signing import SIGNATURE_FILE, SignaturePolicy

from .errors import RegistryError, VerificationFailed
from .store import ObjectStore

CURRENT = "current"
ENCODER_LINK = "encoder"
ENCODERS = "encoders"


def encoder_key(identity: EncoderIdentity) -> str:
    """Content address of an encoder: sha256 of its canonical identity.

    The identity holds the sha256 of the graph and of the tokenizer plus the settings that
    change embeddings, so equal keys mean interchangeable encoders and bundles trained on
    one encoder share one stored copy.
    """
    canonical = json.dumps(identity.model_dump(), sort_keys=True).encode()
    return hashlib.sha256(canonical).hexdigest()


def version_key(name: str, version: str, file: str = "") -> str:
    return f"{name}/versions/{version}/{file}".rstrip("/")


def encoder_object_key(name: str, key: str, file: str = "") -> str:
    return f"{name}/{ENCODERS}/{key}/{file}".rstrip("/")


def _plain(name: str) -> bool:
    return bool(name) and Path(name).name == name and not name.startswith(".")


def parse_manifest(raw: bytes, where: str) -> BundleManifest:
    try:
        manifest = BundleManifest.model_validate_json(raw)
    except ValidationError as exc:
        raise VerificationFailed(f"{where}: not a valid bundle manifest: {exc}") from exc
    for name in manifest.files:
        # A manifest naming "../x" would make a downloader write outside its staging folder.
        if not _plain(name) or name in (BUNDLE_MANIFEST, SIGNATURE_FILE):
            raise VerificationFailed(f"{where}: manifest lists {name!r}, not a plain file name")
    return manifest


def verify_bundle_dir(directory: Path, policy: SignaturePolicy) -> BundleManifest:
    """The manifest of the bundle in ``directory`` once its signature and hashes check out."""
    directory = Path(directory)
    path = directory / BUNDLE_MANIFEST
    if not path.is_file():
        raise VerificationFailed(f"{directory}: {BUNDLE_MANIFEST} missing")
    raw = path.read_bytes()
    try:
        policy.check(directory, raw)
    except BundleRefused as exc:
        raise VerificationFailed(str(exc)) from exc
    manifest = parse_manifest(raw, str(directory))
    present = {p.name for p in directory.iterdir()} - {BUNDLE_MANIFEST, SIGNATURE_FILE}
    if present != set(manifest.files):
        raise VerificationFailed(
            f"{directory}: files {sorted(present)} differ from the manifest's "
            f"{sorted(manifest.files)}"
        )
    for name, digest in manifest.files.items():
        if not (directory / name).is_file() or sha256_file(directory / name) != digest:
            raise VerificationFailed(f"{directory}: {name} does not match its sha256")
    return manifest


def verify_encoder_dir(directory: Path, identity: EncoderIdentity, *, hashes: bool = True) -> None:
    """Refuse an encoder folder that is not exactly the encoder ``identity`` names.

    ``hashes=False`` checks the identity only: for a folder this module already verified
    in full before renaming it into place (re-hashing 90 MB on every sync costs CPU the
    service needs; the service hashes it again when it loads it).
    """
    path = Path(directory) / ENCODER_MANIFEST
    try:
        manifest = EncoderManifest.model_validate_json(path.read_bytes())
    except (OSError, ValidationError) as exc:
        raise VerificationFailed(f"{directory}: no valid {ENCODER_MANIFEST}: {exc}") from exc
    if manifest.identity != identity:
        raise VerificationFailed(
            f"{directory}: encoder {manifest.identity.digest} is not {identity.digest}"
        )
    files = {
        manifest.onnx_file: identity.onnx_sha256,
        manifest.tokenizer_file: identity.tokenizer_sha256,
    }
    for name, digest in files.items():
        if not _plain(name):
            raise VerificationFailed(f"{directory}: {ENCODER_MANIFEST} names {name!r}")
        file = Path(directory) / name
        if not file.is_file() or (hashes and sha256_file(file) != digest):
            raise VerificationFailed(f"{directory}: encoder file {name} does not match its sha256")


@dataclass
class Fetched:
    version: str
    bundle_dir: Path
    encoder_dir: Path
    downloaded_bytes: int = 0
    bundle_downloaded: bool = False
    encoder_downloaded: bool = False


class Fetcher:
    """Materialises registry versions under ``dest`` (layout in the module docstring).

    ``between_objects`` runs before every object GET: a sync agent passes its lease check
    there, so a download whose fleet slot was lost stops instead of exceeding the bound.
    """

    def __init__(
        self,
        store: ObjectStore,
        name: str,
        dest: Path,
        policy: SignaturePolicy | None = None,
        *,
        between_objects: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = store
        self.name = name
        self.dest = Path(dest)
        self.policy = policy or SignaturePolicy()
        self.between_objects = between_objects
        self.downloaded_bytes = 0

    def _get(self, key: str, path: Path, *, required: bool = True) -> bool:
        self.between_objects()
        size = self.store.fetch(key, path)
        if size is None:
            if required:
                raise RegistryError(f"{self.store.uri}/{key} is missing")
            return False
        self.downloaded_bytes += size
        return True

    def local_bundle(self, version: str) -> BundleManifest | None:
        """The manifest of ``DEST/<version>`` when it is already here and verifies."""
        directory = self.dest / version
        if not directory.is_dir():
            return None
        try:
            manifest = verify_bundle_dir(directory, self.policy)
        except VerificationFailed:
            return None
        return manifest if manifest.bundle_version == version else None

    def local_encoder(self, identity: EncoderIdentity) -> Path | None:
        directory = self.dest / ENCODERS / encoder_key(identity)
        try:
            verify_encoder_dir(directory, identity, hashes=False)
        except VerificationFailed:
            return None
        return directory

    def fetch(self, version: str) -> Fetched:
        """Make ``DEST/<version>`` and its encoder present and verified (downloading if needed)."""
        start = self.downloaded_bytes
        manifest = self.local_bundle(version)
        bundle_downloaded = manifest is None
        if manifest is None:
            manifest = self._download_bundle(version)
        encoder_dir = self.local_encoder(manifest.encoder)
        encoder_downloaded = encoder_dir is None
        if encoder_dir is None:
            encoder_dir = self._download_encoder(manifest.encoder)
        return Fetched(
            version=version,
            bundle_dir=self.dest / version,
            encoder_dir=encoder_dir,
            downloaded_bytes=self.downloaded_bytes - start,
            bundle_downloaded=bundle_downloaded,
            encoder_downloaded=encoder_downloaded,
        )

    def _download_bundle(self, version: str) -> BundleManifest:
        if not _plain(version):
            raise VerificationFailed(f"version {version!r} is not a plain name")
        with staged(self.dest, version) as staging:
            raw_path = staging.path / BUNDLE_MANIFEST
            if not self._get(version_key(self.name, version, BUNDLE_MANIFEST), raw_path):
                raise RegistryError(f"version {version!r} is not in the registry")
            manifest = parse_manifest(raw_path.read_bytes(), f"{version}/{BUNDLE_MANIFEST}")
            if manifest.bundle_version != version:
                raise VerificationFailed(f"{version}'s manifest names {manifest.bundle_version}")
            sig_key = version_key(self.name, version, SIGNATURE_FILE)
            self._get(sig_key, staging.path / SIGNATURE_FILE, required=False)
            for name in sorted(manifest.files):
                self._get(version_key(self.name, version, name), staging.path / name)
            verify_bundle_dir(staging.path, self.policy)
            staging.publish(self.dest / version, replace=True)
        return manifest

    def _download_encoder(self, identity: EncoderIdentity) -> Path:
        key = encoder_key(identity)
        parent = self.dest / ENCODERS
        with staged(parent, key) as staging:
            path = staging.path / ENCODER_MANIFEST
            if not self._get(encoder_object_key(self.name, key, ENCODER_MANIFEST), path):
                raise RegistryError(
                    f"encoder {identity.name}/{identity.variant} ({key[:16]}) is not in the "
                    "registry: publish the bundle again with its encoder"
                )
            try:
                manifest = EncoderManifest.model_validate_json(path.read_bytes())
            except ValidationError as exc:
                raise VerificationFailed(f"encoder {key[:16]}: invalid manifest: {exc}") from exc
            for name in (manifest.onnx_file, manifest.tokenizer_file):
                if not _plain(name):
                    raise VerificationFailed(f"encoder {key[:16]} names {name!r}")
                self._get(encoder_object_key(self.name, key, name), staging.path / name)
            verify_encoder_dir(staging.path, identity)
            return staging.publish(parent / key, replace=True)


def installed_version(dest: Path) -> str | None:
    """The version ``DEST/current`` points at (None before the first install)."""
    link = Path(dest) / CURRENT
    return Path(link.readlink()).name if link.is_symlink() else None


def activate(dest: Path, fetched: Fetched) -> None:
    """Point ``DEST/encoder`` then ``DEST/current`` at what ``fetch`` made present.

    The encoder link goes first: a service (re)starting in between sees the old bundle with
    the new encoder and refuses to start on an encoder mismatch rather than serve a
    mismatch, and the next swap completes the pair. A running service keeps the encoder it
    loaded, so for it only the bundle link matters.
    """
    dest = Path(dest)
    encoder_target = f"{ENCODERS}/{fetched.encoder_dir.name}"
    link = dest / ENCODER_LINK
    if not (link.is_symlink() and str(link.readlink()) == encoder_target):
        point_symlink(link, encoder_target)
    point_symlink(dest / CURRENT, fetched.version)
