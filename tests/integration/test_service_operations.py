"""Operating the decision service as a real process: hot reload, rollback, admin, refusals,
load shedding, deadlines and graceful shutdown.

Every wait is a bounded poll with a generous limit; nothing asserts on timing.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from grpc_health.v1 import health_pb2, health_pb2_grpc

from decision_service.bundle import read_manifest
from decision_service.signing import sign_bundle
from routeiq.decision.v1 import admin_pb2 as admin_pb
from routeiq.decision.v1 import admin_pb2_grpc as admin_grpc
from routeiq.decision.v1 import decision_pb2 as pb
from routeiq.decision.v1 import decision_pb2_grpc as pb_grpc

from .servers import (
    DecisionServiceProcess,
    copy_bundle,
    free_port,
    metric_value,
    metrics_text,
    switch_pointer,
    tampered,
    with_external_data,
    with_pickle,
)

pytestmark = pytest.mark.integration

TOKEN = "s3cret-admin-token"
AUTH = (("authorization", f"Bearer {TOKEN}"), ("x-routeiq-actor", "pytest"))
MODELS = ["gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet", "llama-3-70b", "mistral-small"]


def route_request(
    prompt: str = "Write a haiku about the sea.", **kwargs: object
) -> pb.RouteRequest:
    return pb.RouteRequest(
        prompt=prompt,
        candidates=[pb.Candidate(id=f"dep-{i}", model_name=m) for i, m in enumerate(MODELS)],
        requested_model="auto",
        **kwargs,
    )


def wait_for(predicate, timeout_s: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")


@pytest.fixture(scope="module")
def versions(trained_artifacts, tmp_path_factory) -> dict[str, Path]:
    """Three real bundle versions: the session's KNN and MLP, and a second KNN (k=5)."""
    from decision_service.encoder import OnnxEncoder
    from trainer.pipeline import train_bundle

    encoder = OnnxEncoder(trained_artifacts.encoder_dir)
    out = tmp_path_factory.mktemp("knn-v2")
    second = train_bundle(
        trained_artifacts.prepared, "knn", encoder, out, seed=23, params={"k": 5}
    ).directory
    return {
        "v1": trained_artifacts.results["knn"].directory,
        "v2": second,
        "mlp": trained_artifacts.results["mlp"].directory,
    }


def version_of(directory: Path) -> str:
    return read_manifest(directory).bundle_version


@pytest.fixture
def pool(tmp_path: Path, versions: dict[str, Path]) -> Path:
    """A delivery folder with the pointer ``current`` -> v1."""
    pointer = tmp_path / "current"
    switch_pointer(pointer, versions["v1"])
    return tmp_path


def start_service(pool: Path, encoder_dir: Path, **env: str) -> DecisionServiceProcess:
    metrics_port = str(free_port())
    settings = {
        "ROUTEIQ_ADMIN_TOKEN": TOKEN,
        "ROUTEIQ_METRICS_PORT": metrics_port,
        "ROUTEIQ_METRICS_HOST": "127.0.0.1",
        "ROUTEIQ_RELOAD_POLL_MS": "200",
        "ROUTEIQ_AUDIT_LOG_PATH": str(pool / "audit.jsonl"),
        **env,
    }
    proc = DecisionServiceProcess(pool / "current", encoder_dir, **settings)
    proc.metrics_port = int(metrics_port)  # type: ignore[attr-defined]
    return proc.start()


@pytest.fixture
def service(pool: Path, encoder_dir: Path) -> Iterator[DecisionServiceProcess]:
    proc = start_service(pool, encoder_dir)
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def channel(service: DecisionServiceProcess) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(service.address) as ch:
        yield ch


