"""Object stores behind the registry: a local directory or an S3 bucket (MinIO works too).

Keys are ``/``-separated relative paths. ``put`` with ``if_absent=True`` refuses to
overwrite (raises ``FileExistsError``), which is how published versions stay immutable.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse


class ObjectStore(Protocol):
    uri: str

    def get(self, key: str) -> bytes | None: ...

    def put(self, key: str, data: bytes, *, if_absent: bool = False) -> None: ...

    def list(self, prefix: str) -> list[str]: ...


class LocalStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.uri = str(self.root)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError(f"key {key!r} leaves the registry root")
        return path

    def get(self, key: str) -> bytes | None:
        path = self._path(key)
        return path.read_bytes() if path.is_file() else None

    def put(self, key: str, data: bytes, *, if_absent: bool = False) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o644)
            if if_absent:
                os.link(tmp, path)  # fails with FileExistsError if path exists: no overwrite
            else:
                os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def list(self, prefix: str) -> list[str]:
        base = self._path(prefix) if prefix else self.root
        if not base.is_dir():
            return []
        return sorted(
            str(p.relative_to(self.root)).replace(os.sep, "/")
            for p in base.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        )


class S3Store:
    """``s3://bucket/prefix``; ``endpoint_url`` for MinIO or moto (else AWS_ENDPOINT_URL)."""

    def __init__(
        self, bucket: str, prefix: str = "", *, endpoint_url: str | None = None, client: Any = None
    ) -> None:
        import boto3

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.uri = f"s3://{bucket}/{self.prefix}".rstrip("/")
        self.client = client or boto3.client("s3", endpoint_url=endpoint_url)

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def get(self, key: str) -> bytes | None:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        except self.client.exceptions.NoSuchKey:
            return None
        body: bytes = response["Body"].read()
        return body

    def put(self, key: str, data: bytes, *, if_absent: bool = False) -> None:
        extra: dict[str, str] = {}
        if if_absent:
            if self.get(key) is not None:
                raise FileExistsError(f"{self.uri}/{key} already exists")
            extra["IfNoneMatch"] = "*"  # conditional write where the server supports it
        try:
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, **extra)
        except self.client.exceptions.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in {"PreconditionFailed", "ConditionalRequestConflict"}:
                raise FileExistsError(f"{self.uri}/{key} already exists") from exc
            raise

    def list(self, prefix: str) -> list[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        full = self._key(prefix)
        keys = []
        for page in paginator.paginate(Bucket=self.bucket, Prefix=full):
            for item in page.get("Contents", []):
                key = item["Key"]
                keys.append(key[len(self.prefix) + 1 :] if self.prefix else key)
        return sorted(keys)


def open_store(uri: str, *, endpoint_url: str | None = None) -> ObjectStore:
    """``s3://bucket[/prefix]``: ``S3Store``; ``file:///dir`` or a plain path: ``LocalStore``."""
    parsed = urlparse(uri)
    if parsed.scheme == "s3":
        endpoint = endpoint_url or os.environ.get("ROUTEIQ_S3_ENDPOINT") or None
        return S3Store(parsed.netloc, parsed.path, endpoint_url=endpoint)
    if parsed.scheme == "file":
        return LocalStore(Path(parsed.path))
    if parsed.scheme:
        raise ValueError(f"unsupported registry URI {uri!r}: use a path, file:// or s3://")
    return LocalStore(Path(uri))
