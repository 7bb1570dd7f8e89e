"""The AdminService servicer and the bearer-token check in front of it.

Nothing here catches or picks status codes: the token check raises ``Unauthenticated`` and
the servicer lets the domain's errors through; ``boundary.ErrorBoundary`` answers both.
"""

from __future__ import annotations

import hmac
from typing import Any, NoReturn

import grpc

from routeiq.decision.v1 import admin_pb2 as admin_pb
from routeiq.decision.v1 import admin_pb2_grpc as admin_grpc

from .admin import AdminOps
from .boundary import Continuation
from .convert import (
    Undecodable,
    reload_from_proto,
    reload_to_proto,
    require_decoded,
    rollback_from_proto,
    rollback_to_proto,
    split_from_proto,
    split_to_proto,
    status_to_proto,
    versions_to_proto,
)
from .errors import Unauthenticated

ADMIN_SERVICE_DESCRIPTOR = admin_pb.DESCRIPTOR.services_by_name["AdminService"]
ADMIN_SERVICE = ADMIN_SERVICE_DESCRIPTOR.full_name
ACTOR_METADATA = "x-routeiq-actor"


def _refusal(message: str) -> grpc.RpcMethodHandler:
    def refuse(request: Any, context: grpc.ServicerContext) -> NoReturn:
        raise Unauthenticated(message)

    return grpc.unary_unary_rpc_method_handler(refuse)


class AdminTokenInterceptor(grpc.ServerInterceptor):
    """Refuses every AdminService call without ``authorization: Bearer <admin_token>``.

    With no token configured the admin API is closed: a default that opens it would let
    anyone who reaches the port roll the router back. A refused call gets a handler that
    raises ``Unauthenticated`` (the error boundary answers it), never the real one.
    """

    def __init__(self, token: str | None) -> None:
        self._expected = f"Bearer {token}".encode() if token else None
        self._disabled = _refusal("the admin API is disabled: set ROUTEIQ_ADMIN_TOKEN")
        self._wrong = _refusal("missing or wrong admin token: send 'authorization: Bearer <token>'")

    def intercept_service(
        self,
        continuation: Continuation,
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        if not handler_call_details.method.startswith(f"/{ADMIN_SERVICE}/"):
            return continuation(handler_call_details)
        if self._expected is None:
            return self._disabled
        sent = next(
            (v for k, v in handler_call_details.invocation_metadata or () if k == "authorization"),
            "",
        )
        sent_bytes = sent.encode() if isinstance(sent, str) else bytes(sent)
        # Constant-time comparison: response timing must not reveal the token.
        if not hmac.compare_digest(sent_bytes, self._expected):
            return self._wrong
        return continuation(handler_call_details)


def _who(context: grpc.ServicerContext) -> str:
    actor = next(
        (str(v) for k, v in context.invocation_metadata() or () if k == ACTOR_METADATA), ""
    )
    return f"{actor or 'admin-token'}@{context.peer()}"


class AdminServicer(admin_grpc.AdminServiceServicer):
    def __init__(self, ops: AdminOps) -> None:
        self._ops = ops

    def GetStatus(
        self, request: admin_pb.GetStatusRequest | Undecodable, context: grpc.ServicerContext
    ) -> admin_pb.GetStatusResponse:
        require_decoded(request)
        return status_to_proto(self._ops.status())

    def ListVersions(
        self,
        request: admin_pb.ListVersionsRequest | Undecodable,
        context: grpc.ServicerContext,
    ) -> admin_pb.ListVersionsResponse:
        require_decoded(request)
        return versions_to_proto(self._ops.list_versions())

    def Reload(
        self, request: admin_pb.ReloadRequest | Undecodable, context: grpc.ServicerContext
    ) -> admin_pb.ReloadResponse:
        why = reload_from_proto(request)
        # Loading and validating a bundle takes a while on this pool thread; Route calls
        # keep being answered on the others.
        result = self._ops.reload(who=_who(context), why=why)
        return reload_to_proto(result)

    def Rollback(
        self, request: admin_pb.RollbackRequest | Undecodable, context: grpc.ServicerContext
    ) -> admin_pb.RollbackResponse:
        change = rollback_from_proto(request)
        result = self._ops.rollback(change.to, who=_who(context), why=change.why)
        return rollback_to_proto(result)

    def SetTrafficSplit(
        self,
        request: admin_pb.SetTrafficSplitRequest | Undecodable,
        context: grpc.ServicerContext,
    ) -> admin_pb.SetTrafficSplitResponse:
        change = split_from_proto(request)
        result = self._ops.set_split(
            change.arms, change.sticky_by, who=_who(context), why=change.why
        )
        return split_to_proto(result)
