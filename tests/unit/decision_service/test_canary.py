"""The canary: the withdrawal rule (window, thresholds, minimum samples), the sticky share,
failed canary decisions answered by the stable version, and the controller that loads the
canary pointer, withdraws by rule with an audit entry and a metric, and holds the
withdrawal until the pointer moves. No sockets; bad bundles are real ONNX graphs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from pydantic import ValidationError

from decision_service.audit import AuditLog
from decision_service.bundle import load_bundle
from decision_service.canary import (
    CANARY_ARM,
    CANARY_FALLBACK_ARM,
    ArmFigures,
    CanaryMetrics,
    CanaryMonitor,
    CanaryRule,
    judge,
)
from decision_service.canary_control import CanaryController
from decision_service.decide import Decider
from decision_service.domain import CandidateIn, Outcome, RouteQuery
from decision_service.metrics import ServiceMetrics
from decision_service.reload import Reloader
from decision_service.runner import RouteRunner
from decision_service.settings import ServiceSettings
from decision_service.signing import SignaturePolicy
from decision_service.versions import VersionRegistry

from ..fakes import SAMPLE_PROMPTS, FakeEncoder, write_bundle
from .canary_bundles import with_heavy_graph, with_nan_for_unseen_prompts

RULE = CanaryRule(window_s=60, min_samples=50, max_error_rate=0.02)
CANDIDATES = [
    CandidateIn("a", "gpt-4o"),
    CandidateIn("b", "gpt-4o-mini"),
    CandidateIn("c", "claude-3-5-sonnet"),
]
# Prompts the NaN bundle's manifest samples do not cover (its graph yields NaN for them).
UNSEEN = [f"please summarise report number {i} about shipping delays" for i in range(400)]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# ---- the rule -------------------------------------------------------------------------


def test_the_rule_does_not_judge_before_min_samples():
    assert judge(RULE, ArmFigures(decisions=49, errors=49), ArmFigures()) is None
    verdict = judge(RULE, ArmFigures(decisions=50, errors=50), ArmFigures())
    assert verdict is not None and verdict.reason == "error_rate" and verdict.value == 1.0


def test_the_error_rate_must_exceed_its_threshold():
    assert judge(RULE, ArmFigures(decisions=50, errors=1), ArmFigures()) is None  # 0.02
    verdict = judge(RULE, ArmFigures(decisions=50, errors=2), ArmFigures())
    assert verdict is not None
    assert (verdict.reason, verdict.value, verdict.threshold) == ("error_rate", 0.04, 0.02)
    assert verdict.describe() == (
        "error_rate 0.04 > threshold 0.02 over the last 60 s (2 of 50 canary decisions failed)"
    )


def test_the_fallback_rate_is_judged_against_the_stable_versions():
    canary = ArmFigures(outcomes=50, fallbacks=10)  # 0.2
    # Stable falls back almost as often (a provider problem, not the canary): kept.
    assert judge(RULE, canary, ArmFigures(outcomes=50, fallbacks=8)) is None
    verdict = judge(RULE, canary, ArmFigures(outcomes=50, fallbacks=2))
    assert verdict is not None and verdict.reason == "fallback_rate"
    assert math.isclose(verdict.threshold, 0.04 + 0.05)
    # Too few stable outcomes to compare: judged against 0.
    verdict = judge(RULE, canary, ArmFigures(outcomes=10, fallbacks=10))
    assert verdict is not None and math.isclose(verdict.threshold, 0.05)
    assert judge(RULE, ArmFigures(outcomes=49, fallbacks=49), ArmFigures()) is None


def test_latency_is_the_canary_p99_against_stable_p99_times_ratio_plus_slack():
    stable = ArmFigures(decisions=50, timed=50, p99_ms=2.0)
    at_threshold = ArmFigures(decisions=50, timed=50, p99_ms=2.0 * 2 + 5)
    assert judge(RULE, at_threshold, stable) is None
    slow = ArmFigures(decisions=50, timed=50, p99_ms=9.5)
    verdict = judge(RULE, slow, stable)
    assert verdict is not None and (verdict.reason, verdict.threshold) == ("latency", 9.0)
    # Without enough stable decisions there is nothing to compare with.
    assert judge(RULE, slow, ArmFigures(decisions=49, timed=49, p99_ms=2.0)) is None


def test_the_window_slides_and_outcomes_join_their_decisions_arm():
    clock = Clock()
    monitor = CanaryMonitor(RULE, clock=clock)
    for i in range(50):
        monitor.failed(f"failed-{i}")
    assert monitor.verdict() is not None
    clock.now += 61  # every failure has left the window
    assert monitor.verdict() is None
    assert monitor.figures()[0] == ArmFigures()
    monitor.decided("c1", True, 1.0)
    monitor.decided("s1", False, 1.0)
    monitor.outcome("c1", True)
    monitor.outcome("s1", False)
    monitor.outcome("never-decided-here", True)
    monitor.outcome("c1", True)  # a decision's outcome counts once
    canary, stable = monitor.figures()
    assert (canary.outcomes, canary.fallbacks, stable.outcomes, stable.fallbacks) == (1, 1, 1, 0)


# ---- the share and the decide path ----------------------------------------------------


@pytest.fixture
def setup(tmp_path: Path):
    encoder = FakeEncoder()
    stable = write_bundle(tmp_path, encoder, version="stable-1")
    nan = with_nan_for_unseen_prompts(stable, tmp_path / "nan-2", "nan-2")
    return encoder, stable, nan


def _registry(encoder: FakeEncoder, stable: Path) -> VersionRegistry:
    return VersionRegistry(encoder, load_bundle(stable, encoder))


def test_the_canary_takes_its_share_sticky_by_user_and_independent_of_split_arms(setup):
    encoder, stable, nan = setup
    registry = _registry(encoder, stable)
    registry.set_split([("a", "fixed-order", 50), ("b", "cheapest", 50)], "user")
    registry.set_canary(load_bundle(nan, encoder), 0.2, "user", CanaryMonitor(RULE))
    routing = registry.routing()
    picks = {}
    for i in range(2000):
        query = RouteQuery(CANDIDATES, prompt="hi", user_id_hash=f"user-{i}")
        picks[i] = routing.choose(query, f"d-{i}")[1]
        again = routing.choose(query, f"other-{i}")[1]
        assert again == picks[i]  # sticky: the same user, the same arm
    arms = list(picks.values())
    share = arms.count(CANARY_ARM) / len(arms)
    assert 0.17 < share < 0.23
    # Both split arms keep about half of what the canary leaves.
    assert abs(arms.count("a") - arms.count("b")) < 0.1 * len(arms)
    assert registry.active_versions() == ["stable-1", "nan-2"]
    named = RouteQuery(CANDIDATES, prompt="hi", strategy="cheapest", user_id_hash="user-1")
    assert routing.choose(named, "x")[1] == ""  # a named strategy bypasses the canary


def test_a_failed_canary_decision_is_answered_by_the_stable_version(setup):
    encoder, stable, nan = setup
    registry = _registry(encoder, stable)
    monitor = CanaryMonitor(RULE)
    registry.set_canary(load_bundle(nan, encoder), 1.0, "request", monitor)
    decider = Decider(registry)
    baseline = Decider(_registry(encoder, stable))
    failed = decider.decide(RouteQuery(CANDIDATES, prompt=UNSEEN[0], cost_weight=0.0))
    assert (failed.arm, failed.bundle_version) == (CANARY_FALLBACK_ARM, "stable-1")
    expected = baseline.decide(RouteQuery(CANDIDATES, prompt=UNSEEN[0], cost_weight=0.0))
    assert failed.ranked == expected.ranked
    assert all(math.isfinite(r.score) for r in failed.ranked)
    served = decider.decide(RouteQuery(CANDIDATES, prompt=SAMPLE_PROMPTS[0]))
    assert (served.arm, served.bundle_version) == (CANARY_ARM, "nan-2")
    canary, _ = monitor.figures()
    assert (canary.decisions, canary.errors, canary.timed) == (2, 1, 1)


# ---- the controller -------------------------------------------------------------------


class Service:
    """The pieces the server wires together, with a canary pointer in ``root``."""

    def __init__(self, root: Path, encoder: FakeEncoder, stable: Path, rule: CanaryRule) -> None:
        root.mkdir()
        (root / "current").symlink_to(stable)
        self.root = root
        self.encoder = encoder
        self.registry = _registry(encoder, stable)
        self.metrics = ServiceMetrics()
        self.audit = AuditLog(root / "audit.jsonl")
        self.reloader = Reloader(
            root / "current",
            self.registry,
            encoder,
            metrics=self.metrics,
            audit=self.audit,
            signatures=SignaturePolicy(),
        )
        self.decider = Decider(self.registry)
        self.canary_metrics = CanaryMetrics(self.metrics.registry)
        self.controller = self.new_controller(rule)

    def new_controller(self, rule: CanaryRule) -> CanaryController:
        return CanaryController(
            self.root / "canary",
            self.registry,
            self.reloader,
            self.audit,
            self.canary_metrics,
            rule=rule,
            share=0.5,
            sticky_by="request",
            state_file=self.root / "canary-state.json",
        )

    def point_canary(self, target: Path | None) -> None:
        link = self.root / "canary"
        link.unlink(missing_ok=True)
        if target is not None:
            link.symlink_to(target)

    def route(self, prompts: list[str]) -> list[str]:
        return [
            self.decider.decide(RouteQuery(CANDIDATES, prompt=p, request_id=f"r-{i}-{p}")).arm
            for i, p in enumerate(prompts)
        ]

    def actions(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in (self.root / "audit.jsonl").read_text().splitlines()]

    def sample(self, name: str, **labels: str) -> float:
        value = self.metrics.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value


def test_a_failing_canary_is_withdrawn_audited_counted_and_held_until_repromoted(setup, tmp_path):
    encoder, stable, nan = setup
    service = Service(tmp_path / "svc", encoder, stable, CanaryRule(min_samples=20))
    service.point_canary(nan)
    service.controller.poll()
    assert service.registry.canary is not None and service.registry.canary.version == "nan-2"
    assert service.sample("routeiq_canary_share") == 0.5
    arms = service.route(UNSEEN[:100])
    assert CANARY_FALLBACK_ARM in arms and "" in arms  # every request answered
    service.controller.poll()
    assert service.registry.canary is None
    withdraw = service.actions()[-1]
    assert withdraw["action"] == "canary_withdraw" and withdraw["who"] == "canary-rule"
    assert (withdraw["from"], withdraw["to"]) == ("nan-2", "stable-1")
    assert str(withdraw["why"]).startswith("error_rate 1 > threshold 0.01 over the last 60 s")
    assert json.loads(str(withdraw["detail"]))["reason"] == "error_rate"
    assert service.sample("routeiq_canary_withdrawals_total", reason="error_rate") == 1
    assert service.sample("routeiq_canary_share") == 0
    assert set(service.route(UNSEEN[:50])) == {""}  # no traffic for it any more
    service.controller.poll()
    assert service.registry.canary is None  # the pointer has not moved: still withdrawn
    # A restart remembers it (state file) while the pointer still names it.
    service.controller = service.new_controller(CanaryRule(min_samples=20))
    service.controller.poll()
    assert service.registry.canary is None
    # Re-promotion: the pointer moves away and back.
    service.point_canary(None)
    service.controller.poll()
    service.point_canary(nan)
    service.controller.poll()
    assert service.registry.canary is not None and service.registry.canary.version == "nan-2"
    assert [a["action"] for a in service.actions()] == [
        "canary_start",
        "canary_withdraw",
        "canary_start",
    ]


def test_a_slow_canary_is_withdrawn_for_latency(setup, tmp_path):
    encoder, stable, _ = setup
    slow = with_heavy_graph(stable, tmp_path / "slow-3", "slow-3")
    # The heavy graph runs 24 256x256 MatMuls against one 32x3 one: the ratio holds on any
    # machine, so no slack is needed to tell them apart.
    rule = CanaryRule(min_samples=20, max_latency_ratio=2.0, latency_slack_ms=0.0)
    service = Service(tmp_path / "svc", encoder, stable, rule)
    service.point_canary(slow)
    service.controller.poll()
    arms = service.route([f"route request {i}" for i in range(120)])
    assert CANARY_FALLBACK_ARM not in arms  # slow, but every decision succeeded
    service.controller.poll()
    assert service.registry.canary is None
    withdraw = service.actions()[-1]
    assert withdraw["action"] == "canary_withdraw"
    assert str(withdraw["why"]).startswith("latency ")
    assert service.sample("routeiq_canary_withdrawals_total", reason="latency") == 1


def test_outcomes_with_fallback_withdraw_the_canary(setup, tmp_path):
    encoder, stable, _ = setup
    other = write_bundle(tmp_path, encoder, version="other-4")
    service = Service(tmp_path / "svc", encoder, stable, CanaryRule(min_samples=20))
    service.point_canary(other)
    service.controller.poll()
    runner = RouteRunner(
        service.decider, service.metrics, workers=1, max_in_flight=4, min_deadline_s=0.0
    )
    for i in range(200):
        decision = service.decider.decide(RouteQuery(CANDIDATES, prompt="hi", request_id=f"{i}"))
        fell_back = decision.arm == CANARY_ARM  # every canary pick failed at the provider
        runner.record_outcome(
            Outcome(
                decision.decision_id, "a", "gpt-4o", "success", 1, 1, 5.0, None, fell_back, "", ""
            )
        )
    service.controller.poll()
    assert service.registry.canary is None
    assert str(service.actions()[-1]["why"]).startswith("fallback_rate 1 > threshold 0.05")


def test_a_canary_promoted_to_stable_stops_being_a_canary(setup, tmp_path):
    encoder, stable, _ = setup
    other = write_bundle(tmp_path, encoder, version="other-5")
    service = Service(tmp_path / "svc", encoder, stable, RULE)
    service.point_canary(other)
    service.controller.poll()
    service.registry.activate(load_bundle(other, encoder))
    service.controller.poll()
    assert service.registry.canary is None
    stop = service.actions()[-1]
    assert (stop["action"], stop["from"], stop["to"]) == ("canary_stop", "other-5", "other-5")


def test_canary_settings_need_the_watcher(tmp_path):
    with pytest.raises(ValidationError, match="reload_poll_ms"):
        ServiceSettings(bundle_dir=tmp_path, canary_dir=tmp_path / "c", reload_poll_ms=0)
