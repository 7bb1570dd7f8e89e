"""Outcome results from LiteLLM's logging, and the feedback helper applications call."""

from __future__ import annotations

import pytest

from gateway_client import decision_id_of, send_feedback
from gateway_client.feedback import feedback_request
from gateway_client.outcomes import METADATA_KEY, outcome_from_logging
from routeiq.decision.v1 import decision_pb2

from .test_gateway_outcomes import logging_kwargs

RECORD = {"decision_id": "d-1", "deployment_id": "dep-a", "fallback": False, "reason": "routed"}


class ContentPolicyViolationError(Exception):
    """Named like LiteLLM's: the provider's filter refused the prompt."""


class APIConnectionError(Exception):
    pass


@pytest.mark.parametrize(
    ("failed", "error", "log", "status", "result"),
    [
        (False, None, {}, "success", decision_pb2.OUTCOME_RESULT_SUCCESS),
        (
            False,
            None,
            {"response": {"choices": [{"finish_reason": "content_filter"}]}},
            "success",
            decision_pb2.OUTCOME_RESULT_REFUSAL,
        ),
        (True, ContentPolicyViolationError(), {}, "failure", decision_pb2.OUTCOME_RESULT_REFUSAL),
        (True, APIConnectionError(), {}, "failure", decision_pb2.OUTCOME_RESULT_PROVIDER_ERROR),
        (True, TimeoutError(), {}, "timeout", decision_pb2.OUTCOME_RESULT_TIMEOUT),
    ],
)
def test_the_outcome_carries_a_result_beside_the_legacy_status(failed, error, log, status, result):
    kwargs = logging_kwargs(dict(RECORD), **log)
    if error is not None:
        kwargs["exception"] = error
    outcome = outcome_from_logging(kwargs, None, None, failed=failed)
    assert outcome is not None and outcome.status == status
    proto = outcome.to_proto()
    assert proto.result == result and proto.status == status


def test_the_decision_id_is_found_in_the_request_metadata():
    assert decision_id_of({METADATA_KEY: {"decision_id": "d-9"}}) == "d-9"
    assert decision_id_of({METADATA_KEY: {"decision_id": ""}}) is None
    assert decision_id_of({}) is None and decision_id_of(None) is None


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[decision_pb2.RecordFeedbackRequest, float]] = []

    def record_feedback(self, request: decision_pb2.RecordFeedbackRequest, timeout_s: float):
        self.sent.append((request, timeout_s))


def test_send_feedback_sends_thumbs_or_a_score_with_its_source():
    sender = Recorder()
    send_feedback(sender, "d-1", thumbs=False, source="user")
    send_feedback(sender, "d-1", score=0.7, source="judge", source_name="judge@3", timeout_s=1)
    (thumbs, _), (scored, timeout) = sender.sent
    assert thumbs.WhichOneof("signal") == "thumbs" and thumbs.thumbs == decision_pb2.THUMBS_DOWN
    assert thumbs.source == decision_pb2.FEEDBACK_SOURCE_USER
    assert scored.score == pytest.approx(0.7) and scored.source_name == "judge@3"
    assert scored.source == decision_pb2.FEEDBACK_SOURCE_JUDGE and timeout == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"score": 0.5, "thumbs": True}, "exactly one"),
        ({}, "exactly one"),
        ({"score": 1.5}, "within"),
        ({"score": 0.5, "source": "boss"}, "source"),
    ],
)
def test_bad_feedback_is_refused_before_sending(kwargs, message):
    with pytest.raises(ValueError, match=message):
        feedback_request("d-1", **kwargs)
    with pytest.raises(ValueError, match="decision_id"):
        feedback_request("", score=0.5)
