"""Conversions between the routeiq.decision.v1 messages and the service's domain types."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import DecodeError, Message

from routeiq.decision.v1 import admin_pb2 as admin_pb
from routeiq.decision.v1 import decision_pb2 as pb

from .domain import (
    RESULT_OF_STATUS,
    CandidateIn,
    Decision,
    Feedback,
    Outcome,
    ReloadResult,
    RollbackChange,
    RollbackResult,
    RouteQuery,
    SplitChange,
    SplitResult,
    Status,
    StrategyListing,
    TrafficArm,
    VersionInfo,
)
from .errors import InvalidRequest


@dataclass(frozen=True)
class Undecodable:
    """A request whose bytes did not parse (for example a prompt that is not UTF-8)."""

    message_type: str
    error: str


def lenient(message_cls: type[Message]) -> Callable[[bytes], Any]:
    """A request deserializer that returns ``Undecodable`` instead of raising.

    gRPC answers INTERNAL when a deserializer raises, before any of our code runs; handing
    the failure to the servicer lets it answer INVALID_ARGUMENT with a message instead.
    """

    def parse(data: bytes) -> Any:
        try:
            return message_cls.FromString(data)
        except DecodeError as exc:
            return Undecodable(message_cls.DESCRIPTOR.full_name, str(exc))

    return parse


def require_decoded(request: object) -> None:
    if isinstance(request, Undecodable):
        raise InvalidRequest(
            f"the {request.message_type} could not be parsed ({request.error}); string "
            "fields (prompt, ids, model names) must be valid UTF-8"
        )


def query_from_proto(request: pb.RouteRequest | Undecodable) -> RouteQuery:
    require_decoded(request)
    assert isinstance(request, pb.RouteRequest)
    features = request.WhichOneof("features")
    return RouteQuery(
        candidates=[
            CandidateIn(
                id=c.id,
                model_name=c.model_name,
                provider=c.provider,
                cost_per_million_tokens=(
                    c.cost_per_million_tokens if c.HasField("cost_per_million_tokens") else None
                ),
            )
            for c in request.candidates
        ],
        prompt=request.prompt if features == "prompt" else None,
        embedding=list(request.embedding.values) if features == "embedding" else None,
        requested_model=request.requested_model,
        user_id_hash=request.user_id_hash,
        team_id_hash=request.team_id_hash,
        request_id=request.request_id,
        cost_weight=request.cost_weight if request.HasField("cost_weight") else None,
        strategy=request.strategy,
        strong_share=request.strong_share if request.HasField("strong_share") else None,
    )


def decision_to_proto(decision: Decision) -> pb.RouteResponse:
    return pb.RouteResponse(
        ranked=[
            pb.RankedCandidate(
                id=r.id,
                model_name=r.model_name,
                score=r.score,
                predicted_quality=r.predicted_quality,
                cost_per_million_tokens=r.cost_per_million_tokens,
                known_to_router=r.known_to_router,
            )
            for r in decision.ranked
        ],
        decision_id=decision.decision_id,
        strategy_name=decision.strategy_name,
        strategy_version=decision.strategy_version,
        bundle_version=decision.bundle_version,
        arm=decision.arm,
        timings=pb.Timings(
            total_ms=decision.timings.total_ms,
            embedding_ms=decision.timings.embedding_ms,
            strategy_ms=decision.timings.strategy_ms,
        ),
        selection_reason=decision.selection_reason,
        prompt_tokens=decision.prompt_tokens,
        prompt_truncated=decision.prompt_truncated,
        propensity=decision.propensity,
        explored=decision.explored,
    )


def arms_to_proto(arms: Sequence[TrafficArm]) -> list[pb.TrafficArm]:
    return [pb.TrafficArm(name=a.name, strategy=a.strategy, weight=a.weight) for a in arms]


def strategies_to_proto(listing: StrategyListing) -> pb.ListStrategiesResponse:
    return pb.ListStrategiesResponse(
        strategies=[
            pb.StrategyInfo(
                name=i.name,
                version=i.version,
                kind=i.kind,
                capabilities=list(i.capabilities),
                bundle_version=i.bundle_version,
                models=list(i.models),
            )
            for i in listing.strategies
        ],
        default_strategy=listing.default,
        split=arms_to_proto(listing.split),
        sticky_by=listing.sticky_by,
    )


def outcome_from_proto(request: pb.RecordOutcomeRequest | Undecodable) -> Outcome:
    require_decoded(request)
    assert isinstance(request, pb.RecordOutcomeRequest)
    result = _result(request)
    status = request.status
    if not status and request.result != pb.OUTCOME_RESULT_UNSPECIFIED:
        # A gateway that sends only the result: the legacy status metric still gets a value.
        status = result if result in ("success", "timeout") else "failure"
    return Outcome(
        decision_id=request.decision_id,
        deployment_id=request.deployment_id,
        model_name=request.model_name,
        status=status,
        input_tokens=request.input_tokens,
        output_tokens=request.output_tokens,
        latency_ms=request.latency_ms,
        cost_usd=request.cost_usd if request.HasField("cost_usd") else None,
        fallback=request.fallback,
        fallback_reason=request.fallback_reason,
        error_type=request.error_type,
        result=result,
        escalated_to_model=request.escalated_to_model,
    )


def _result(request: pb.RecordOutcomeRequest) -> str:
    """The result enum as a lower-case name; unset: what the legacy ``status`` means."""
    if request.result != pb.OUTCOME_RESULT_UNSPECIFIED:
        return pb.OutcomeResult.Name(request.result).removeprefix("OUTCOME_RESULT_").lower()
    # An unknown status maps to "" so the runner names the field to fix.
    return RESULT_OF_STATUS.get(request.status, "")


def feedback_from_proto(request: pb.RecordFeedbackRequest | Undecodable) -> Feedback:
    require_decoded(request)
    assert isinstance(request, pb.RecordFeedbackRequest)
    signal = request.WhichOneof("signal")
    if signal == "score":
        score = request.score
    elif signal == "thumbs" and request.thumbs != pb.THUMBS_UNSPECIFIED:
        score = 1.0 if request.thumbs == pb.THUMBS_UP else 0.0
    else:
        raise InvalidRequest("send score (0..1) or thumbs (THUMBS_UP / THUMBS_DOWN)")
    source = request.source or pb.FEEDBACK_SOURCE_APPLICATION
    return Feedback(
        decision_id=request.decision_id,
        score=score,
        source=pb.FeedbackSource.Name(source).removeprefix("FEEDBACK_SOURCE_").lower(),
        source_name=request.source_name,
        thumbs=signal == "thumbs",
    )


def status_to_proto(status: Status) -> admin_pb.GetStatusResponse:
    return admin_pb.GetStatusResponse(
        active_versions=status.active_versions,
        encoder_name=status.encoder_name,
        encoder_digest=status.encoder_digest,
        uptime_s=status.uptime_s,
        in_flight=status.in_flight,
        decisions_total=status.decisions_total,
        split=arms_to_proto(status.split),
        default_strategy=status.default_strategy,
        health="SERVING" if status.serving else "NOT_SERVING",
    )


def versions_to_proto(versions: Sequence[VersionInfo]) -> admin_pb.ListVersionsResponse:
    return admin_pb.ListVersionsResponse(
        versions=[
            admin_pb.BundleVersion(
                version=v.version,
                strategy_name=v.strategy_name,
                router_type=v.router_type,
                loaded_utc=v.loaded_utc,
                active=v.active,
                directory=v.directory,
                encoder_digest=v.encoder_digest,
            )
            for v in versions
        ]
    )


def reload_from_proto(request: admin_pb.ReloadRequest | Undecodable) -> str:
    """The reason for the audit log."""
    require_decoded(request)
    assert isinstance(request, admin_pb.ReloadRequest)
    return request.reason


def reload_to_proto(result: ReloadResult) -> admin_pb.ReloadResponse:
    return admin_pb.ReloadResponse(
        previous_version=result.previous_version or "",
        active_version=result.active_version or "",
        changed=result.changed,
    )


def rollback_from_proto(request: admin_pb.RollbackRequest | Undecodable) -> RollbackChange:
    require_decoded(request)
    assert isinstance(request, admin_pb.RollbackRequest)
    return RollbackChange(to=request.to, why=request.reason)


def rollback_to_proto(result: RollbackResult) -> admin_pb.RollbackResponse:
    return admin_pb.RollbackResponse(
        previous_version=result.previous_version or "", active_version=result.active_version
    )


def arms_from_proto(arms: Sequence[pb.TrafficArm]) -> tuple[tuple[str, str, float], ...]:
    return tuple((a.name, a.strategy, a.weight) for a in arms)


def split_from_proto(request: admin_pb.SetTrafficSplitRequest | Undecodable) -> SplitChange:
    require_decoded(request)
    assert isinstance(request, admin_pb.SetTrafficSplitRequest)
    return SplitChange(
        arms=arms_from_proto(request.arms), sticky_by=request.sticky_by, why=request.reason
    )


def split_to_proto(result: SplitResult) -> admin_pb.SetTrafficSplitResponse:
    return admin_pb.SetTrafficSplitResponse(
        arms=arms_to_proto(result.arms), sticky_by=result.sticky_by
    )
