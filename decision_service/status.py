"""The one place where domain errors become gRPC status codes."""

from __future__ import annotations

import grpc

from .errors import (
    BundleRefused,
    DeadlineTooShort,
    EncoderRefused,
    InvalidRequest,
    NotReady,
    Overloaded,
    RouteIQError,
    Unauthenticated,
    UnknownVersion,
)

_STATUS_BY_ERROR: dict[type[RouteIQError], grpc.StatusCode] = {
    InvalidRequest: grpc.StatusCode.INVALID_ARGUMENT,
    NotReady: grpc.StatusCode.UNAVAILABLE,
    Overloaded: grpc.StatusCode.RESOURCE_EXHAUSTED,
    DeadlineTooShort: grpc.StatusCode.DEADLINE_EXCEEDED,
    BundleRefused: grpc.StatusCode.FAILED_PRECONDITION,
    EncoderRefused: grpc.StatusCode.FAILED_PRECONDITION,
    UnknownVersion: grpc.StatusCode.NOT_FOUND,
    Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
}


def status_for(error: BaseException) -> grpc.StatusCode:
    """The gRPC status for ``error``: its class's code, or INTERNAL for anything unexpected."""
    for cls in type(error).__mro__:
        code = _STATUS_BY_ERROR.get(cls)
        if code is not None:
            return code
    return grpc.StatusCode.INTERNAL
