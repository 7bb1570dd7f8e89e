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
from decision_service.decide import Decider
from decision_service.domain import CandidateIn, RouteQuery, TrafficArm
from decision_service.errors import BundleRefused, InvalidRequest, NotReady, UnknownVersion
from decision_service.metrics import ServiceMetrics
from decision_service.reload import Reloader, refusal_reason
from decision_service.signing import SignaturePolicy, sign_bundle
from decision_service.strategies import TrafficSplit
from decision_service.telemetry import emit_decision_event
from decision_service.versions import VersionRegistry

from ..fakes import FakeEncoder, write_bundle

CANDIDATES = [
    CandidateIn("a", "gpt-4o", cost_per_million_tokens=10.0),
    CandidateIn("b", "gpt-4o-mini", cost_per_million_tokens=0.6),
    CandidateIn("c", "unknown-model"),
]

PYTHON = "fix the bug in my python function"


def query(**kwargs: object) -> RouteQuery:
    return RouteQuery(candidates=CANDIDATES, prompt=PYTHON, **kwargs)  # type: ignore[arg-type]


def engine(encoder, bundle, **registry_kwargs: object) -> tuple[VersionRegistry, Decider]:
    registry = VersionRegistry(encoder, bundle, **registry_kwargs)  # type: ignore[arg-type]
    return registry, Decider(registry)


def test_the_ml_strategy_ranks_by_the_bundles_predicted_quality(encoder, bundles):
    candidates = [
        CandidateIn("a", "gpt-4o"),
        CandidateIn("b", "gpt-4o-mini"),
        CandidateIn("c", "claude-3-5-sonnet"),
    ]
    registry, decider = engine(encoder, bundles["alpha"])
    by_topic = {
        prompt: decider.decide(RouteQuery(candidates, prompt=prompt, cost_weight=0.0))
        for prompt in (PYTHON, "prove the integral theorem", "hello, thanks")
    }
    assert [d.ranked[0].model_name for d in by_topic.values()] == [
        "claude-3-5-sonnet",
        "gpt-4o",
        "gpt-4o-mini",
    ]
    first = by_topic[PYTHON]
    assert first.selection_reason == "highest_score" and first.strategy_name == "routeiq-alpha"
    assert first.bundle_version == first.strategy_version == "alpha-1"
    # beta was trained with the code and maths topics swapped.
    registry.activate(bundles["beta"])
    swapped = decider.decide(RouteQuery(candidates, prompt=PYTHON, cost_weight=0.0))
    assert swapped.ranked[0].model_name == "gpt-4o"
    # Enough weight on price and the cheapest model wins whatever the prompt.
    stingy = decider.decide(RouteQuery(candidates, prompt=PYTHON, cost_weight=1.0))
    assert stingy.ranked[0].model_name == "gpt-4o-mini"


def test_a_bundle_for_another_encoder_is_refused(tmp_path, encoder):
    other = FakeEncoder(name="another-encoder")
    directory = write_bundle(tmp_path, encoder, version="x-1", identity=other.identity)
    with pytest.raises(BundleRefused, match="retrain it on the serving encoder") as err:
        load_bundle(directory, encoder)
    assert refusal_reason(err.value) == "encoder_mismatch"
    # Same name, different dimension: a different identity too.
    with pytest.raises(BundleRefused, match="trained on encoder"):
        load_bundle(write_bundle(tmp_path, encoder, version="y-1"), FakeEncoder(dimension=16))


def test_rollback_previous_and_named_and_unknown(encoder, bundles):
    alpha, beta = bundles["alpha"], bundles["beta"]
    registry, decider = engine(encoder, alpha)
    registry.activate(beta)
    assert decider.decide(query()).bundle_version == beta.version
    assert registry.rollback("previous") == (beta.version, alpha.version)
    assert decider.decide(query()).bundle_version == alpha.version
    assert registry.rollback(beta.version) == (alpha.version, beta.version)
    with pytest.raises(UnknownVersion, match="'nope' is not loaded"):
        registry.rollback("nope")


def test_only_k_versions_stay_loaded_and_the_active_one_is_never_evicted(encoder, bundles):
    registry, _ = engine(encoder, bundles["alpha"], keep_versions=1)
    registry.activate(bundles["beta"])
    assert [v.version for v in registry.versions()] == [bundles["beta"].version]
    with pytest.raises(UnknownVersion, match="no previous"):
        registry.rollback("previous")


def test_requests_in_flight_keep_the_routing_they_started_with(encoder, bundles):
    registry, _ = engine(encoder, bundles["alpha"])
    snapshot = registry.routing()
    registry.activate(bundles["beta"])
    assert snapshot.active is not None
    assert snapshot.active.version == bundles["alpha"].version  # the old snapshot is untouched
    assert registry.routing() is not snapshot


