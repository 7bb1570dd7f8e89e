"""Object stores behind the registry: a local directory or an S3 bucket (MinIO works too).

Keys are ``/``-separated relative paths. ``put`` with ``if_absent=True`` refuses to
overwrite (raises ``FileExistsError``), which is how published versions stay immutable.
``fetch`` streams one object to a file with a single GET, so a large encoder never sits in
memory and one download is one request the store sees. A store that does not answer raises
``StoreUnavailable``; a missing key is ``None``/``False``, not an error.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from .errors import StoreUnavailable

_CHUNK = 1 << 20


class ObjectStore(Protocol):
    uri: str

    def get(self, key: str) -> bytes | None: ...

    def fetch(self, key: str, path: Path) -> int | None:
        """Write the object to ``path``; its size, or None when there is no such key."""
        ...

    def exists(self, key: str) -> bool: ...

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

    def fetch(self, key: str, path: Path) -> int | None:
        source = self._path(key)
        if not source.is_file():
            return None
        shutil.copyfile(source, path)
        return Path(path).stat().st_size

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

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
    """``s3://bucket/prefix``; ``endpoint_url`` for MinIO or moto (else AWS_ENDPOINT_URL).

    Timeouts are short and retries few on purpose: a sync agent facing a dead endpoint must
    learn it in seconds and fall back to its own backoff, not sit in boto3's for a minute.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        client: Any = None,
        connect_timeout_s: float = 3.0,
        read_timeout_s: float = 30.0,
        client_name: str | None = None,
    ) -> None:
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError, ClientError

        self._unavailable = (BotoCoreError, ClientError, OSError)
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.uri = f"s3://{bucket}/{self.prefix}".rstrip("/")
        config = Config(
            connect_timeout=connect_timeout_s,
            read_timeout=read_timeout_s,
            retries={"max_attempts": 2, "mode": "standard"},
            # Names the caller in the store's access logs (e.g. which agent downloaded what).
            user_agent_extra=client_name,
        )
        self.client = client or boto3.client("s3", endpoint_url=endpoint_url, config=config)

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _missing(self, exc: Exception) -> bool:
        response = getattr(exc, "response", None) or {}
        code = str(response.get("Error", {}).get("Code", ""))
        return code in {"NoSuchKey", "404", "NotFound"}

    def _open(self, key: str) -> Any:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        except self._unavailable as exc:
            if self._missing(exc):
                return None
            raise StoreUnavailable(f"{self.uri}/{key}: {exc}") from exc

    def get(self, key: str) -> bytes | None:
        response = self._open(key)
        if response is None:
            return None
        try:
            body: bytes = response["Body"].read()
        except self._unavailable as exc:
            raise StoreUnavailable(f"{self.uri}/{key}: {exc}") from exc
        finally:
            response["Body"].close()
        return body

    def fetch(self, key: str, path: Path) -> int | None:
        response = self._open(key)
        if response is None:
            return None
        size = 0
        try:
            with open(path, "wb") as fh:
                for chunk in response["Body"].iter_chunks(_CHUNK):
                    fh.write(chunk)
                    size += len(chunk)
        except self._unavailable as exc:
            raise StoreUnavailable(f"{self.uri}/{key}: {exc}") from exc
        finally:
            # Hands the connection back now, not when the body is collected: the next
            # object reuses it instead of opening another.
            response["Body"].close()
        return size

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except self._unavailable as exc:
            if self._missing(exc):
                return False
            raise StoreUnavailable(f"{self.uri}/{key}: {exc}") from exc
        return True

    def put(self, key: str, data: bytes, *, if_absent: bool = False) -> None:
        extra: dict[str, str] = {}
        if if_absent:
            if self.exists(key):
                raise FileExistsError(f"{self.uri}/{key} already exists")
            extra["IfNoneMatch"] = "*"  # conditional write where the server supports it
        try:
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, **extra)
        except self._unavailable as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code")
            if code in {"PreconditionFailed", "ConditionalRequestConflict"}:
                raise FileExistsError(f"{self.uri}/{key} already exists") from exc
            raise StoreUnavailable(f"{self.uri}/{key}: {exc}") from exc

    def list(self, prefix: str) -> list[str]:
        full = self._key(prefix)
        keys = []
        try:
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=full):
                for item in page.get("Contents", []):
                    key = item["Key"]
                    keys.append(key[len(self.prefix) + 1 :] if self.prefix else key)
        except self._unavailable as exc:
            raise StoreUnavailable(f"{self.uri}/{prefix}: {exc}") from exc
        return sorted(keys)


def open_store(
    uri: str, *, endpoint_url: str | None = None, client_name: str | None = None
) -> ObjectStore:
    """``s3://bucket[/prefix]``: ``S3Store``; ``file:///dir`` or a plain path: ``LocalStore``."""
    parsed = urlparse(uri)
    if parsed.scheme == "s3":
        endpoint = endpoint_url or os.environ.get("ROUTEIQ_S3_ENDPOINT") or None
        return S3Store(parsed.netloc, parsed.path, endpoint_url=endpoint, client_name=client_name)
    if parsed.scheme == "file":
        return LocalStore(Path(parsed.path))
    if parsed.scheme:
        raise ValueError(f"unsupported registry URI {uri!r}: use a path, file:// or s3://")
    return LocalStore(Path(uri))
