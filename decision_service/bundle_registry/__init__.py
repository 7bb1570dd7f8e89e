"""The bundle registry: immutable versions, shared encoders, channel pointers, a quality gate.

Layout (identical on a local directory and under an S3 prefix)::

    <root>/<name>/versions/<version>/manifest.json   the bundle, exactly as trained:
    <root>/<name>/versions/<version>/manifest.sig      (Ed25519 signature, when signed)
    <root>/<name>/versions/<version>/router.onnx       every file the manifest lists
    <root>/<name>/versions/<version>/metrics.json      (held-out figures)
    <root>/<name>/versions/<version>/lineage.json      (data digest, rows, code, time)
    <root>/<name>/encoders/<key>/encoder.json          the encoder bundles name, stored once:
    <root>/<name>/encoders/<key>/encoder.onnx          key = sha256 of its identity
    <root>/<name>/encoders/<key>/tokenizer.json        (``fetch.encoder_key``)
    <root>/<name>/channels/<channel>.json              {"version": ..., "history": [...], ...}
    <root>/<name>/events/<utc>-<id>.json               one audit record per publish/promote/rollback

A version (or encoder) is written file by file with its manifest last, each with "create
only" semantics: it is visible once its manifest exists and is never overwritten. The
signature covers the bundle manifest, which holds the encoder's identity (with the sha256 of
its graph and tokenizer), so one signature vouches for the bundle and the encoder it needs.

This package is the registry client of both the trainer (publish, promote, rollback) and
the sync agent in the service image (``fetch``, ``notify``): it imports no torch or
scikit-learn, and boto3 only when an ``s3://`` store is opened.
"""

from .errors import GateRefused, RegistryError, StoreUnavailable, VerificationFailed
from .registry import Gate, Registry
from .store import LocalStore, ObjectStore, S3Store, open_store

__all__ = [
    "Gate",
    "GateRefused",
    "LocalStore",
    "ObjectStore",
    "Registry",
    "RegistryError",
    "S3Store",
    "StoreUnavailable",
    "VerificationFailed",
    "open_store",
]