def test_nothing_loaded_is_not_ready_until_a_bundle_is(encoder, bundles):
    registry, decider = engine(encoder, None)
    assert registry.bundle is None and registry.active_versions() == []
    with pytest.raises(NotReady):
        decider.decide(query())
    with pytest.raises(NotReady):
        registry.listing()
    registry.activate(bundles["alpha"])
    assert decider.decide(query()).bundle_version == "alpha-1"


def test_static_strategies_rank_exactly_the_candidates(encoder, bundles):
    registry, decider = engine(encoder, bundles["alpha"], static_order=["gpt-4o-mini", "gpt-4o"])
    cheapest = decider.decide(query(strategy="cheapest"))
    assert [r.id for r in cheapest.ranked] == ["b", "a", "c"]
    assert cheapest.prompt_tokens == 0  # no embedding needed
    assert cheapest.bundle_version == "alpha-1"  # prices came from the active bundle
    fixed = decider.decide(query(strategy="fixed-order"))
    assert [r.id for r in fixed.ranked] == ["b", "a", "c"]
    firsts = {decider.decide(query(strategy="round-robin")).ranked[0].id for _ in range(3)}
    assert firsts == {"a", "b", "c"}
    with pytest.raises(InvalidRequest, match="unknown strategy"):
        decider.decide(query(strategy="nope"))
    listing = registry.listing()
    names = {i.name for i in listing.strategies}
    assert names == {"cheapest", "fixed-order", "round-robin", "routeiq-alpha"}
    assert listing.default == f"routeiq-alpha@{bundles['alpha'].version}"
    assert listing.split == () and listing.sticky_by == ""


def test_split_is_sticky_weighted_and_reported(encoder, bundles):
    registry, decider = engine(encoder, bundles["alpha"])
    registry.activate(bundles["beta"])
    registry.set_split(
        [("old", bundles["alpha"].version, 1.0), ("new", "routeiq-beta", 3.0)], "team"
    )
    seen: dict[str, set[str]] = {}
    for team in range(100):
        for _ in range(2):
            d = decider.decide(query(team_id_hash=f"t{team}"))
            seen.setdefault(f"t{team}", set()).add(d.arm)
            assert d.bundle_version == (
                bundles["alpha"].version if d.arm == "old" else bundles["beta"].version
            )
    assert all(len(arms) == 1 for arms in seen.values())
    counts = [sum(arms == {a} for arms in seen.values()) for a in ("old", "new")]
    assert counts[0] > 0 and counts[1] > counts[0]
    assert registry.active_versions() == [bundles["beta"].version, bundles["alpha"].version]
    listing = registry.listing()
    # Version and bare names were pinned to what they meant when the split was set.
    assert [(a.name, a.strategy) for a in listing.split] == [
        ("old", "routeiq-alpha@alpha-1"),
        ("new", "routeiq-beta@beta-1"),
    ]
    assert listing.sticky_by == "team"
    with pytest.raises(InvalidRequest):
        registry.set_split([("x", "cheapest", -1.0)], "user")
    with pytest.raises(UnknownVersion):
        registry.set_split([("x", "ghost", 1.0)], "user")


def test_split_hash_is_stable_across_processes():
    split = TrafficSplit((TrafficArm("a", "cheapest", 1), TrafficArm("b", "round-robin", 1)))
    # sha256-based: the same user lands on the same arm on every replica, every run.
    assert [split.choose(f"user-{i}", "", "", "x").name for i in range(6)] == [
        split.choose(f"user-{i}", "", "", "y").name for i in range(6)
    ]


def test_signature_policy(tmp_path, bundle_dirs, encoder):
    key = Ed25519PrivateKey.generate()
    bundle = Path(shutil.copytree(bundle_dirs["alpha"], tmp_path / "b"))
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
    good = bundles["alpha"]
    bad = Path(shutil.copytree(bundles["beta"].directory, tmp_path / "bad"))
    (bad / "weights.pkl").write_bytes(b"\x80\x05")
    pointer = tmp_path / "current"
    pointer.symlink_to(good.directory)
    registry, _ = engine(encoder, good)
    metrics, audit = ServiceMetrics(), AuditLog(tmp_path / "audit.jsonl")
    reloader = Reloader(
        pointer, registry, encoder, metrics=metrics, audit=audit, signatures=SignaturePolicy()
    )
    pointer.unlink()
    pointer.symlink_to(bad)
    reloader.poll()
    assert registry.active_version == good.version
    assert metrics.refused.labels(reason="pickle")._value.get() == 1
    reloader.poll()  # same fingerprint: not retried, not counted again
    assert metrics.refused.labels(reason="pickle")._value.get() == 1
    pointer.unlink()
    pointer.symlink_to(bundles["beta"].directory)
    reloader.poll()
    assert registry.active_version == bundles["beta"].version
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
    _, decider = engine(encoder, bundles["alpha"])
    q = query(requested_model="auto")
    with provider.get_tracer("test").start_as_current_span("Route"):
        decision = decider.decide(q)
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
