"""Quality feedback by decision id, sent by an application after it has judged an answer.

A LiteLLM caller finds the decision id in the ``metadata`` dict it passed with the request:
the RouteIQ strategy records its pick there (``metadata["routeiq_decision"]``), so after
``router.completion(..., metadata=meta)`` returns, ``decision_id_of(meta)`` names the
decision. Later (seconds or days) the application reports how good the answer was::

    send_feedback(client, decision_id, thumbs=True, source="user")
    send_feedback(client, decision_id, score=0.8, source="judge", source_name="judge@v3")

Only a number (or thumbs) and who judged travel: there is no comment field, so no free text
(and no personal data in it) reaches the telemetry.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Protocol

from routeiq.decision.v1 import decision_pb2

from .outcomes import METADATA_KEY

SOURCES = {
    "application": decision_pb2.FEEDBACK_SOURCE_APPLICATION,
    "user": decision_pb2.FEEDBACK_SOURCE_USER,
    "judge": decision_pb2.FEEDBACK_SOURCE_JUDGE,
}


class FeedbackSender(Protocol):
    def record_feedback(
        self, request: decision_pb2.RecordFeedbackRequest, timeout_s: float
    ) -> None: ...


def decision_id_of(metadata: Mapping[str, Any] | None) -> str | None:
    """The RouteIQ decision id recorded in a request's metadata, or None (static fallback
    without a decision, or a deployment the strategy did not pick)."""
    record = metadata.get(METADATA_KEY) if isinstance(metadata, Mapping) else None
    if not isinstance(record, Mapping):
        return None
    decision_id = record.get("decision_id")
    return decision_id if isinstance(decision_id, str) and decision_id else None


def feedback_request(
    decision_id: str,
    *,
    score: float | None = None,
    thumbs: bool | None = None,
    source: str = "application",
    source_name: str = "",
) -> decision_pb2.RecordFeedbackRequest:
    """The RecordFeedback request for exactly one of ``score`` (0..1) and ``thumbs``."""
    if not decision_id:
        raise ValueError("decision_id is empty: use decision_id_of(metadata)")
    if (score is None) == (thumbs is None):
        raise ValueError("give exactly one of score and thumbs")
    if source not in SOURCES:
        raise ValueError(f"source {source!r} must be one of {sorted(SOURCES)}")
    request = decision_pb2.RecordFeedbackRequest(
        decision_id=decision_id, source=SOURCES[source], source_name=source_name
    )
    if score is not None:
        if not (math.isfinite(score) and 0.0 <= score <= 1.0):
            raise ValueError(f"score {score} must be within [0, 1]")
        request.score = score
    else:
        request.thumbs = decision_pb2.THUMBS_UP if thumbs else decision_pb2.THUMBS_DOWN
    return request


def send_feedback(
    client: FeedbackSender,
    decision_id: str,
    *,
    score: float | None = None,
    thumbs: bool | None = None,
    source: str = "application",
    source_name: str = "",
    timeout_s: float = 2.0,
) -> None:
    """Send one quality signal (raises ``grpc.RpcError`` when the service refuses it)."""
    request = feedback_request(
        decision_id, score=score, thumbs=thumbs, source=source, source_name=source_name
    )
    client.record_feedback(request, timeout_s)
