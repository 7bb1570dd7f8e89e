"""Ed25519 bundle signatures.

The signature covers ``manifest.json`` byte for byte; the manifest holds the sha256 of every
other file, which the loader checks, so one signature vouches for the whole bundle. It is
stored base64-encoded in ``manifest.sig`` beside the manifest.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .errors import BundleRefused
from .manifest import BUNDLE_MANIFEST

SIGNATURE_FILE = "manifest.sig"


def load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read an Ed25519 public key from {path}: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path} holds a {type(key).__name__}, not an Ed25519 public key")
    return key


def sign_bundle(directory: Path, private_key: Ed25519PrivateKey) -> Path:
    """Write ``manifest.sig`` for the bundle in ``directory`` (used by publishers and tests)."""
    directory = Path(directory)
    signature = private_key.sign((directory / BUNDLE_MANIFEST).read_bytes())
    path = directory / SIGNATURE_FILE
    path.write_text(base64.b64encode(signature).decode("ascii") + "\n")
    return path


@dataclass(frozen=True)
class SignaturePolicy:
    """What the loader demands of ``manifest.sig``."""

    public_key: Ed25519PublicKey | None = None
    required: bool = False

    def check(self, directory: Path, manifest_bytes: bytes) -> bool:
        """Refuse a bundle the policy rejects; True when a signature was verified."""
        path = Path(directory) / SIGNATURE_FILE
        if not path.is_file():
            if self.required:
                raise BundleRefused(
                    f"bundle in {directory} is unsigned and signed bundles are required; "
                    f"publish it with a {SIGNATURE_FILE}"
                )
            return False
        if self.public_key is None:
            # Nothing to verify against: the signature is neither trusted nor a reason to refuse.
            return False
        try:
            signature = base64.b64decode(path.read_bytes().strip(), validate=True)
            self.public_key.verify(signature, manifest_bytes)
        except (InvalidSignature, binascii.Error, ValueError) as exc:
            raise BundleRefused(
                f"bundle in {directory} has a signature that does not verify with the "
                "configured public key; it was altered or signed by another key"
            ) from exc
        return True
