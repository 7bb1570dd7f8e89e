"""Rendered deploy manifests for the deploy tests (no cluster, no sockets).

Every overlay under deploy/k8s/overlays is rendered once with ``kubectl kustomize``. Without
kubectl the tests that need it are skipped locally and fail under CI=true.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
OVERLAYS = sorted(p.name for p in (K8S / "overlays").iterdir() if p.is_dir())

Obj = dict[str, Any]
HASH_SUFFIX = re.compile(r"-[a-z0-9]{10}$")  # configMapGenerator's content hash


def kubectl_or_skip() -> str:
    path = shutil.which("kubectl")
    if path is None:
        message = "kubectl (with kustomize) is not installed"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message}; CI must have it to check deploy/k8s")
        pytest.skip(message)
    return path


def render(overlay: str) -> list[Obj]:
    kubectl = kubectl_or_skip()
    result = subprocess.run(
        [kubectl, "kustomize", str(K8S / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"kubectl kustomize {overlay} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


_CACHE: dict[str, list[Obj]] = {}


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def rendered(overlay: str) -> list[Obj]:
    """``render(overlay)``, once per session."""
    if overlay not in _CACHE:
        _CACHE[overlay] = render(overlay)
    return _CACHE[overlay]


@pytest.fixture
def objects(overlay: str) -> list[Obj]:
    return rendered(overlay)


def find(objects: list[Obj], kind: str, name: str) -> Obj:
    """The object of ``kind`` named ``name`` (ConfigMap names may carry a hash suffix)."""
    matches = [
        o
        for o in objects
        if o["kind"] == kind and HASH_SUFFIX.sub("", o["metadata"]["name"]) == name
    ]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


def pod_spec(obj: Obj) -> Obj:
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return obj["spec"]["template"]["spec"]


def containers(obj: Obj) -> list[Obj]:
    spec = pod_spec(obj)
    return [*spec.get("initContainers", []), *spec["containers"]]


def container(obj: Obj, name: str) -> Obj:
    (match,) = [c for c in containers(obj) if c["name"] == name]
    return match


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())
