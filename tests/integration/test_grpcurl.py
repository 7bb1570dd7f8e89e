"""grpcurl, the debugging tool operators reach for, works with reflection alone."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from decision_service.bundle import read_manifest

from .servers import DecisionServiceProcess

pytestmark = pytest.mark.integration

GRPCURL = shutil.which("grpcurl") or str(Path(sys.executable).parent / "grpcurl")


@pytest.fixture(scope="module")
def service(knn_bundle_dir, encoder_dir):
    with DecisionServiceProcess(knn_bundle_dir, encoder_dir) as proc:
        yield proc


def grpcurl(*args: str) -> str:
    done = subprocess.run([GRPCURL, *args], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_list_shows_the_api_health_and_reflection(service):
    services = grpcurl("-plaintext", service.address, "list").split()
    assert "routeiq.decision.v1.DecisionService" in services
    assert "grpc.health.v1.Health" in services


def test_describe_uses_reflection(service):
    out = grpcurl("-plaintext", service.address, "describe", "routeiq.decision.v1.DecisionService")
    rpc = "rpc Route ( .routeiq.decision.v1.RouteRequest )"
    assert f"{rpc} returns ( .routeiq.decision.v1.RouteResponse )" in out
    out = grpcurl("-plaintext", service.address, "describe", "routeiq.decision.v1.RouteRequest")
    assert "repeated .routeiq.decision.v1.Candidate candidates" in out


def test_route_call_and_health_check(service, knn_bundle_dir):
    names = read_manifest(knn_bundle_dir).model_names
    body = {
        "prompt": "Write a SQL query that finds duplicate emails",
        "candidates": [{"id": f"d{i}", "model_name": m} for i, m in enumerate(names)],
    }
    reply = json.loads(
        grpcurl(
            "-plaintext",
            "-d",
            json.dumps(body),
            service.address,
            "routeiq.decision.v1.DecisionService/Route",
        )
    )
    assert sorted(r["id"] for r in reply["ranked"]) == sorted(c["id"] for c in body["candidates"])
    assert reply["bundle_version"] == read_manifest(knn_bundle_dir).bundle_version
    health = json.loads(grpcurl("-plaintext", service.address, "grpc.health.v1.Health/Check"))
    assert health == {"status": "SERVING"}
