"""The DecisionService servicer: convert the request, call the domain, convert the reply."""

from __future__ import annotations

import logging
from typing import NoReturn

import grpc

from routeiq.decision.v1 import decision_pb2 as pb
from routeiq.decision.v1 import decision_pb2_grpc as pb_grpc

from .convert import (
    Undecodable,
    decision_to_proto,
    lenient,
    outcome_from_proto,
    query_from_proto,
    strategies_to_proto,
)
from .errors import RouteIQError
from .metrics import ServiceMetrics
from .runner import RouteRunner
from .status import status_for

log = logging.getLogger(__name__)

DECISION_SERVICE = pb.DESCRIPTOR.services_by_name["DecisionService"].full_name


async def abort_for(
    context: grpc.aio.ServicerContext, exc: BaseException, metrics: ServiceMetrics
) -> NoReturn:
    """Answer ``exc`` with its status code (INTERNAL, logged, for anything unexpected)."""
    code = status_for(exc)
    metrics.errors.labels(code=code.name).inc()
    if isinstance(exc, RouteIQError):
        await context.abort(code, str(exc))
    log.error("call failed unexpectedly", exc_info=exc)
    await context.abort(grpc.StatusCode.INTERNAL, "internal error; see the service log")


class DecisionServicer(pb_grpc.DecisionServiceServicer):
    def __init__(self, runner: RouteRunner, metrics: ServiceMetrics) -> None:
        self._runner = runner
        self._metrics = metrics

    async def Route(
        self, request: pb.RouteRequest | Undecodable, context: grpc.aio.ServicerContext
    ) -> pb.RouteResponse:
        try:
            query = query_from_proto(request)
            decision = await self._runner.route(query, context.time_remaining())
        except Exception as exc:
            await abort_for(context, exc, self._metrics)
        return decision_to_proto(decision)

    async def ListStrategies(
        self, request: pb.ListStrategiesRequest | Undecodable, context: grpc.aio.ServicerContext
    ) -> pb.ListStrategiesResponse:
        try:
            engine = self._runner.engine
            infos, default = engine.strategies()
            split = engine.split
        except Exception as exc:
            await abort_for(context, exc, self._metrics)
        return strategies_to_proto(
            infos, default, split.arms if split else (), split.sticky_by if split else ""
        )

    async def RecordOutcome(
        self, request: pb.RecordOutcomeRequest | Undecodable, context: grpc.aio.ServicerContext
    ) -> pb.RecordOutcomeResponse:
        try:
            self._runner.record_outcome(outcome_from_proto(request))
        except Exception as exc:
            await abort_for(context, exc, self._metrics)
        return pb.RecordOutcomeResponse()


def add_decision_service(servicer: DecisionServicer, server: grpc.aio.Server) -> None:
    """Like the generated ``add_DecisionServiceServicer_to_server``, with lenient parsing."""
    handlers = {
        name: grpc.unary_unary_rpc_method_handler(
            getattr(servicer, name),
            request_deserializer=lenient(request_cls),
            response_serializer=response_cls.SerializeToString,
        )
        for name, request_cls, response_cls in (
            ("Route", pb.RouteRequest, pb.RouteResponse),
            ("ListStrategies", pb.ListStrategiesRequest, pb.ListStrategiesResponse),
            ("RecordOutcome", pb.RecordOutcomeRequest, pb.RecordOutcomeResponse),
        )
    }
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(DECISION_SERVICE, handlers),)
    )
