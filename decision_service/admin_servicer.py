"""The AdminService servicer and the bearer-token check in front of it."""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from routeiq.decision.v1 import admin_pb2 as admin_pb
from routeiq.decision.v1 import admin_pb2_grpc as admin_grpc

from .admin import AdminOps
from .convert import (
    arms_from_proto,
    arms_to_proto,
    reload_to_proto,
    status_to_proto,
    versions_to_proto,
)
from .metrics import ServiceMetrics
from .servicer import abort_for

ADMIN_SERVICE = admin_pb.DESCRIPTOR.services_by_name["AdminService"].full_name
ACTOR_METADATA = "x-routeiq-actor"


class AdminTokenInterceptor(grpc.aio.ServerInterceptor):
    """Refuses every AdminService call without ``authorization: Bearer <admin_token>``.

    With no token configured the admin API is closed: a default that opens it would let
    anyone who reaches the port roll the router back.
    """

    def __init__(self, token: str | None, metrics: ServiceMetrics) -> None:
        self._expected = f"Bearer {token}".encode() if token else None
        self._metrics = metrics

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        if not handler_call_details.method.startswith(f"/{ADMIN_SERVICE}/"):
            return await continuation(handler_call_details)
        if self._expected is None:
            return self._deny("the admin API is disabled: set ROUTEIQ_ADMIN_TOKEN")
        sent = next(
            (v for k, v in handler_call_details.invocation_metadata or () if k == "authorization"),
            "",
        )
        sent_bytes = sent.encode() if isinstance(sent, str) else bytes(sent)
        # Constant-time comparison: response timing must not reveal the token.
        if not hmac.compare_digest(sent_bytes, self._expected):
            return self._deny("missing or wrong admin token: send 'authorization: Bearer <token>'")
        return await continuation(handler_call_details)

    def _deny(self, message: str) -> grpc.RpcMethodHandler:
        metrics = self._metrics

        async def deny(request: Any, context: grpc.aio.ServicerContext) -> None:
            metrics.errors.labels(code=grpc.StatusCode.UNAUTHENTICATED.name).inc()
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

        return grpc.unary_unary_rpc_method_handler(deny)


def _who(context: grpc.aio.ServicerContext) -> str:
    actor = next(
        (str(v) for k, v in context.invocation_metadata() or () if k == ACTOR_METADATA), ""
    )
    return f"{actor or 'admin-token'}@{context.peer()}"


class AdminServicer(admin_grpc.AdminServiceServicer):
    def __init__(self, ops: AdminOps, metrics: ServiceMetrics) -> None:
        self._ops = ops
        self._metrics = metrics

    async def GetStatus(
        self, request: admin_pb.GetStatusRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb.GetStatusResponse:
        try:
            status = self._ops.status()
        except Exception as exc:
            await abort_for(context, exc, self._metrics)
        return status_to_proto(status)

    async def ListVersions(
        self, request: admin_pb.ListVersionsRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb.ListVersionsResponse:
        return versions_to_proto(self._ops.list_versions())

    async def Reload(
        self, request: admin_pb.ReloadRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb.ReloadResponse:
        try:
            # Loading and validating a bundle takes CPU for a while: never on the event loop.
            result = await asyncio.to_thread(
                self._ops.reload, who=_who(context), why=request.reason
            )
        except Exception as exc:
            await abort_for(context, exc, self._metrics)
        return reload_to_proto(result)

    async def Rollback(
        self, request: admin_pb.RollbackRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb.RollbackResponse:
        try:
            previous, active = await asyncio.to_thread(
                self._ops.rollback, request.to, who=_who(context), why=request.reason
            )
        except Exception as exc:
            await abort_for(context, exc, self._metrics)
        return admin_pb.RollbackResponse(previous_version=previous or "", active_version=active)

    async def SetTrafficSplit(
        self, request: admin_pb.SetTrafficSplitRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb.SetTrafficSplitResponse:
        try:
            arms, sticky_by = self._ops.set_split(
                arms_from_proto(request.arms),
                request.sticky_by,
                who=_who(context),
                why=request.reason,
            )
        except Exception as exc:
            await abort_for(context, exc, self._metrics)
        return admin_pb.SetTrafficSplitResponse(arms=arms_to_proto(arms), sticky_by=sticky_by)
