"""A thin client of ``DecisionService`` over one synchronous gRPC channel.

``route_async`` does not use ``grpc.aio``: an aio channel is bound to the event loop that
created it, while a LiteLLM router may be driven from several loops (and from threads). It
starts the call with the sync stub's ``.future()`` and hands the outcome to the awaiting loop
with ``loop.call_soon_threadsafe``, so the event loop never blocks and any loop can await it.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import grpc

from routeiq.decision.v1 import decision_pb2, decision_pb2_grpc

from .settings import GatewayClientSettings

logger = logging.getLogger(__name__)

ROUND_ROBIN_SERVICE_CONFIG = json.dumps({"loadBalancingConfig": [{"round_robin": {}}]})

# Keepalive pings only while calls are in flight (a default gRPC server answers idle pings more
# often than every 5 minutes with GOAWAY), and a short reconnect backoff so the channel is up
# again within about 2 s of the service coming back, before a half-open breaker probes it.
DEFAULT_CHANNEL_OPTIONS: tuple[tuple[str, Any], ...] = (
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 0),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2_000),
    ("grpc.enable_retries", 0),
)


class ErrorKind(enum.Enum):
    """How a failed Route call counts for the circuit breaker."""

    CALLER_ERROR = "caller_error"
    """The request was rejected (INVALID_ARGUMENT): our bug, not the service's; not counted."""
    FAILURE = "failure"
    """The service did not answer in time or could not (deadline, unavailable, overloaded, ...)."""


_CALLER_ERROR_CODES = frozenset({grpc.StatusCode.INVALID_ARGUMENT})


def status_code_of(error: BaseException) -> grpc.StatusCode | None:
    """The gRPC status code of ``error`` when it is an RPC error that carries one."""
    if not isinstance(error, grpc.RpcError):
        return None
    code = getattr(error, "code", None)
    if not callable(code):
        return None
    try:
        value = code()
    except Exception:
        return None
    return value if isinstance(value, grpc.StatusCode) else None


def classify_error(error: BaseException) -> ErrorKind:
    """INVALID_ARGUMENT is a caller error; every other error, gRPC or not, is a failure."""
    code = status_code_of(error)
    if code in _CALLER_ERROR_CODES:
        return ErrorKind.CALLER_ERROR
    return ErrorKind.FAILURE


# Targets that resolve to several addresses: balanced round-robin over all of them
# ("ipv4:"/"ipv6:" take a comma-separated address list).
BALANCED_SCHEMES = ("dns:", "ipv4:", "ipv6:")


def channel_options(target: str, extra: Sequence[tuple[str, Any]] = ()) -> list[tuple[str, Any]]:
    """The channel options for ``target``: keepalive and reconnect tuning, round-robin over
    every resolved address for a ``dns:`` (or ``ipv4:``/``ipv6:`` list) target, then ``extra``
    (which wins)."""
    options: dict[str, Any] = dict(DEFAULT_CHANNEL_OPTIONS)
    if target.startswith(BALANCED_SCHEMES):
        options["grpc.service_config"] = ROUND_ROBIN_SERVICE_CONFIG
    options.update(dict(extra))
    return list(options.items())


Metadata = Sequence[tuple[str, str]]


def read_pem(path: Path | None) -> bytes | None:
    return None if path is None else path.read_bytes()


def make_channel(settings: GatewayClientSettings) -> grpc.Channel:
    """A channel to ``settings.target``: TLS (mutual when a client certificate is set) or
    plaintext, with keepalive and round-robin balancing for multi-address targets."""
    extra: list[tuple[str, Any]] = [
        ("grpc.keepalive_time_ms", settings.keepalive_time_ms),
        ("grpc.keepalive_timeout_ms", settings.keepalive_timeout_ms),
    ]
    if not settings.uses_tls:
        options = channel_options(settings.target, extra)
        return grpc.insecure_channel(settings.target, options=options)
    if settings.tls_server_name:
        extra.append(("grpc.ssl_target_name_override", settings.tls_server_name))
    credentials = grpc.ssl_channel_credentials(
        root_certificates=read_pem(settings.tls_ca_file),
        private_key=read_pem(settings.tls_key_file),
        certificate_chain=read_pem(settings.tls_cert_file),
    )
    return grpc.secure_channel(
        settings.target, credentials, options=channel_options(settings.target, extra)
    )


