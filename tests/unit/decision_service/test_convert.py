"""Every converter between the wire messages and the domain types, through the wire bytes.

Requests go bytes -> ``lenient`` parse -> ``*_from_proto`` (as the server runs them) and
replies go ``*_to_proto`` -> bytes -> parse, so a field the converter drops or a presence
bit it loses shows up here.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import pytest
from google.protobuf.message import Message

from decision_service import convert
from decision_service.convert import (
    Undecodable,
    arms_from_proto,
    arms_to_proto,
    decision_to_proto,
    feedback_from_proto,
    lenient,
    outcome_from_proto,
    query_from_proto,
    reload_from_proto,
    reload_to_proto,
    require_decoded,
    rollback_from_proto,
    rollback_to_proto,
    split_from_proto,
    split_to_proto,
    status_to_proto,
    strategies_to_proto,
    versions_to_proto,
)
from decision_service.domain import (
    CandidateIn,
    Decision,
    Outcome,
    RankedCandidate,
    ReloadResult,
    RollbackChange,
    RollbackResult,
    RouteQuery,
    SplitChange,
    SplitResult,
    Status,
    StrategyInfo,
    StrategyListing,
    Timings,
    TrafficArm,
    VersionInfo,
)
from decision_service.errors import InvalidRequest
from routeiq.decision.v1 import admin_pb2 as admin_pb
from routeiq.decision.v1 import decision_pb2 as pb

NOT_UTF8 = b"\x0a\x02\xff\xfe"  # field 1, a string, holding bytes that are not UTF-8
TESTED = {
    "lenient",
    "require_decoded",
    "query_from_proto",
    "decision_to_proto",
    "arms_to_proto",
    "arms_from_proto",
    "strategies_to_proto",
    "outcome_from_proto",
    "feedback_from_proto",
    "status_to_proto",
    "versions_to_proto",
    "reload_from_proto",
    "reload_to_proto",
    "rollback_from_proto",
    "rollback_to_proto",
    "split_from_proto",
    "split_to_proto",
}


def wire(message: Message) -> Any:
    """``message`` as the servicer receives it: serialized, then parsed leniently."""
    return lenient(type(message))(message.SerializeToString())


def reparsed(message: Message) -> Any:
    """A reply as the client receives it."""
    return type(message).FromString(message.SerializeToString())


def test_every_converter_is_tested_here():
    defined = {
        name
        for name, fn in vars(convert).items()
        if inspect.isfunction(fn) and fn.__module__ == convert.__name__ and not name.startswith("_")
    }
    assert defined == TESTED


# ---- parsing and invalid input ----------------------------------------------------------


def test_lenient_parses_valid_bytes_and_reports_invalid_ones():
    request = pb.RouteRequest(prompt="héllo", candidates=[pb.Candidate(id="a", model_name="m")])
    assert lenient(pb.RouteRequest)(request.SerializeToString()) == request
    bad = lenient(pb.RouteRequest)(NOT_UTF8)
    assert isinstance(bad, Undecodable)
    assert bad.message_type == "routeiq.decision.v1.RouteRequest" and bad.error


@pytest.mark.parametrize(
    ("convert_fn", "message_cls"),
    [
        (query_from_proto, pb.RouteRequest),
        (outcome_from_proto, pb.RecordOutcomeRequest),
        (reload_from_proto, admin_pb.ReloadRequest),
        (rollback_from_proto, admin_pb.RollbackRequest),
        (split_from_proto, admin_pb.SetTrafficSplitRequest),
        (require_decoded, pb.ListStrategiesRequest),
    ],
    ids=lambda x: getattr(x, "__name__", ""),
)
def test_a_request_that_does_not_parse_is_invalid_and_says_what_to_fix(convert_fn, message_cls):
    undecodable = lenient(message_cls)(NOT_UTF8 if message_cls.DESCRIPTOR.fields else b"\x0a\x05")
    assert isinstance(undecodable, Undecodable)
    with pytest.raises(InvalidRequest) as err:
        convert_fn(undecodable)
    message = str(err.value)
    assert message_cls.DESCRIPTOR.full_name in message
    assert "must be valid UTF-8" in message


def test_require_decoded_accepts_a_parsed_message():
    require_decoded(pb.ListStrategiesRequest())  # no error


# ---- Route ------------------------------------------------------------------------------


def test_a_prompt_request_becomes_a_query_field_by_field():
    request = pb.RouteRequest(
        prompt="Sort a list",
        candidates=[
            pb.Candidate(id="a", model_name="gpt-4o", provider="openai"),
            pb.Candidate(id="b", model_name="gpt-4o-mini", cost_per_million_tokens=0.0),
        ],
        requested_model="auto",
        user_id_hash="u",
        team_id_hash="t",
        request_id="r",
        cost_weight=0.0,
        strategy="cheapest",
    )
    assert query_from_proto(wire(request)) == RouteQuery(
        candidates=[
            CandidateIn("a", "gpt-4o", "openai", None),  # no price sent: the bundle's applies
            CandidateIn("b", "gpt-4o-mini", "", 0.0),  # a price of 0 is a price
        ],
        prompt="Sort a list",
        embedding=None,
        requested_model="auto",
        user_id_hash="u",
        team_id_hash="t",
        request_id="r",
        cost_weight=0.0,  # sent as 0: not "unset"
        strategy="cheapest",
    )


def test_an_embedding_request_and_an_empty_one():
    request = pb.RouteRequest(embedding=pb.Embedding(values=[0.25, -0.5]))
    query = query_from_proto(wire(request))
    assert query.prompt is None and list(query.embedding or ()) == [0.25, -0.5]
    assert query.cost_weight is None and query.candidates == []
    empty = query_from_proto(wire(pb.RouteRequest()))
    # Neither prompt nor embedding: the decide path refuses it with "send exactly one of".
    assert empty.prompt is None and empty.embedding is None


def test_a_decision_reaches_the_client_whole():
    decision = Decision(
        ranked=[
            RankedCandidate("b", "gpt-4o-mini", 0.75, 0.8, 0.6, True),
            RankedCandidate("z", "mystery", 0.0, 0.0, 0.0, False),
        ],
        decision_id="d-1",
        strategy_name="routeiq-knn",
        strategy_version="knn-1",
        bundle_version="knn-1",
        arm="control",
        timings=Timings(total_ms=2.5, embedding_ms=2.0, strategy_ms=0.5),
        selection_reason="highest_score",
        prompt_tokens=12,
        prompt_truncated=True,
        propensity=0.05,
        explored=True,
        embedding=np.ones(4, np.float32),
    )
    reply = reparsed(decision_to_proto(decision))
    assert [
        RankedCandidate(
            r.id,
            r.model_name,
            r.score,
            r.predicted_quality,
            r.cost_per_million_tokens,
            r.known_to_router,
        )
        for r in reply.ranked
    ] == [
        RankedCandidate("b", "gpt-4o-mini", 0.75, pytest.approx(0.8), pytest.approx(0.6), True),
        RankedCandidate("z", "mystery", 0.0, 0.0, 0.0, False),
    ]
    assert (reply.decision_id, reply.strategy_name, reply.strategy_version) == (
        "d-1",
        "routeiq-knn",
        "knn-1",
    )
    assert (reply.bundle_version, reply.arm, reply.selection_reason) == (
        "knn-1",
        "control",
        "highest_score",
    )
    assert (reply.timings.total_ms, reply.timings.embedding_ms, reply.timings.strategy_ms) == (
        pytest.approx(2.5),
        pytest.approx(2.0),
        pytest.approx(0.5),
    )
    assert (reply.prompt_tokens, reply.prompt_truncated) == (12, True)
    assert (reply.propensity, reply.explored) == (pytest.approx(0.05), True)
    # Every field of the reply was set: none is left at its default by a forgotten line.
    assert {f.name for f, _ in reply.ListFields()} == set(
        pb.RouteResponse.DESCRIPTOR.fields_by_name
    )


# ---- strategies, splits and outcomes ----------------------------------------------------

ARMS = (TrafficArm("control", "routeiq-knn@knn-1", 3.0), TrafficArm("cheap", "cheapest", 1.0))


def test_arms_round_trip():
    assert arms_from_proto(reparsed(split_to_proto(SplitResult(ARMS, "user"))).arms) == tuple(
        (a.name, a.strategy, a.weight) for a in ARMS
    )
    assert [(a.name, a.strategy, a.weight) for a in arms_to_proto(ARMS)] == [
        ("control", "routeiq-knn@knn-1", 3.0),
        ("cheap", "cheapest", 1.0),
    ]
    assert arms_to_proto(()) == [] and arms_from_proto([]) == ()


def test_a_strategy_listing_reaches_the_client_whole():
    listing = StrategyListing(
        strategies=(
            StrategyInfo(
                "routeiq-knn",
                "knn-1",
                "ml",
                ("prompt", "embedding"),
                bundle_version="knn-1",
                models=("gpt-4o", "gpt-4o-mini"),
            ),
            StrategyInfo("cheapest", "1", "static", ("prompt",)),
        ),
        default="routeiq-knn@knn-1",
        split=ARMS,
        sticky_by="team",
    )
    reply = reparsed(strategies_to_proto(listing))
    assert [
        StrategyInfo(
            s.name,
            s.version,
            s.kind,
            tuple(s.capabilities),
            s.bundle_version,
            tuple(s.models),
        )
        for s in reply.strategies
    ] == list(listing.strategies)
    assert reply.default_strategy == "routeiq-knn@knn-1" and reply.sticky_by == "team"
    assert tuple(TrafficArm(a.name, a.strategy, a.weight) for a in reply.split) == ARMS


def test_an_outcome_request_becomes_an_outcome_field_by_field():
    request = pb.RecordOutcomeRequest(
        decision_id="d-1",
        deployment_id="dep-b",
        model_name="gpt-4o-mini",
        status="fallback",
        input_tokens=10,
        output_tokens=20,
        latency_ms=350.5,
        cost_usd=0.0,
        fallback=True,
        fallback_reason="timeout",
        error_type="Timeout",
    )
    assert outcome_from_proto(wire(request)) == Outcome(
        decision_id="d-1",
        deployment_id="dep-b",
        model_name="gpt-4o-mini",
        status="fallback",
        input_tokens=10,
        output_tokens=20,
        latency_ms=350.5,
        cost_usd=0.0,  # sent as 0: known to be free, not unknown
        fallback=True,
        fallback_reason="timeout",
        error_type="Timeout",
    )
    unknown_cost = outcome_from_proto(wire(pb.RecordOutcomeRequest(decision_id="d")))
    assert unknown_cost.cost_usd is None


# ---- admin ------------------------------------------------------------------------------


@pytest.mark.parametrize(("serving", "health"), [(True, "SERVING"), (False, "NOT_SERVING")])
def test_status_reaches_the_admin_whole(serving, health):
    status = Status(
        active_versions=["knn-2", "knn-1"],
        encoder_name="all-MiniLM-L6-v2/fp32",
        encoder_digest="abc123",
        uptime_s=12.5,
        in_flight=3,
        decisions_total=2**40,
        split=ARMS,
        sticky_by="user",
        default_strategy="routeiq-knn@knn-2",
        serving=serving,
    )
    reply = reparsed(status_to_proto(status))
    assert list(reply.active_versions) == ["knn-2", "knn-1"]
    assert (reply.encoder_name, reply.encoder_digest) == ("all-MiniLM-L6-v2/fp32", "abc123")
    assert (reply.uptime_s, reply.in_flight, reply.decisions_total) == (12.5, 3, 2**40)
    assert tuple(TrafficArm(a.name, a.strategy, a.weight) for a in reply.split) == ARMS
    assert (reply.default_strategy, reply.health) == ("routeiq-knn@knn-2", health)


def test_versions_reach_the_admin_whole():
    versions = [
        VersionInfo("knn-2", "routeiq-knn", "knn", "2026-01-02T00:00:00Z", True, "/b/2", "d2"),
        VersionInfo("knn-1", "routeiq-knn", "knn", "2026-01-01T00:00:00Z", False, "/b/1", "d1"),
    ]
    reply = reparsed(versions_to_proto(versions))
    assert [
        VersionInfo(
            v.version,
            v.strategy_name,
            v.router_type,
            v.loaded_utc,
            v.active,
            v.directory,
            v.encoder_digest,
        )
        for v in reply.versions
    ] == versions


def test_reload_request_and_reply():
    assert reload_from_proto(wire(admin_pb.ReloadRequest(reason="new data"))) == "new data"
    changed = reparsed(reload_to_proto(ReloadResult("knn-1", "knn-2", True)))
    assert (changed.previous_version, changed.active_version, changed.changed) == (
        "knn-1",
        "knn-2",
        True,
    )
    first = reparsed(reload_to_proto(ReloadResult(None, None, False)))
    assert (first.previous_version, first.active_version, first.changed) == ("", "", False)


def test_rollback_request_and_reply():
    request = admin_pb.RollbackRequest(to="previous", reason="regressed")
    assert rollback_from_proto(wire(request)) == RollbackChange(to="previous", why="regressed")
    reply = reparsed(rollback_to_proto(RollbackResult("knn-2", "knn-1")))
    assert (reply.previous_version, reply.active_version) == ("knn-2", "knn-1")
    assert reparsed(rollback_to_proto(RollbackResult(None, "knn-1"))).previous_version == ""


def test_split_request_and_reply():
    request = admin_pb.SetTrafficSplitRequest(
        arms=arms_to_proto(ARMS), sticky_by="team", reason="experiment 7"
    )
    assert split_from_proto(wire(request)) == SplitChange(
        arms=(("control", "routeiq-knn@knn-1", 3.0), ("cheap", "cheapest", 1.0)),
        sticky_by="team",
        why="experiment 7",
    )
    cleared = split_from_proto(wire(admin_pb.SetTrafficSplitRequest(reason="end")))
    assert cleared == SplitChange(arms=(), sticky_by="", why="end")
    reply = reparsed(split_to_proto(SplitResult(ARMS, "team")))
    assert tuple(TrafficArm(a.name, a.strategy, a.weight) for a in reply.arms) == ARMS
    assert reply.sticky_by == "team"


def test_feedback_from_proto_refuses_undecodable_bytes():
    # Scores, thumbs and sources are covered in test_learning_contract.
    with pytest.raises(InvalidRequest, match="could not be parsed"):
        feedback_from_proto(Undecodable("routeiq.decision.v1.RecordFeedbackRequest", "bad"))
