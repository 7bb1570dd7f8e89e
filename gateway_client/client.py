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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import grpc

from routeiq.decision.v1 import decision_pb2, decision_pb2_grpc

from .settings import GatewayClientSettings

logger = logging.getLogger(__name__)

ROUTE_METHOD = {
    "service": decision_pb2.DESCRIPTOR.services_by_name["DecisionService"].full_name,
    "method": "Route",
}

# How these fit the service's server options (decision_service/server.py):
# - keepalive pings only while calls are in flight, every keepalive_time_ms (>= 10 s: the server's
#   grpc.http2.min_ping_interval_without_data_ms is 10 s and it closes a connection that pings
#   more often with GOAWAY too_many_pings);
# - the server ends every connection after max_connection_age_s (GOAWAY, 5 s grace for calls in
#   flight) so clients re-resolve and spread over new pods. A call sent in the instant the GOAWAY
#   is on its way is refused unprocessed: gRPC's transparent retry resends it on another
#   connection, so transparent retries stay on (grpc.enable_retries=0 would turn them off too);
# - a short reconnect backoff puts the channel back within about 2 s of the service coming
#   back, before a half-open breaker probes it.
DEFAULT_CHANNEL_OPTIONS: tuple[tuple[str, Any], ...] = (
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 0),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2_000),
    ("grpc.enable_retries", 1),
)


def retry_policy(
    max_attempts: int, initial_backoff_ms: float, max_backoff_ms: float
) -> dict[str, Any]:
    """The gRPC ``retryPolicy`` for Route: UNAVAILABLE (the connection or the pod went away
    before answering: Route has no side effects) is retried up to ``max_attempts`` calls in
    all, all within the call's one deadline."""
    return {
        "maxAttempts": max_attempts,
        "initialBackoff": f"{initial_backoff_ms / 1000.0:.4f}s",
        "maxBackoff": f"{max(max_backoff_ms, initial_backoff_ms) / 1000.0:.4f}s",
        "backoffMultiplier": 2,
        "retryableStatusCodes": ["UNAVAILABLE"],
    }


DEFAULT_RETRY_POLICY = retry_policy(3, 5.0, 20.0)

# Retries stop while more than half of the last ~20 calls' worth of tokens went to failures, so
# a service that is down overall gets no retry storm (the breaker then takes over).
RETRY_THROTTLING = {"maxTokens": 20, "tokenRatio": 0.1}


# Targets that resolve to several addresses: balanced round-robin over all of them
# ("ipv4:"/"ipv6:" take a comma-separated address list).
BALANCED_SCHEMES = ("dns:", "ipv4:", "ipv6:")


def service_config(target: str, policy: Mapping[str, Any] | None) -> str | None:
    """The channel's service config JSON: round robin for a multi-address target, and the Route
    retry ``policy``; None when there is neither."""
    config: dict[str, Any] = {}
    if target.startswith(BALANCED_SCHEMES):
        config["loadBalancingConfig"] = [{"round_robin": {}}]
    if policy is not None and int(policy["maxAttempts"]) > 1:
        config["methodConfig"] = [{"name": [ROUTE_METHOD], "retryPolicy": dict(policy)}]
        config["retryThrottling"] = RETRY_THROTTLING
    return json.dumps(config) if config else None


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


def channel_options(
    target: str,
    extra: Sequence[tuple[str, Any]] = (),
    policy: Mapping[str, Any] | None = DEFAULT_RETRY_POLICY,
) -> list[tuple[str, Any]]:
    """The channel options for ``target``: keepalive and reconnect tuning, a service config with
    round-robin over every resolved address for a ``dns:`` (or ``ipv4:``/``ipv6:`` list) target
    and the Route retry ``policy`` (None: transparent retries only), then ``extra`` (which
    wins)."""
    options: dict[str, Any] = dict(DEFAULT_CHANNEL_OPTIONS)
    config = service_config(target, policy)
    if config is not None:
        options["grpc.service_config"] = config
    options.update(dict(extra))
    return list(options.items())


Metadata = Sequence[tuple[str, str]]


def read_pem(path: Path | None) -> bytes | None:
    return None if path is None else path.read_bytes()


def make_channel(settings: GatewayClientSettings) -> grpc.Channel:
    """A channel to ``settings.target``: TLS (mutual when a client certificate is set) or
    plaintext, with keepalive, the settings' Route retry policy and round-robin balancing for
    multi-address targets."""
    extra: list[tuple[str, Any]] = [
        ("grpc.keepalive_time_ms", settings.keepalive_time_ms),
        ("grpc.keepalive_timeout_ms", settings.keepalive_timeout_ms),
    ]
    policy = retry_policy(
        settings.retry_max_attempts,
        settings.retry_initial_backoff_ms,
        settings.retry_max_backoff_ms,
    )
    if not settings.uses_tls:
        options = channel_options(settings.target, extra, policy)
        return grpc.insecure_channel(settings.target, options=options)
    if settings.tls_server_name:
        extra.append(("grpc.ssl_target_name_override", settings.tls_server_name))
    credentials = grpc.ssl_channel_credentials(
        root_certificates=read_pem(settings.tls_ca_file),
        private_key=read_pem(settings.tls_key_file),
        certificate_chain=read_pem(settings.tls_cert_file),
    )
    return grpc.secure_channel(
        settings.target, credentials, options=channel_options(settings.target, extra, policy)
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
        self._record_feedback = stub.RecordFeedback

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

    def record_feedback(
        self,
        request: decision_pb2.RecordFeedbackRequest,
        timeout_s: float,
        metadata: Metadata | None = None,
    ) -> None:
        """Send one quality signal for a decision. Raises ``grpc.RpcError`` on failure."""
        self._record_feedback(request, timeout=timeout_s, metadata=metadata)

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