class RouteCaller(Protocol):
    """What the routing strategy needs from a client (``DecisionClient``, or a test double)."""

    def route(
        self,
        request: decision_pb2.RouteRequest,
        timeout_s: float,
        metadata: Metadata | None = None,
    ) -> decision_pb2.RouteResponse: ...

    async def route_async(
        self,
        request: decision_pb2.RouteRequest,
        timeout_s: float,
        metadata: Metadata | None = None,
    ) -> decision_pb2.RouteResponse: ...


class DecisionClient:
    """Calls ``DecisionService.Route`` on ``target`` over a channel it owns (or one it is given)."""

    def __init__(
        self,
        target: str,
        *,
        options: Sequence[tuple[str, Any]] = (),
        channel: grpc.Channel | None = None,
    ) -> None:
        self._target = target
        self._owns_channel = channel is None
        self._channel: grpc.Channel = (
            channel
            if channel is not None
            else grpc.insecure_channel(target, options=channel_options(target, options))
        )
        stub = decision_pb2_grpc.DecisionServiceStub(self._channel)
        self._route = stub.Route
        self._record_outcome = stub.RecordOutcome

    @classmethod
    def from_settings(cls, settings: GatewayClientSettings) -> DecisionClient:
        client = cls(settings.target, channel=make_channel(settings))
        client._owns_channel = True
        return client

    @property
    def target(self) -> str:
        return self._target

    def route(
        self,
        request: decision_pb2.RouteRequest,
        timeout_s: float,
        metadata: Metadata | None = None,
    ) -> decision_pb2.RouteResponse:
        """Rank ``request``'s candidates, blocking for at most ``timeout_s``. ``metadata`` (e.g.
        the W3C ``traceparent``) is sent as gRPC metadata. Raises ``grpc.RpcError`` on failure
        (see :func:`classify_error`)."""
        response: decision_pb2.RouteResponse = self._route(
            request, timeout=timeout_s, metadata=metadata
        )
        return response

    def record_outcome(
        self,
        request: decision_pb2.RecordOutcomeRequest,
        timeout_s: float,
        metadata: Metadata | None = None,
    ) -> None:
        """Report one request's outcome. Raises ``grpc.RpcError`` on failure."""
        self._record_outcome(request, timeout=timeout_s, metadata=metadata)

    async def route_async(
        self,
        request: decision_pb2.RouteRequest,
        timeout_s: float,
        metadata: Metadata | None = None,
    ) -> decision_pb2.RouteResponse:
        """``route`` for a coroutine: awaits the call without blocking the running loop.
        Cancelling the awaiting task cancels the RPC."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[decision_pb2.RouteResponse] = loop.create_future()
        call = self._route.future(request, timeout=timeout_s, metadata=metadata)

        def _settle(done: grpc.Future) -> None:
            if waiter.done():
                return
            if done.cancelled():
                waiter.cancel()
                return
            error = done.exception()
            if error is not None:
                waiter.set_exception(error)
            else:
                waiter.set_result(done.result())

        def _on_done(done: grpc.Future) -> None:
            # Runs on a gRPC thread, or inline when the call already finished.
            try:
                loop.call_soon_threadsafe(_settle, done)
            except RuntimeError:  # the awaiting loop is closed: nobody is waiting any more
                logger.debug("decision call finished after its event loop closed")

        call.add_done_callback(_on_done)
        try:
            return await waiter
        except asyncio.CancelledError:
            call.cancel()
            raise

    def close(self) -> None:
        """Close the channel, if this client created it."""
        if self._owns_channel:
            self._channel.close()

    def __enter__(self) -> DecisionClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
