"""The learning-loop contract on the service side: exploration with logged propensity, outcome
results, feedback, and the events file (which never holds the prompt text)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import pytest

from decision_service.convert import decision_to_proto, feedback_from_proto, outcome_from_proto
from decision_service.domain import CandidateIn, Feedback, Outcome, RankedCandidate, RouteQuery
from decision_service.errors import InvalidRequest
from decision_service.policy import explore
from decision_service.telemetry import configure_events
from routeiq.decision.v1 import decision_pb2 as pb

from .test_runner import make_runner, sample

RANKED = [
    RankedCandidate("a", "m-a", 0.9, 0.9, 1.0, True),
    RankedCandidate("b", "m-b", 0.5, 0.5, 1.0, True),
    RankedCandidate("c", "m-c", 0.2, 0.2, 1.0, True),
    RankedCandidate("x", "unknown", 0.0, 0.0, 0.0, False),
]
IDS = [f"decision-{i}" for i in range(4000)]


def test_without_exploration_the_best_is_served_with_propensity_one():
    served = explore(RANKED, 0.0, "any")
    assert served.ranked == RANKED and served.propensity == 1.0 and not served.explored


def test_exploration_is_reproducible_and_logs_the_chosen_candidates_probability():
    eps, n = 0.2, 3  # the unknown model is never explored
    draws = [explore(RANKED, eps, i) for i in IDS]
    assert [explore(RANKED, eps, i) for i in IDS[:50]] == draws[:50]
    served = [d.ranked[0].id for d in draws]
    assert "x" not in served
    for d in draws:
        expected = 1 - eps + eps / n if d.ranked[0].id == "a" else eps / n
        assert d.propensity == pytest.approx(expected)
        assert d.explored == (d.ranked[0].id != "a")
        assert sorted(r.id for r in d.ranked) == ["a", "b", "c", "x"]
    # The realised shares match the logged probabilities (4,000 fixed ids: deterministic).
    assert served.count("a") / len(IDS) == pytest.approx(1 - eps + eps / n, abs=0.02)
    assert served.count("b") / len(IDS) == pytest.approx(eps / n, abs=0.02)


def test_an_explored_move_keeps_the_others_in_rank_order():
    moved = next(d for d in (explore(RANKED, 0.2, i) for i in IDS) if d.ranked[0].id == "c")
    assert [r.id for r in moved.ranked] == ["c", "a", "b", "x"]


def test_the_decider_explores_ml_decisions_and_the_runner_counts_them(encoder, bundles):
    runner = make_runner(encoder, bundles["alpha"], exploration_rate=0.2)
    query = RouteQuery(
        candidates=[CandidateIn("a", "gpt-4o"), CandidateIn("b", "gpt-4o-mini")],
        prompt="hello, how is the weather today",
    )
    decisions = [runner.route(query, 5.0) for _ in range(120)]
    explored = [d for d in decisions if d.explored]
    assert explored and len(explored) < len(decisions)
    for d in explored:
        assert d.selection_reason == "explored" and d.propensity == pytest.approx(0.1)
        assert d.ranked[0].model_name == "gpt-4o"  # not the best-scored one
    for d in decisions:
        if not d.explored:
            assert d.propensity == pytest.approx(0.9)
    assert sample(runner, "routeiq_explored_decisions_total", strategy="routeiq-alpha") == len(
        explored
    )
    wire = decision_to_proto(explored[0])
    assert wire.explored and wire.propensity == pytest.approx(0.1)


def test_static_strategies_are_never_explored(encoder, bundles):
    runner = make_runner(encoder, bundles["alpha"], exploration_rate=0.2)
    query = RouteQuery(
        candidates=[CandidateIn("a", "gpt-4o"), CandidateIn("b", "gpt-4o-mini")],
        prompt="hello",
        strategy="cheapest",
    )
    decisions = [runner.route(query, 5.0) for _ in range(60)]
    assert all(d.propensity == 1.0 and not d.explored for d in decisions)


def test_exploration_rate_is_bounded(encoder, bundles):
    with pytest.raises(ValueError, match="exploration_rate"):
        make_runner(encoder, bundles["alpha"], exploration_rate=0.3)


@pytest.mark.parametrize(
    ("status", "result", "expected_status", "expected_result"),
    [
        ("success", pb.OUTCOME_RESULT_UNSPECIFIED, "success", "success"),
        ("failure", pb.OUTCOME_RESULT_UNSPECIFIED, "failure", "provider_error"),
        ("timeout", pb.OUTCOME_RESULT_UNSPECIFIED, "timeout", "timeout"),
        ("", pb.OUTCOME_RESULT_REFUSAL, "failure", "refusal"),
        ("success", pb.OUTCOME_RESULT_ESCALATION, "success", "escalation"),
        ("great", pb.OUTCOME_RESULT_UNSPECIFIED, "great", ""),
    ],
)
def test_the_outcome_result_comes_from_the_enum_else_from_the_legacy_status(
    status, result, expected_status, expected_result
):
    outcome = outcome_from_proto(
        pb.RecordOutcomeRequest(decision_id="d", status=status, result=result)
    )
    assert (outcome.status, outcome.result) == (expected_status, expected_result)


def test_feedback_scores_thumbs_and_sources():
    up = feedback_from_proto(
        pb.RecordFeedbackRequest(
            decision_id="d", thumbs=pb.THUMBS_UP, source=pb.FEEDBACK_SOURCE_USER
        )
    )
    assert (up.score, up.thumbs, up.source) == (1.0, True, "user")
    down = feedback_from_proto(pb.RecordFeedbackRequest(decision_id="d", thumbs=pb.THUMBS_DOWN))
    assert (down.score, down.source) == (0.0, "application")
    judged = feedback_from_proto(
        pb.RecordFeedbackRequest(
            decision_id="d", score=0.25, source=pb.FEEDBACK_SOURCE_JUDGE, source_name="j@1"
        )
    )
    assert (judged.score, judged.source, judged.source_name) == (0.25, "judge", "j@1")
    with pytest.raises(InvalidRequest, match="send score"):
        feedback_from_proto(pb.RecordFeedbackRequest(decision_id="d"))


OUTCOME = Outcome(
    "d-1", "b", "gpt-4o-mini", "failure", 1, 0, 10.0, None, False, "", "Err", "provider_error"
)


def test_invalid_results_and_feedback_name_what_to_fix(encoder, bundles):
    runner = make_runner(encoder, bundles["alpha"])
    with pytest.raises(InvalidRequest, match="result"):
        runner.record_outcome(replace(OUTCOME, result="meh"))
    with pytest.raises(InvalidRequest, match="within"):
        runner.record_feedback(Feedback("d-1", 1.5, "user"))
    with pytest.raises(InvalidRequest, match="decision_id"):
        runner.record_feedback(Feedback("", 0.5, "user"))
    runner.record_feedback(Feedback("d-1", 0.5, "judge"))
    assert sample(runner, "routeiq_feedback_total", source="judge") == 1


@pytest.mark.parametrize("prompt_hash", [False, True])
def test_the_events_file_holds_all_three_events_and_never_the_prompt(
    encoder, bundles, tmp_path, prompt_hash
):
    path = tmp_path / "events.jsonl"
    prompt = "a secret prompt about my medical history"
    configure_events(path, prompt_hash=prompt_hash)
    try:
        runner = make_runner(encoder, bundles["alpha"])
        decision = runner.route(
            RouteQuery(candidates=[CandidateIn("a", "gpt-4o")], prompt=prompt), 5.0
        )
        runner.record_outcome(replace(OUTCOME, decision_id=decision.decision_id))
        runner.record_feedback(Feedback(decision.decision_id, 0.0, "user", thumbs=True))
    finally:
        configure_events(None)
    text = path.read_text()
    assert "secret" not in text
    lines = [json.loads(line) for line in text.splitlines()]
    assert [line["name"] for line in lines] == [
        "routeiq.router_decision.v1",
        "routeiq.router_outcome.v1",
        "routeiq.router_feedback.v1",
    ]
    assert {line["attributes"]["routeiq.decision_id"] for line in lines} == {decision.decision_id}
    decided = lines[0]["attributes"]
    assert decided["routeiq.propensity"] == 1.0 and decided["routeiq.explored"] is False
    digest = hashlib.sha256(prompt.encode()).hexdigest()
    assert (decided.get("routeiq.prompt.sha256") == digest) is prompt_hash
    outcome = json.loads(lines[1]["attributes"]["routeiq.router_outcome.payload"])
    assert outcome["result"] == "provider_error" and outcome["decision_id"] == decision.decision_id
    feedback = json.loads(lines[2]["attributes"]["routeiq.router_feedback.payload"])
    assert feedback["score"] == 0.0 and feedback["thumbs"] is True
