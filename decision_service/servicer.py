"""The DecisionService servicer: convert the request, call the engine, convert the reply."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Executor

import grpc

from .api.v1 import decision_pb2 as pb
from .api.v1 import decision_pb2_grpc as pb_grpc
from .convert import decision_to_proto, query_from_proto
from .engine import DecisionEngine
from .errors import RouteIQError
from .status import status_for

log = logging.getLogger(__name__)


class DecisionServicer(pb_grpc.DecisionServiceServicer):
    def __init__(self, engine: DecisionEngine, executor: Executor) -> None:
        self._engine = engine
        self._executor = executor

    async def Route(
        self, request: pb.RouteRequest, context: grpc.aio.ServicerContext
    ) -> pb.RouteResponse:
        try:
            query = query_from_proto(request)
            loop = asyncio.get_running_loop()
            decision = await loop.run_in_executor(self._executor, self._engine.decide, query)
        except RouteIQError as exc:
            await context.abort(status_for(exc), str(exc))
        except Exception:
            log.exception("Route failed unexpectedly")
            await context.abort(grpc.StatusCode.INTERNAL, "internal error; see the service log")
        return decision_to_proto(decision)
