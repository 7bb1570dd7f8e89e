"""The bundle registry: immutable versions, channel pointers, a quality gate, pull.

Layout (identical on a local directory and under an S3 prefix)::

    <root>/<name>/versions/<version>/manifest.json   the bundle, exactly as trained:
    <root>/<name>/versions/<version>/router.onnx       every file the manifest lists
    <root>/<name>/versions/<version>/metrics.json      (held-out figures)
    <root>/<name>/versions/<version>/lineage.json      (data digest, rows, code, time)
    <root>/<name>/channels/<channel>.json              {"version": ..., "history": [...], ...}
    <root>/<name>/events/<utc>-<id>.json               one audit record per publish/promote/rollback

A version is written file by file with ``manifest.json`` last, each with "create only"
semantics: it is visible once its manifest exists and is never overwritten.
"""

from trainer.registry.registry import GateRefused, Registry, RegistryError
from trainer.registry.store import LocalStore, ObjectStore, S3Store, open_store

__all__ = [
    "GateRefused",
    "LocalStore",
    "ObjectStore",
    "Registry",
    "RegistryError",
    "S3Store",
    "open_store",
]