def audit_entries(pool: Path) -> list[dict[str, object]]:
    path = pool / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_hot_swap_under_load_fails_no_request(pool, versions, service, channel):
    """A steady stream of requests while the pointer moves: zero failures, then the new version."""
    stub = pb_grpc.DecisionServiceStub(channel)
    v1, v2 = version_of(versions["v1"]), version_of(versions["v2"])
    # (sent at, answered at, bundle version or "ERROR:<code>"), monotonic clock
    results: list[tuple[float, float, str]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(worker: int) -> None:
        n = 0
        while not stop.is_set() and n < 20_000:
            n += 1
            sent = time.monotonic()
            try:
                reply = stub.Route(route_request(f"request {worker}-{n}: sort a list"), timeout=30)
                outcome = reply.bundle_version
            except grpc.RpcError as exc:
                outcome = f"ERROR:{exc.code().name}"
            with lock:
                results.append((sent, time.monotonic(), outcome))

    threads = [threading.Thread(target=client, args=(w,), daemon=True) for w in range(2)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: len(results) >= 200, what="200 requests before the swap")
        switched_at = time.monotonic()
        switch_pointer(pool / "current", versions["v2"])
        first_new = wait_for(
            lambda: next((done for _, done, v in list(results) if v == v2), None),
            what="a response from the new version",
        )
        count_at_switch = len(results)
        wait_for(lambda: len(results) >= count_at_switch + 200, what="200 requests after the swap")
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    failed = [v for _, _, v in results if v.startswith("ERROR")]
    # Ordered by cause, not by the clock: a request sent after the new version has answered
    # once must be answered by it (the swap is atomic), however fast or slow the machine.
    # At most one request per client straddles first_new, so ~198 of the 200 qualify.
    after = [v for sent, _, v in results if sent > first_new]
    print(
        f"\nHOT-SWAP FIGURES: sent={len(results)} failed={len(failed)} "
        f"old={sum(v == v1 for *_, v in results)} new={sum(v == v2 for *_, v in results)} "
        f"time_to_switch_s={first_new - switched_at:.3f}"
    )
    assert failed == []
    assert {v for *_, v in results} == {v1, v2}
    assert len(after) >= 150 and set(after) == {v2}
    assert results[0][2] == v1 and results[-1][2] == v2
    # The watcher's reload is audited too.
    entries = audit_entries(pool)
    assert any(e["action"] == "reload" and e["who"] == "watcher" and e["to"] == v2 for e in entries)
    text = metrics_text(service.metrics_port)
    assert metric_value(text, "routeiq_bundle_reloads_total", result="loaded") >= 1
    assert metric_value(text, "routeiq_active_bundle_info", version=v2) == 1


def test_rollback_to_previous_and_to_named_version_is_visible_and_audited(
    pool, versions, service, channel
):
    admin = admin_grpc.AdminServiceStub(channel)
    stub = pb_grpc.DecisionServiceStub(channel)
    v1, v2, v3 = (version_of(versions[k]) for k in ("v1", "v2", "mlp"))
    for directory in (versions["v2"], versions["mlp"]):
        switch_pointer(pool / "current", directory)
        reply = admin.Reload(admin_pb.ReloadRequest(reason="deliver"), metadata=AUTH, timeout=120)
        assert reply.active_version == read_manifest(directory).bundle_version
    listed = admin.ListVersions(admin_pb.ListVersionsRequest(), metadata=AUTH, timeout=10)
    assert {v.version for v in listed.versions} == {v1, v2, v3}
    assert [v.version for v in listed.versions if v.active] == [v3]

    back = admin.Rollback(
        admin_pb.RollbackRequest(to="previous", reason="mlp regressed"), metadata=AUTH, timeout=60
    )
    assert (back.previous_version, back.active_version) == (v3, v2)
    assert admin.GetStatus(admin_pb.GetStatusRequest(), metadata=AUTH).active_versions == [v2]
    assert stub.Route(route_request(), timeout=10).bundle_version == v2

    named = admin.Rollback(
        admin_pb.RollbackRequest(to=v1, reason="back to the first"), metadata=AUTH, timeout=60
    )
    assert (named.previous_version, named.active_version) == (v2, v1)
    status = admin.GetStatus(admin_pb.GetStatusRequest(), metadata=AUTH, timeout=10)
    assert status.active_versions == [v1]
    assert status.health == "SERVING" and status.uptime_s > 0
    assert status.encoder_digest and status.decisions_total >= 1
    assert stub.Route(route_request(), timeout=10).bundle_version == v1

    with pytest.raises(grpc.RpcError) as err:
        admin.Rollback(admin_pb.RollbackRequest(to="no-such-version"), metadata=AUTH, timeout=10)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND

    rollbacks = [e for e in audit_entries(pool) if e["action"] == "rollback"]
    assert [(e["from"], e["to"], e["why"], e["ok"]) for e in rollbacks] == [
        (v3, v2, "mlp regressed", True),
        (v2, v1, "back to the first", True),
        (v1, "no-such-version", "", False),
    ]
    assert all(str(e["who"]).startswith("pytest@") and e["when"] for e in rollbacks)
    assert "audit " in service.log()  # also a structured log line


def test_traffic_split_is_sticky_and_reported(pool, versions, service, channel):
    admin = admin_grpc.AdminServiceStub(channel)
    stub = pb_grpc.DecisionServiceStub(channel)
    v1 = version_of(versions["v1"])
    strategies = stub.ListStrategies(pb.ListStrategiesRequest(), timeout=10)
    names = {(s.name, s.kind) for s in strategies.strategies}
    assert {("cheapest", "static"), ("fixed-order", "static"), ("round-robin", "static")} <= names
    assert any(s.kind == "ml" and s.bundle_version == v1 for s in strategies.strategies)
    ml = next(s for s in strategies.strategies if s.kind == "ml")

    admin.SetTrafficSplit(
        admin_pb.SetTrafficSplitRequest(
            arms=[
                pb.TrafficArm(name="control", strategy=f"{ml.name}@{ml.version}", weight=90),
                pb.TrafficArm(name="cheap", strategy="cheapest", weight=10),
            ],
            sticky_by="user",
            reason="A/B",
        ),
        metadata=AUTH,
        timeout=10,
    )
    arms = {}
    for user in range(200):
        first = stub.Route(route_request(user_id_hash=f"u{user}"), timeout=10)
        again = stub.Route(route_request("another prompt", user_id_hash=f"u{user}"), timeout=10)
        assert first.arm == again.arm  # sticky by user
        arms[first.arm] = arms.get(first.arm, 0) + 1
        expected = "cheapest" if first.arm == "cheap" else ml.name
        assert first.strategy_name == expected
    assert set(arms) == {"control", "cheap"} and arms["control"] > arms["cheap"]
    listed = stub.ListStrategies(pb.ListStrategiesRequest(), timeout=10)
    assert [a.name for a in listed.split] == ["control", "cheap"] and listed.sticky_by == "user"
    # A request may still name a strategy explicitly.
    chosen = stub.Route(route_request(strategy="round-robin"), timeout=10)
    assert chosen.strategy_name == "round-robin" and chosen.arm == ""
    with pytest.raises(grpc.RpcError) as err:
        stub.Route(route_request(strategy="nope"), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "ListStrategies" in err.value.details()
    admin.SetTrafficSplit(admin_pb.SetTrafficSplitRequest(reason="end"), metadata=AUTH)
    assert stub.Route(route_request(user_id_hash="u1"), timeout=10).arm == ""


def test_admin_without_a_valid_token_is_unauthenticated(channel):
    admin = admin_grpc.AdminServiceStub(channel)
    for metadata in ((), (("authorization", "Bearer wrong"),), (("authorization", TOKEN),)):
        with pytest.raises(grpc.RpcError) as err:
            admin.GetStatus(admin_pb.GetStatusRequest(), metadata=metadata, timeout=10)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as err:
            admin.Rollback(admin_pb.RollbackRequest(to="previous"), metadata=metadata, timeout=10)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


def _assert_refused_and_still_serving(
    pool: Path, service: DecisionServiceProcess, bad: Path, reason: str, serving: str
) -> None:
    port = service.metrics_port  # type: ignore[attr-defined]
    before = metric_value(metrics_text(port), "routeiq_bundles_refused_total", reason=reason)
    switch_pointer(pool / "current", bad)
    wait_for(
        lambda: (
            metric_value(metrics_text(port), "routeiq_bundles_refused_total", reason=reason)
            > before
        ),
        what=f"the {reason} refusal",
    )
    with grpc.insecure_channel(service.address) as ch:
        reply = pb_grpc.DecisionServiceStub(ch).Route(route_request(), timeout=10)
        assert reply.bundle_version == serving
        health = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert health.status == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize(
    ("make_bad", "reason", "logged"),
    [
        (tampered, "hash_mismatch", "sha256"),
        (with_pickle, "pickle", "pickle"),
        (with_external_data, "external_data", "external data"),
    ],
)
def test_bad_bundle_delivered_live_is_refused_and_the_old_one_serves(
    pool, versions, service, make_bad, reason, logged
):
    bad = make_bad(versions["v2"], pool / f"bad-{reason}")
    _assert_refused_and_still_serving(pool, service, bad, reason, version_of(versions["v1"]))
    assert "bundle refused" in service.log() and logged in service.log()
    assert any(e["action"] == "reload" and e["ok"] is False for e in audit_entries(pool))


def test_signed_mode_refuses_unsigned_and_wrongly_signed_bundles(pool, versions, encoder_dir):
    key, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    public = pool / "bundles.pub"
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    good_v1 = copy_bundle(versions["v1"], pool / "signed-v1")
    sign_bundle(good_v1, key)
    switch_pointer(pool / "current", good_v1)
    proc = start_service(
        pool,
        encoder_dir,
        ROUTEIQ_REQUIRE_SIGNED_BUNDLES="true",
        ROUTEIQ_BUNDLE_PUBLIC_KEY_FILE=str(public),
    )
    try:
        v1 = version_of(good_v1)
        unsigned = copy_bundle(versions["v2"], pool / "unsigned-v2")
        _assert_refused_and_still_serving(pool, proc, unsigned, "signature", v1)
        wrong = copy_bundle(versions["v2"], pool / "wrong-key-v2")
        sign_bundle(wrong, other)
        before = metric_value(
            metrics_text(proc.metrics_port), "routeiq_bundles_refused_total", reason="signature"
        )
        assert before == 1
        _assert_refused_and_still_serving(pool, proc, wrong, "signature", v1)
        good_v2 = copy_bundle(versions["v2"], pool / "signed-v2")
        sign_bundle(good_v2, key)
        switch_pointer(pool / "current", good_v2)
        with grpc.insecure_channel(proc.address) as ch:
            stub = pb_grpc.DecisionServiceStub(ch)
            wait_for(
                lambda: (
                    stub.Route(route_request(), timeout=10).bundle_version == version_of(good_v2)
                ),
                what="the signed bundle",
            )
        assert "unsigned" in proc.log() and "does not verify" in proc.log()
    finally:
        assert proc.stop() == 0


def test_unsigned_bundle_is_refused_at_start_in_signed_mode(pool, versions, encoder_dir):
    public = pool / "bundles.pub"
    public.write_bytes(
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    proc = DecisionServiceProcess(
        pool / "current",
        encoder_dir,
        ROUTEIQ_REQUIRE_SIGNED_BUNDLES="true",
        ROUTEIQ_BUNDLE_PUBLIC_KEY_FILE=str(public),
    )
    with pytest.raises(RuntimeError, match="unsigned"):
        proc.start()


def test_overload_and_deadlines_fail_fast(pool, encoder_dir):
    proc = start_service(
        pool,
        encoder_dir,
        ROUTEIQ_MAX_IN_FLIGHT="1",
        ROUTEIQ_WORKERS="1",
        ROUTEIQ_DEBUG_DECISION_DELAY_MS="1500",
    )
    try:
        with grpc.insecure_channel(proc.address) as ch:
            stub = pb_grpc.DecisionServiceStub(ch)
            slow = stub.Route.future(route_request(), timeout=60)
            wait_for(
                lambda: (
                    metric_value(metrics_text(proc.metrics_port), "routeiq_in_flight_requests") == 1
                ),
                what="one call in flight",
            )
            with pytest.raises(grpc.RpcError) as err:
                stub.Route(route_request(), timeout=30)
            assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert slow.result().ranked
            # A deadline shorter than the work: the service gives up instead of answering late.
            with pytest.raises(grpc.RpcError) as err:
                stub.Route(route_request(), timeout=0.3)
            assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        text = metrics_text(proc.metrics_port)
        assert metric_value(text, "routeiq_errors_total", code="RESOURCE_EXHAUSTED") == 1
    finally:
        assert proc.stop() == 0


def test_sigterm_lets_calls_in_flight_finish_then_exits_zero(pool, encoder_dir):
    proc = start_service(
        pool, encoder_dir, ROUTEIQ_WORKERS="2", ROUTEIQ_DEBUG_DECISION_DELAY_MS="1500"
    )
    assert proc.process is not None
    with grpc.insecure_channel(proc.address) as ch:
        stub = pb_grpc.DecisionServiceStub(ch)
        calls = [stub.Route.future(route_request(f"prompt {i}"), timeout=60) for i in range(4)]
        wait_for(
            lambda: (
                metric_value(metrics_text(proc.metrics_port), "routeiq_in_flight_requests") == 4
            ),
            what="four calls in flight",
        )
        process = proc.process
        process.terminate()  # SIGTERM
        replies = [c.result() for c in calls]  # raises if any call failed
        assert all(r.ranked for r in replies)
        code = process.wait(60)
    proc.process = None
    assert code == 0
    assert "draining" in proc.log() and "stopped" in proc.log()
