"""Conversions between the routeiq.decision.v1 messages and the engine's domain types."""

from __future__ import annotations

from .api.v1 import decision_pb2 as pb
from .engine import Decision, RouteQuery
from .policy import CandidateIn


def query_from_proto(request: pb.RouteRequest) -> RouteQuery:
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
    )
