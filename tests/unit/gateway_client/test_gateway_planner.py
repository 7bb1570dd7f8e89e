"""The planner alone: plain deployment dicts in, a plan or a choice out. No router, no client."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from gateway_client.decision import Reason
from gateway_client.fallback import OrderedFallback
from gateway_client.planner import Plan, Planner
from gateway_client.settings import GatewayClientSettings
from routeiq.decision.v1 import decision_pb2


def dep(id: str | None, model: str = "openai/gpt-4o") -> dict[str, Any]:
    info = {} if id is None else {"id": id}
    return {"model_name": "g", "litellm_params": {"model": model}, "model_info": info}


GROUP = [dep("a", "openai/gpt-4o-mini"), dep("b"), dep("c", "anthropic/claude-3-haiku")]
MESSAGES = [{"role": "user", "content": "hi there"}]


def planner(**settings: Any) -> Planner:
    return Planner(GatewayClientSettings(**settings), OrderedFallback())


def routable(p: Planner) -> Plan:
    plan = p.plan("g", GROUP, frozenset(), MESSAGES, None, None, breaker_open=False)
    assert plan.request is not None
    return plan


def test_a_routable_group_becomes_a_route_request_over_the_healthy_deployments() -> None:
    plan = planner(cost_weight=0.2).plan(
        "g", GROUP, frozenset({"b"}), MESSAGES, None, {"litellm_call_id": "c-1"}, breaker_open=False
    )
    assert plan.pick is None and plan.reason is None and plan.request is not None
    assert [c.id for c in plan.request.candidates] == ["a", "c"]
    assert plan.request.prompt == "hi there"
    assert plan.request.request_id == "c-1"
    assert plan.request.cost_weight == pytest.approx(0.2)
    assert plan.by_id["a"] is GROUP[0] and plan.by_id["c"] is GROUP[2]
    assert list(plan.healthy) == [GROUP[0], GROUP[2]]


@pytest.mark.parametrize(
    ("cooling", "settings", "messages", "breaker_open", "reason", "pick"),
    [
        ({"a", "b", "c"}, {}, MESSAGES, False, Reason.NO_HEALTHY_CANDIDATES, "a"),
        ({"a", "b"}, {}, MESSAGES, False, Reason.SINGLE_CANDIDATE, "c"),
        (set(), {"routing_groups": ["other"]}, MESSAGES, False, Reason.GROUP_NOT_ROUTED, "a"),
        ({"a"}, {}, MESSAGES, True, Reason.BREAKER_OPEN, "b"),
        (set(), {}, [], True, Reason.BREAKER_OPEN, "a"),  # checked before the prompt
        (set(), {}, [{"role": "system", "content": "x"}], False, Reason.NO_PROMPT, "a"),
    ],
)
def test_picks_made_without_asking_the_service(
    cooling: set[str],
    settings: dict[str, Any],
    messages: list[dict[str, str]],
    breaker_open: bool,
    reason: Reason,
    pick: str,
) -> None:
    p = planner(**settings)
    plan = p.plan("g", GROUP, frozenset(cooling), messages, None, None, breaker_open=breaker_open)
    assert plan.request is None
    assert (plan.reason, plan.pick) == (
        reason,
        next(d for d in GROUP if d["model_info"]["id"] == pick),
    )
    decision, deployment = p.decided(plan)
    assert decision.reason is reason and deployment is plan.pick
    assert decision.deployment_id == pick
    assert decision.candidate_ids == tuple(d["model_info"]["id"] for d in plan.healthy)


def test_deployments_without_an_id_or_with_a_repeated_one_are_offered_once() -> None:
    first, repeat, anonymous = dep("a"), dep("a", "openai/gpt-4o-mini"), dep(None)
    plan = planner().plan(
        "g", [first, repeat, anonymous], frozenset(), MESSAGES, None, None, breaker_open=False
    )
    # One distinct candidate is nothing to decide: the first deployment with that id serves.
    assert (plan.reason, plan.request) == (Reason.SINGLE_CANDIDATE, None)
    assert plan.pick is first


def test_the_answer_maps_the_top_offered_id_back_to_the_router_deployment() -> None:
    p = planner()
    plan = routable(p)
    response = decision_pb2.RouteResponse(
        ranked=[
            decision_pb2.RankedCandidate(id="ghost", score=0.99),
            decision_pb2.RankedCandidate(id="c", score=0.8),
            decision_pb2.RankedCandidate(id="a", score=0.1),
        ],
        decision_id="d-1",
        strategy_name="knn",
        selection_reason="highest_score",
        timings=decision_pb2.Timings(total_ms=2.0),
    )
    choice = p.answered(plan, response, 3.5)
    assert choice is not None and choice.deployment is GROUP[2]
    decision = choice.decision
    assert (decision.reason, decision.deployment_id, decision.score) == (
        Reason.ROUTED,
        "c",
        pytest.approx(0.8),
    )
    assert (decision.latency_ms, decision.service_ms) == (3.5, pytest.approx(2.0))
    assert (decision.decision_id, decision.strategy_name) == ("d-1", "knn")
    assert decision.candidate_ids == ("a", "b", "c") and decision.candidates == 3
    assert not decision.fallback


def test_an_answer_naming_no_offered_id_is_no_choice() -> None:
    p = planner()
    response = decision_pb2.RouteResponse(ranked=[decision_pb2.RankedCandidate(id="ghost")])
    assert p.answered(routable(p), response, 1.0) is None


def test_falling_back_keeps_the_reason_the_error_and_the_offered_ids() -> None:
    p = planner()
    decision, deployment = p.fall_back(
        routable(p), Reason.RPC_FAILURE, latency_ms=5.0, error="UNAVAILABLE"
    )
    assert deployment is GROUP[0]  # ordered fallback
    assert decision.fallback and decision.reason is Reason.RPC_FAILURE
    assert (decision.error, decision.latency_ms) == ("UNAVAILABLE", 5.0)
    assert decision.candidate_ids == ("a", "b", "c")
    assert decision.as_metadata()["fallback"] is True


def test_the_decision_modules_import_no_litellm() -> None:
    # The planner, pick core and recording are meant to be usable (and cheap to import)
    # without LiteLLM; only the strategy, callback and proxy modules need it.
    code = (
        "import sys, gateway_client, gateway_client.planner, gateway_client.pick, "
        "gateway_client.recording, gateway_client.decision; "
        "print('litellm' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == "False"
