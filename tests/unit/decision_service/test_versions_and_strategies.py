"""Versions, rollback, strategies, splits, signatures, reload and decision events, no sockets."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from decision_service.audit import AuditLog
from decision_service.bundle import load_bundle
from decision_service.encoder import OnnxEncoder
from decision_service.engine import DecisionEngine, RouteQuery
from decision_service.errors import BundleRefused, InvalidRequest, UnknownVersion
from decision_service.metrics import ServiceMetrics
from decision_service.policy import CandidateIn
from decision_service.reload import Reloader, refusal_reason
from decision_service.signing import SignaturePolicy, sign_bundle
from decision_service.strategies import TrafficArm, TrafficSplit
from decision_service.telemetry import emit_decision_event

CANDIDATES = [
    CandidateIn("a", "gpt-4o", cost_per_million_tokens=10.0),
    CandidateIn("b", "gpt-4o-mini", cost_per_million_tokens=0.6),
    CandidateIn("c", "unknown-model"),
]


@pytest.fixture(scope="module")
def encoder(encoder_dir: Path) -> OnnxEncoder:
    return OnnxEncoder(encoder_dir)


@pytest.fixture(scope="module")
def bundles(trained_artifacts, encoder):
    return {
        name: load_bundle(result.directory, encoder)
        for name, result in trained_artifacts.results.items()
    }


def query(**kwargs: object) -> RouteQuery:
    return RouteQuery(candidates=CANDIDATES, prompt="Sort a list in Python", **kwargs)  # type: ignore[arg-type]


def test_rollback_previous_and_named_and_unknown(encoder, bundles):
    knn, mlp = bundles["knn"], bundles["mlp"]
    engine = DecisionEngine(encoder, knn)
    engine.activate(mlp)
    assert engine.decide(query()).bundle_version == mlp.version
    assert engine.rollback("previous") == (mlp.version, knn.version)
    assert engine.decide(query()).bundle_version == knn.version
    assert engine.rollback(mlp.version) == (knn.version, mlp.version)
    with pytest.raises(UnknownVersion):
        engine.rollback("nope")


def test_only_k_versions_stay_loaded_and_the_active_one_is_never_evicted(encoder, bundles):
    knn, mlp = bundles["knn"], bundles["mlp"]
    engine = DecisionEngine(encoder, knn, keep_versions=1)
    engine.activate(mlp)
    assert [v.version for v in engine.versions()] == [mlp.version]
    with pytest.raises(UnknownVersion, match="no previous"):
        engine.rollback("previous")


def test_requests_in_flight_keep_the_routing_they_started_with(encoder, bundles):
    engine = DecisionEngine(encoder, bundles["knn"])
    snapshot = engine._routing
    engine.activate(bundles["mlp"])
    assert snapshot is not None and snapshot.active is not None
    assert snapshot.active.version == bundles["knn"].version  # the old snapshot is untouched


def test_static_strategies_rank_exactly_the_candidates(encoder, bundles):
    engine = DecisionEngine(encoder, bundles["knn"], static_order=["gpt-4o-mini", "gpt-4o"])
    cheapest = engine.decide(query(strategy="cheapest"))
    assert [r.id for r in cheapest.ranked] == ["b", "a", "c"]
    assert cheapest.prompt_tokens == 0  # no embedding needed
    fixed = engine.decide(query(strategy="fixed-order"))
    assert [r.id for r in fixed.ranked] == ["b", "a", "c"]
    firsts = {engine.decide(query(strategy="round-robin")).ranked[0].id for _ in range(3)}
    assert firsts == {"a", "b", "c"}
    with pytest.raises(InvalidRequest, match="unknown strategy"):
        engine.decide(query(strategy="nope"))
    infos, default = engine.strategies()
    assert {i.name for i in infos} >= {"cheapest", "fixed-order", "round-robin", "routeiq-knn"}
    assert default == f"routeiq-knn@{bundles['knn'].version}"


def test_split_is_sticky_weighted_and_reported(encoder, bundles):
    engine = DecisionEngine(encoder, bundles["knn"])
    engine.activate(bundles["mlp"])
    engine.set_split([("old", bundles["knn"].version, 1.0), ("new", "routeiq-mlp", 3.0)], "team")
    seen: dict[str, set[str]] = {}
    for team in range(100):
        for _ in range(2):
            d = engine.decide(query(team_id_hash=f"t{team}"))
            seen.setdefault(f"t{team}", set()).add(d.arm)
            assert d.bundle_version == (
                bundles["knn"].version if d.arm == "old" else bundles["mlp"].version
            )
    assert all(len(arms) == 1 for arms in seen.values())
    counts = [sum(arms == {a} for arms in seen.values()) for a in ("old", "new")]
    assert counts[0] > 0 and counts[1] > counts[0]
    assert engine.active_versions() == [bundles["mlp"].version, bundles["knn"].version]
    with pytest.raises(InvalidRequest):
        engine.set_split([("x", "cheapest", -1.0)], "user")
    with pytest.raises(UnknownVersion):
        engine.set_split([("x", "ghost", 1.0)], "user")


def test_split_hash_is_stable_across_processes():
    split = TrafficSplit((TrafficArm("a", "cheapest", 1), TrafficArm("b", "round-robin", 1)))
    # sha256-based: the same user lands on the same arm on every replica, every run.
    assert [split.choose(f"user-{i}", "", "", "x").name for i in range(6)] == [
        split.choose(f"user-{i}", "", "", "y").name for i in range(6)
    ]


def test_signature_policy(tmp_path, knn_bundle_dir, encoder):
    key = Ed25519PrivateKey.generate()
    bundle = Path(shutil.copytree(knn_bundle_dir.resolve(), tmp_path / "b"))
    required = SignaturePolicy(public_key=key.public_key(), required=True)
    with pytest.raises(BundleRefused, match="unsigned"):
        load_bundle(bundle, encoder, signatures=required)
    sign_bundle(bundle, key)
    assert load_bundle(bundle, encoder, signatures=required).signed
    sign_bundle(bundle, Ed25519PrivateKey.generate())
    with pytest.raises(BundleRefused, match="does not verify"):
        load_bundle(bundle, encoder, signatures=required)
    sign_bundle(bundle, key)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["default_cost_weight"] = 0.5  # altered after signing
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleRefused, match="does not verify"):
        load_bundle(bundle, encoder, signatures=required)


def test_reloader_refuses_a_bad_bundle_and_keeps_the_good_one(tmp_path, bundles, encoder):
    good = bundles["knn"]
    bad = Path(shutil.copytree(bundles["mlp"].directory, tmp_path / "bad"))
    (bad / "weights.pkl").write_bytes(b"\x80\x05")
    pointer = tmp_path / "current"
    pointer.symlink_to(good.directory)
    engine = DecisionEngine(encoder, good)
    metrics, audit = ServiceMetrics(), AuditLog(tmp_path / "audit.jsonl")
    reloader = Reloader(
        pointer, engine, encoder, metrics=metrics, audit=audit, signatures=SignaturePolicy()
    )
    pointer.unlink()
    pointer.symlink_to(bad)
    reloader.poll()
    assert engine.active_version == good.version
    assert metrics.refused.labels(reason="pickle")._value.get() == 1
    reloader.poll()  # same fingerprint: not retried, not counted again
    assert metrics.refused.labels(reason="pickle")._value.get() == 1
    pointer.unlink()
    pointer.symlink_to(bundles["mlp"].directory)
    reloader.poll()
    assert engine.active_version == bundles["mlp"].version
    actions = [(e.action, e.ok, e.who) for e in audit.recent()]
    assert actions == [("reload", False, "watcher"), ("reload", True, "watcher")]
    assert len((tmp_path / "audit.jsonl").read_text().splitlines()) == 2


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("bundle file 'router.onnx' does not match its sha256", "hash_mismatch"),
        ("bundle holds 'x.pkl', a pickle", "pickle"),
        ("router.onnx references external data '../x' outside its folder", "external_data"),
        ("bundle in /x is unsigned and signed bundles are required", "signature"),
        ("bundle knn-1 was trained on encoder a/b (1) but", "encoder_mismatch"),
    ],
)
def test_refusal_reasons(message, reason):
    assert refusal_reason(BundleRefused(message)) == reason


def test_decision_event_is_added_to_the_current_span(encoder, bundles):
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    engine = DecisionEngine(encoder, bundles["knn"])
    q = query(requested_model="auto")
    with provider.get_tracer("test").start_as_current_span("Route"):
        decision = engine.decide(q)
        emit_decision_event(decision, q)
    (span,) = exporter.get_finished_spans()
    (event,) = span.events
    assert event.name == "routeiq.router_decision.v1"
    assert event.attributes is not None
    payload = json.loads(str(event.attributes["routeiq.router_decision.payload"]))
    assert payload["event_id"] == decision.decision_id
    assert payload["trace_id"] == f"{span.context.trace_id:032x}"
    assert payload["input"]["query_length"] == len(q.prompt or "")
    assert payload["input"]["user_id"] is None
    assert [c["model_name"] for c in payload["candidate_deployments"]] == [
        r.model_name for r in decision.ranked
    ]
