"""The canary in a real service process: a canary pointer (where a sync agent on the
``canary`` channel would swap its bundle) gets a sticky share of traffic, and a canary that
is valid but bad at serving time is withdrawn by the rule, with an audit entry and a metric,
while every Route call keeps succeeding and the stable version answers the rest.

The bad bundles are the session's trained KNN with a real graph property added (see
``tests/unit/decision_service/canary_bundles.py``): NaN for prompts its manifest samples do
not cover, or 96 extra 256x256 MatMuls. Request ids are fixed, so which request goes to the
canary is deterministic; only how long the withdrawal takes varies, and it is printed, not
asserted.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from decision_service.bundle import read_manifest
from routeiq.decision.v1 import decision_pb2 as pb
from routeiq.decision.v1 import decision_pb2_grpc as pb_grpc

from ..unit.decision_service.canary_bundles import with_heavy_graph, with_nan_for_unseen_prompts
from .servers import DecisionServiceProcess, free_port, metric_value, metrics_text, switch_pointer

pytestmark = pytest.mark.integration

SHARE = 0.1
MIN_SAMPLES = 60
MODELS = ["gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet", "llama-3-70b", "mistral-small"]
TOPICS = ("a sql query", "a poem about rain", "tax rules", "a python bug", "a travel plan")


def request(i: int) -> pb.RouteRequest:
    return pb.RouteRequest(
        prompt=f"Help me with {TOPICS[i % len(TOPICS)]}, case number {i}",
        candidates=[pb.Candidate(id=f"dep-{k}", model_name=m) for k, m in enumerate(MODELS)],
        requested_model="auto",
        request_id=f"req-{i}",
    )


def audit_entries(pool: Path) -> list[dict[str, object]]:
    path = pool / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def wait_for_action(pool: Path, action: str, timeout_s: float = 60.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = [e for e in audit_entries(pool) if e["action"] == action]
        if found:
            return found[-1]
        time.sleep(0.05)
    raise AssertionError(f"no {action} audit entry within {timeout_s:.0f}s")


@pytest.fixture
def pool(tmp_path: Path, knn_bundle_dir: Path) -> Path:
    switch_pointer(tmp_path / "current", knn_bundle_dir.resolve())
    return tmp_path


@pytest.fixture
def service(pool: Path, encoder_dir: Path) -> Iterator[DecisionServiceProcess]:
    metrics_port = free_port()
    proc = DecisionServiceProcess(
        pool / "current",
        encoder_dir,
        ROUTEIQ_METRICS_PORT=str(metrics_port),
        ROUTEIQ_METRICS_HOST="127.0.0.1",
        ROUTEIQ_RELOAD_POLL_MS="100",
        ROUTEIQ_AUDIT_LOG_PATH=str(pool / "audit.jsonl"),
        ROUTEIQ_CANARY_DIR=str(pool / "canary"),
        ROUTEIQ_CANARY_SHARE=str(SHARE),
        ROUTEIQ_CANARY_MIN_SAMPLES=str(MIN_SAMPLES),
        ROUTEIQ_CANARY_STATE_FILE=str(pool / "canary-state.json"),
        ROUTEIQ_SPLIT_STICKY_BY="request",
    )
    proc.metrics_port = metrics_port  # type: ignore[attr-defined]
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def run_canary(pool: Path, service: DecisionServiceProcess, canary: Path, reason: str) -> list[str]:
    """Start ``canary``, route until it is withdrawn, check it all; the arms served."""
    stable = read_manifest(pool / "current").bundle_version
    canary_version = read_manifest(canary).bundle_version
    switch_pointer(pool / "canary", canary)
    wait_for_action(pool, "canary_start")
    arms: list[str] = []
    started = time.monotonic()
    withdrawn: dict[str, object] | None = None
    with grpc.insecure_channel(service.address) as channel:
        stub = pb_grpc.DecisionServiceStub(channel)
        i = 0
        while withdrawn is None and i < 5000:
            reply = stub.Route(request(i), timeout=10)  # any failure fails the test
            arms.append(reply.arm)
            if reply.arm == "canary":
                assert reply.bundle_version == canary_version
            else:
                assert reply.bundle_version == stable  # stable and canary-fallback alike
            assert len(reply.ranked) == len(MODELS)
            i += 1
            if i % 20 == 0:
                found = [e for e in audit_entries(pool) if e["action"] == "canary_withdraw"]
                withdrawn = found[-1] if found else None
        elapsed = time.monotonic() - started
        assert withdrawn is not None, "the canary was never withdrawn"
        # Calls already on their way may have reached it before the swap; none after.
        after = [stub.Route(request(i + k), timeout=10).arm for k in range(300)]
    offered = sum(a in ("canary", "canary-fallback") for a in arms)
    print(
        f"\ncanary {canary_version} ({reason}): share before withdrawal "
        f"{offered / len(arms):.3f} ({offered} of {len(arms)} requests; configured {SHARE}); "
        f"withdrawn after {len(arms)} requests, {elapsed:.2f} s; why: {withdrawn['why']}"
    )
    assert 0.06 < offered / len(arms) < 0.14
    assert set(after) == {""}, "a withdrawn canary must get no traffic"
    assert (withdrawn["who"], withdrawn["from"], withdrawn["to"]) == (
        "canary-rule",
        canary_version,
        stable,
    )
    assert str(withdrawn["why"]).startswith(f"{reason} ")
    assert "over the last 60 s" in str(withdrawn["why"])
    text = metrics_text(service.metrics_port)  # type: ignore[attr-defined]
    assert metric_value(text, "routeiq_canary_withdrawals_total", reason=reason) == 1
    assert metric_value(text, "routeiq_canary_share") == 0
    return arms


def test_a_canary_that_returns_nan_for_unseen_prompts_is_withdrawn_for_errors(
    pool, service, knn_bundle_dir, tmp_path
):
    bad = with_nan_for_unseen_prompts(knn_bundle_dir, tmp_path / "knn-nan", "knn-nan-1")
    arms = run_canary(pool, service, bad, "error_rate")
    # Every canary decision failed and was answered by the stable version instead.
    assert "canary-fallback" in arms and "canary" not in arms
    # The pointer still names it: a later poll does not bring it back.
    time.sleep(0.5)
    assert [e["action"] for e in audit_entries(pool)].count("canary_start") == 1


def test_a_slow_canary_is_withdrawn_for_latency(pool, service, knn_bundle_dir, tmp_path):
    slow = with_heavy_graph(knn_bundle_dir, tmp_path / "knn-slow", "knn-slow-1", rounds=96)
    arms = run_canary(pool, service, slow, "latency")
    assert "canary" in arms and "canary-fallback" not in arms  # slow, never wrong
