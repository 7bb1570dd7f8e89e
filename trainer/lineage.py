"""Lineage of a bundle: what it was trained from, by which code, when (``lineage.json``)."""

from __future__ import annotations

import subprocess
from datetime import datetime
from importlib import metadata
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def code_version() -> dict[str, object]:
    """The package version and, when run from a git checkout, its commit and dirtiness."""
    try:
        package = metadata.version("routeiq")
    except metadata.PackageNotFoundError:
        package = "unknown"
    info: dict[str, object] = {"package": package, "git_commit": None, "git_dirty": None}
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--", "trainer"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return info
    info["git_commit"] = commit or None
    info["git_dirty"] = bool(dirty)
    return info


def lineage(
    *,
    router_type: str,
    data_sha256: str,
    data_format: str,
    rows: dict[str, int],
    split: dict[str, object],
    encoder_digest: str,
    hyperparameters: dict[str, object],
    created: datetime,
) -> dict[str, object]:
    return {
        "router_type": router_type,
        "created_utc": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "data": {"sha256": data_sha256, "format": data_format, "rows": rows, "split": split},
        "encoder_digest": encoder_digest,
        "hyperparameters": hyperparameters,
        "code": code_version(),
    }
