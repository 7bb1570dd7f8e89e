"""The DecisionService servicer: convert the request, call the domain, convert the reply.

Nothing here catches: ``boundary.ErrorBoundary`` answers whatever a method raises.
"""

from __future__ import annotations

import grpc

from routeiq.decision.v1 import decision_pb2 as pb
from routeiq.decision.v1 import decision_pb2_grpc as pb_grpc

from .convert import (
    Undecodable,
    decision_to_proto,
    feedback_from_proto,
    outcome_from_proto,
    query_from_proto,
    require_decoded,
    strategies_to_proto,
)
from .runner import RouteRunner
from .versions import VersionRegistry

DECISION_SERVICE_DESCRIPTOR = pb.DESCRIPTOR.services_by_name["DecisionService"]
DECISION_SERVICE = DECISION_SERVICE_DESCRIPTOR.full_name


class DecisionServicer(pb_grpc.DecisionServiceServicer):
    def __init__(self, runner: RouteRunner, registry: VersionRegistry) -> None:
        self._runner = runner
        self._registry = registry

    def Route(
        self, request: pb.RouteRequest | Undecodable, context: grpc.ServicerContext
    ) -> pb.RouteResponse:
        query = query_from_proto(request)
        decision = self._runner.route(query, context.time_remaining())
        return decision_to_proto(decision)

    def ListStrategies(
        self, request: pb.ListStrategiesRequest | Undecodable, context: grpc.ServicerContext
    ) -> pb.ListStrategiesResponse:
        require_decoded(request)
        return strategies_to_proto(self._registry.listing())

    def RecordOutcome(
        self, request: pb.RecordOutcomeRequest | Undecodable, context: grpc.ServicerContext
    ) -> pb.RecordOutcomeResponse:
        self._runner.record_outcome(outcome_from_proto(request))
        return pb.RecordOutcomeResponse()

    def RecordFeedback(
        self, request: pb.RecordFeedbackRequest | Undecodable, context: grpc.ServicerContext
    ) -> pb.RecordFeedbackResponse:
        self._runner.record_feedback(feedback_from_proto(request))
        return pb.RecordFeedbackResponse()
