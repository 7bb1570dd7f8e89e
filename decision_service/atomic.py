"""Publish a directory atomically: build it beside its target, then rename it into place.

A crash at any point leaves either the old directory, the new one, or (for a moment
between two renames when replacing) nothing at the target path: never a half-written one.
Leftover staging folders are hidden (``.name.tmp-*``) and never mistaken for a result.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


class Staging:
    """An empty hidden folder in ``parent``; ``publish`` renames it to its final name."""

    def __init__(self, parent: Path, label: str) -> None:
        parent.mkdir(parents=True, exist_ok=True)
        self.parent = parent
        self.path = Path(tempfile.mkdtemp(prefix=f".{label}.tmp-", dir=parent))
        self.published: Path | None = None

    def publish(self, target: Path, *, replace: bool) -> Path:
        """Rename the staged folder to ``target`` (same parent), replacing or refusing one there."""
        target = Path(target)
        if target.parent.resolve() != self.parent.resolve():
            raise ValueError(f"{target} must be in {self.parent} for an atomic rename")
        _fsync_tree(self.path)
        os.chmod(self.path, 0o755)  # mkdtemp makes it 0700; the service may run as another user
        exists = target.exists() or target.is_symlink()
        if exists and not replace:
            raise FileExistsError(f"{target} already exists")
        if exists:
            _swap(self.path, target)
        else:
            os.rename(self.path, target)
        self.published = target
        return target


@contextlib.contextmanager
def staged(parent: Path, label: str) -> Iterator[Staging]:
    """A ``Staging`` that is removed on error or when it was never published."""
    staging = Staging(Path(parent), label)
    try:
        yield staging
    finally:
        if staging.published is None:
            shutil.rmtree(staging.path, ignore_errors=True)


@contextlib.contextmanager
def staging_dir(target: Path) -> Iterator[Path]:
    """Yield an empty folder beside ``target``; on success it replaces ``target``."""
    target = Path(target)
    with staged(target.parent, target.name) as staging:
        yield staging.path
        staging.publish(target, replace=True)


def _swap(source: Path, target: Path) -> None:
    trash = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    os.rmdir(trash)
    os.rename(target, trash)
    os.rename(source, target)
    if trash.is_dir() and not trash.is_symlink():
        shutil.rmtree(trash, ignore_errors=True)
    else:
        trash.unlink(missing_ok=True)


def point_symlink(link: Path, target_name: str) -> None:
    """Make ``link`` a relative symlink to ``target_name``, replacing it atomically."""
    link = Path(link)
    tmp = link.parent / f".{link.name}.link-{os.getpid()}"
    tmp.unlink(missing_ok=True)
    os.symlink(target_name, tmp)
    if link.exists() and not link.is_symlink():
        _swap(tmp, link)  # a real folder where the pointer goes: move it aside
    else:
        os.replace(tmp, link)


def _fsync_tree(directory: Path) -> None:
    for path in directory.iterdir():
        if path.is_file():
            with path.open("rb") as fh:
                os.fsync(fh.fileno())
