"""Where gRPC meets the domain: the one place a raised exception becomes a status code.

``ErrorBoundary`` is a server interceptor wrapped around every unary handler of the
services it is given (DecisionService and AdminService), the admin token check's refusals
included. Servicers and interceptors just raise: a ``RouteIQError`` is answered with its
class's status code and its message (written for the caller: it says what to fix);
anything else is a bug, answered INTERNAL with a generic message and logged with its
traceback here, so internals never reach a caller. Every error answered counts once in
``routeiq_errors_total{code}``.

``add_service`` registers a servicer with request parsing that never raises, so a request
that does not parse reaches the servicer (and becomes INVALID_ARGUMENT) instead of gRPC
answering INTERNAL on its own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message_factory import GetMessageClass

from .convert import lenient
from .errors import (
    BundleRefused,
    DeadlineTooShort,
    EncoderRefused,
    InvalidRequest,
    NotCalibrated,
    NotReady,
    Overloaded,
    RouteIQError,
    Unauthenticated,
    UnknownVersion,
)
from .metrics import ServiceMetrics

log = logging.getLogger(__name__)

INTERNAL_MESSAGE = "internal error; see the service log"

_STATUS_BY_ERROR: dict[type[RouteIQError], grpc.StatusCode] = {
    InvalidRequest: grpc.StatusCode.INVALID_ARGUMENT,
    NotReady: grpc.StatusCode.UNAVAILABLE,
    Overloaded: grpc.StatusCode.RESOURCE_EXHAUSTED,
    DeadlineTooShort: grpc.StatusCode.DEADLINE_EXCEEDED,
    BundleRefused: grpc.StatusCode.FAILED_PRECONDITION,
    EncoderRefused: grpc.StatusCode.FAILED_PRECONDITION,
    # The request is well formed; the serving bundle cannot honour it (no calibration).
    NotCalibrated: grpc.StatusCode.FAILED_PRECONDITION,
    UnknownVersion: grpc.StatusCode.NOT_FOUND,
    Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
}

# A unary-unary handler: (request, grpc.ServicerContext) -> reply.
Behavior = Callable[..., Any]
Continuation = Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None]


def status_for(error: BaseException) -> grpc.StatusCode:
    """The gRPC status for ``error``: its class's code, or INTERNAL for anything unexpected."""
    for cls in type(error).__mro__:
        code = _STATUS_BY_ERROR.get(cls)
        if code is not None:
            return code
    return grpc.StatusCode.INTERNAL


def answer_for(error: BaseException) -> tuple[grpc.StatusCode, str]:
    """The status code and the message the caller gets for ``error``."""
    code = status_for(error)
    if code is grpc.StatusCode.INTERNAL:
        return code, INTERNAL_MESSAGE
    return code, str(error)


def guard(behavior: Behavior, metrics: ServiceMetrics, method: str = "") -> Behavior:
    """``behavior`` answering what it raises with ``answer_for``, counted and (if a bug) logged."""

    def guarded(request: Any, context: grpc.ServicerContext) -> Any:
        # Handlers here raise and never call context.abort themselves: grpc's abort raises a
        # bare Exception this would answer a second time, as INTERNAL.
        try:
            return behavior(request, context)
        except Exception as exc:
            code, message = answer_for(exc)
            metrics.errors.labels(code=code.name).inc()
            if code is grpc.StatusCode.INTERNAL:
                log.error("%s failed unexpectedly", method or "call", exc_info=exc)
            context.abort(code, message)

    return guarded


class ErrorBoundary(grpc.ServerInterceptor):
    """Wraps every unary-unary handler of ``services`` in ``guard`` (wrapped once per handler)."""

    def __init__(self, metrics: ServiceMetrics, services: Iterable[ServiceDescriptor]) -> None:
        self._metrics = metrics
        services = list(services)
        self._prefixes = tuple(f"/{s.full_name}/" for s in services)
        self._methods = {f"/{s.full_name}/{m.name}" for s in services for m in s.methods}
        # method -> (handler as found, its guarded twin); only real method names are kept, so
        # calls to made-up names cannot grow it.
        self._guarded: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None:
        # None when no service has the method: UNIMPLEMENTED.
        handler = continuation(handler_call_details)
        method = handler_call_details.method
        if (
            handler is None
            or not method.startswith(self._prefixes)
            or handler.request_streaming
            or handler.response_streaming
            or handler.unary_unary is None
        ):
            return handler
        known = self._guarded.get(method)
        if known is not None and known[0] is handler:
            return known[1]
        guarded = grpc.unary_unary_rpc_method_handler(
            guard(handler.unary_unary, self._metrics, method),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
        if method in self._methods:
            self._guarded[method] = (handler, guarded)
        return guarded


def service_handler(service: ServiceDescriptor, servicer: object) -> grpc.GenericRpcHandler:
    """Handlers for every method of ``service``, from ``servicer``'s methods of the same name.

    Like the generated ``add_*Servicer_to_server``, except that a request that does not
    parse reaches the servicer as ``convert.Undecodable``.
    """
    handlers = {
        method.name: grpc.unary_unary_rpc_method_handler(
            getattr(servicer, method.name),
            request_deserializer=lenient(GetMessageClass(method.input_type)),
            response_serializer=GetMessageClass(method.output_type).SerializeToString,
        )
        for method in service.methods
    }
    return grpc.method_handlers_generic_handler(service.full_name, handlers)


def add_service(service: ServiceDescriptor, servicer: object, server: grpc.Server) -> None:
    server.add_generic_rpc_handlers((service_handler(service, servicer),))
