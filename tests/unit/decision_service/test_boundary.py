"""The error boundary, without sockets: every domain error and every unexpected exception
gets its status code from one place, for every method of both services, the admin token
check's refusals included."""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import grpc
import pytest

from decision_service import errors
from decision_service.admin_servicer import (
    ADMIN_SERVICE_DESCRIPTOR,
    AdminServicer,
    AdminTokenInterceptor,
)
from decision_service.boundary import (
    INTERNAL_MESSAGE,
    ErrorBoundary,
    guard,
    service_handler,
    status_for,
)
from decision_service.decide import Decider
from decision_service.embedding_front import EmbeddingFront
from decision_service.metrics import ServiceMetrics
from decision_service.runner import RouteRunner
from decision_service.servicer import DECISION_SERVICE_DESCRIPTOR, DecisionServicer
from decision_service.versions import VersionRegistry
from routeiq.decision.v1 import admin_pb2 as admin_pb
from routeiq.decision.v1 import decision_pb2 as pb

TOKEN = "s3cret"
AUTH = (("authorization", f"Bearer {TOKEN}"),)
SERVICES = (DECISION_SERVICE_DESCRIPTOR, ADMIN_SERVICE_DESCRIPTOR)
EXPECTED_STATUS = {
    errors.InvalidRequest: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotReady: grpc.StatusCode.UNAVAILABLE,
    errors.Overloaded: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.DeadlineTooShort: grpc.StatusCode.DEADLINE_EXCEEDED,
    errors.BundleRefused: grpc.StatusCode.FAILED_PRECONDITION,
    errors.EncoderRefused: grpc.StatusCode.FAILED_PRECONDITION,
    errors.NotCalibrated: grpc.StatusCode.FAILED_PRECONDITION,
    errors.UnknownVersion: grpc.StatusCode.NOT_FOUND,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
}
ERROR_CLASSES = [
    cls
    for cls in vars(errors).values()
    if inspect.isclass(cls)
    and issubclass(cls, errors.RouteIQError)
    and cls is not errors.RouteIQError
]


class Aborted(Exception):
    """What ``FakeContext.abort`` raises: sync grpc's abort raises a bare ``Exception``."""


class FakeContext:
    """The parts of ``grpc.ServicerContext`` the service uses; ``abort`` acts like sync grpc's:
    it records the status and raises."""

    def __init__(self, metadata: Sequence[tuple[str, str]] = (), remaining: float = 5.0) -> None:
        self.metadata = tuple(metadata)
        self.remaining = remaining
        self.code: grpc.StatusCode | None = None
        self.details = ""
        self.aborts = 0

    def abort(self, code: grpc.StatusCode, details: str = "") -> NoReturn:
        self.aborts += 1
        self.code, self.details = code, details
        raise Aborted(details)

    def time_remaining(self) -> float:
        return self.remaining

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self.metadata

    def peer(self) -> str:
        return "ipv4:127.0.0.1:50000"


@dataclass(frozen=True)
class Details(grpc.HandlerCallDetails):
    method: str
    invocation_metadata: tuple[tuple[str, str], ...] = ()


def resolve(
    method: str,
    metadata: Sequence[tuple[str, str]],
    interceptors: Sequence[grpc.ServerInterceptor],
    generic: Sequence[grpc.GenericRpcHandler],
) -> Any:
    """The handler a grpc.server would run: interceptors in order, then the services."""

    def lookup(details: Details) -> Any:
        return next((h for g in generic if (h := g.service(details)) is not None), None)

    chain: Any = lookup
    for interceptor in reversed(interceptors):
        chain = functools.partial(interceptor.intercept_service, chain)
    return chain(Details(method, tuple(metadata)))


def call(handler: Any, payload: bytes, context: FakeContext) -> Any:
    """Run ``handler`` on wire bytes; returns the reply, or None when it aborted."""
    deserialize = handler.request_deserializer
    request = deserialize(payload) if deserialize is not None else payload
    try:
        return handler.unary_unary(request, context)
    except Aborted:
        return None


def errors_counted(metrics: ServiceMetrics, code: grpc.StatusCode) -> float:
    return metrics.registry.get_sample_value("routeiq_errors_total", {"code": code.name}) or 0.0


def raising(exc: BaseException) -> Any:
    def behavior(request: Any, context: Any) -> Any:
        raise exc

    return behavior


# ---- the mapping ----------------------------------------------------------------------


def test_every_error_class_in_errors_py_has_a_status():
    # A new error class must be given a status code here and in the boundary.
    assert set(ERROR_CLASSES) == set(EXPECTED_STATUS)


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda c: c.__name__)
def test_a_domain_error_is_answered_with_its_code_and_message(cls, caplog):
    metrics = ServiceMetrics()
    context = FakeContext()
    guarded = guard(raising(cls("send a prompt or an embedding")), metrics, "/svc/Method")
    with caplog.at_level(logging.ERROR), pytest.raises(Aborted):
        guarded(object(), context)
    assert status_for(cls("x")) == EXPECTED_STATUS[cls]
    assert (context.code, context.details) == (
        EXPECTED_STATUS[cls],
        "send a prompt or an embedding",
    )
    assert errors_counted(metrics, EXPECTED_STATUS[cls]) == 1
    assert not caplog.records  # expected errors are the caller's to fix, not log noise


def test_a_subclass_gets_its_parents_code():
    class EmptyPrompt(errors.InvalidRequest):
        pass

    assert status_for(EmptyPrompt("x")) == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize(
    "exc",
    [
        RuntimeError("cannot open /srv/secret/router.onnx"),
        KeyError("api_key"),
        AssertionError("invariant"),
        ZeroDivisionError("division by zero"),
        errors.RouteIQError("a base error nobody mapped: /srv/secret"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_an_unexpected_exception_is_internal_generic_and_logged(exc, caplog):
    metrics = ServiceMetrics()
    context = FakeContext()
    guarded = guard(raising(exc), metrics, "/routeiq.decision.v1.DecisionService/Route")
    with (
        caplog.at_level(logging.ERROR, logger="decision_service"),
        pytest.raises(Aborted),
    ):
        guarded(object(), context)
    assert (context.code, context.details) == (grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE)
    assert "secret" not in context.details and "api_key" not in context.details
    assert errors_counted(metrics, grpc.StatusCode.INTERNAL) == 1
    (record,) = caplog.records
    assert "DecisionService/Route failed unexpectedly" in record.getMessage()
    assert record.exc_info is not None and record.exc_info[1] is exc  # traceback in the log


def test_success_passes_through_uncounted():
    metrics = ServiceMetrics()

    def behavior(request: Any, context: Any) -> str:
        return f"reply to {request}"

    context = FakeContext()
    assert guard(behavior, metrics)("ping", context) == "reply to ping"
    assert context.code is None
    assert metrics.registry.get_sample_value("routeiq_errors_total", {"code": "INTERNAL"}) is None


def test_a_handler_that_aborts_by_itself_is_answered_again_as_internal():
    # Why the servicers raise instead of calling context.abort: sync grpc's abort raises a
    # bare Exception, which the boundary cannot tell from a bug; it answers a second time,
    # and the last status recorded (INTERNAL) is the one the caller gets.
    metrics = ServiceMetrics()

    def aborts(request: Any, context: FakeContext) -> None:
        context.abort(grpc.StatusCode.ABORTED, "by hand")

    context = FakeContext()
    with pytest.raises(Aborted):
        guard(aborts, metrics)(object(), context)
    assert (context.code, context.details, context.aborts) == (
        grpc.StatusCode.INTERNAL,
        INTERNAL_MESSAGE,
        2,
    )
    assert errors_counted(metrics, grpc.StatusCode.INTERNAL) == 1


# ---- the interceptor, the token check and every method --------------------------------


class Exploding:
    """A domain object whose every method fails with an internal detail in its message."""

    def __getattr__(self, name: str) -> Any:
        def fail(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError(f"{name} broke at /srv/internal/state")

        return fail


def exploding_services() -> list[grpc.GenericRpcHandler]:
    return [
        service_handler(DECISION_SERVICE_DESCRIPTOR, DecisionServicer(Exploding(), Exploding())),  # type: ignore[arg-type]
        service_handler(ADMIN_SERVICE_DESCRIPTOR, AdminServicer(Exploding())),  # type: ignore[arg-type]
    ]


ALL_METHODS = [
    f"/{service.full_name}/{method.name}" for service in SERVICES for method in service.methods
]

# The smallest request each method's converter accepts, so the call reaches the (exploding)
# domain: most accept an empty message, RecordFeedback needs an id and a signal.
REACHES_DOMAIN: dict[str, bytes] = {
    "RecordFeedback": pb.RecordFeedbackRequest(decision_id="d", score=0.5).SerializeToString(),
}


@pytest.mark.parametrize("method", ALL_METHODS, ids=lambda m: m.rsplit("/", 1)[-1])
def test_every_method_of_both_services_is_guarded(method, caplog):
    metrics = ServiceMetrics()
    interceptors = [ErrorBoundary(metrics, SERVICES), AdminTokenInterceptor(TOKEN)]
    handler = resolve(method, AUTH, interceptors, exploding_services())
    context = FakeContext(AUTH)
    with caplog.at_level(logging.ERROR, logger="decision_service"):
        request = REACHES_DOMAIN.get(method.rsplit("/", 1)[-1], b"")
        assert call(handler, request, context) is None
    assert (context.code, context.details) == (grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE)
    assert errors_counted(metrics, grpc.StatusCode.INTERNAL) == 1
    assert "broke at /srv/internal/state" in caplog.text  # logged, not sent


@pytest.mark.parametrize("method", ALL_METHODS, ids=lambda m: m.rsplit("/", 1)[-1])
def test_a_request_that_does_not_parse_is_invalid_for_every_method(method):
    metrics = ServiceMetrics()
    interceptors = [ErrorBoundary(metrics, SERVICES), AdminTokenInterceptor(TOKEN)]
    handler = resolve(method, AUTH, interceptors, exploding_services())
    context = FakeContext(AUTH)
    # Field 1 as a length-delimited string holding bytes that are not UTF-8 (for the
    # field-less requests, an unknown field whose length runs past the end).
    assert (
        call(handler, b"\x0a\x02\xff\xfe" if method_has_field_1(method) else b"\x0a\x05", context)
        is None
    )
    assert context.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "could not be parsed" in context.details
    assert errors_counted(metrics, grpc.StatusCode.INVALID_ARGUMENT) == 1


def method_has_field_1(method: str) -> bool:
    service_name, name = method.strip("/").rsplit("/", 1)
    service = next(s for s in SERVICES if s.full_name == service_name)
    fields = service.methods_by_name[name].input_type.fields_by_number
    return 1 in fields and fields[1].type == fields[1].TYPE_STRING


@pytest.mark.parametrize(
    ("token", "metadata", "message"),
    [
        (None, AUTH, "the admin API is disabled: set ROUTEIQ_ADMIN_TOKEN"),
        (TOKEN, (), "missing or wrong admin token"),
        (TOKEN, (("authorization", "Bearer wrong"),), "missing or wrong admin token"),
        (TOKEN, (("authorization", TOKEN),), "missing or wrong admin token"),
    ],
)
def test_the_token_check_is_answered_by_the_boundary(token, metadata, message):
    metrics = ServiceMetrics()
    interceptors = [ErrorBoundary(metrics, SERVICES), AdminTokenInterceptor(token)]
    methods = [
        f"/{ADMIN_SERVICE_DESCRIPTOR.full_name}/{m.name}" for m in ADMIN_SERVICE_DESCRIPTOR.methods
    ]
    for method in [*methods, f"/{ADMIN_SERVICE_DESCRIPTOR.full_name}/NoSuchMethod"]:
        handler = resolve(method, metadata, interceptors, exploding_services())
        context = FakeContext(metadata)
        assert call(handler, b"", context) is None
        assert context.code == grpc.StatusCode.UNAUTHENTICATED
        assert message in context.details
    assert errors_counted(metrics, grpc.StatusCode.UNAUTHENTICATED) == len(methods) + 1


def test_the_token_check_leaves_the_decision_service_alone():
    metrics = ServiceMetrics()
    interceptors = [ErrorBoundary(metrics, SERVICES), AdminTokenInterceptor(None)]
    method = f"/{DECISION_SERVICE_DESCRIPTOR.full_name}/ListStrategies"
    handler = resolve(method, (), interceptors, exploding_services())
    context = FakeContext()
    call(handler, b"", context)
    assert context.code == grpc.StatusCode.INTERNAL  # reached the (exploding) servicer


def test_the_boundary_wraps_each_handler_once_and_only_its_services():
    metrics = ServiceMetrics()
    boundary = ErrorBoundary(metrics, SERVICES)
    generic = exploding_services()
    route = f"/{DECISION_SERVICE_DESCRIPTOR.full_name}/Route"
    first = resolve(route, (), [boundary], generic)
    assert first is resolve(route, (), [boundary], generic)  # cached, not rebuilt per call
    assert first is not generic[0].service(Details(route))
    unknown = f"/{DECISION_SERVICE_DESCRIPTOR.full_name}/NoSuchMethod"
    assert resolve(unknown, (), [boundary], generic) is None  # gRPC: UNIMPLEMENTED

    def health(request: Any, context: Any) -> str:
        return "SERVING"

    other = grpc.method_handlers_generic_handler(
        "grpc.health.v1.Health", {"Check": grpc.unary_unary_rpc_method_handler(health)}
    )
    untouched = other.service(Details("/grpc.health.v1.Health/Check"))
    assert resolve("/grpc.health.v1.Health/Check", (), [boundary], [other]) is untouched


def test_a_valid_route_through_the_boundary_is_answered(encoder, bundles):
    registry = VersionRegistry(encoder, bundles["alpha"])
    metrics = ServiceMetrics()
    runner = RouteRunner(
        Decider(registry, EmbeddingFront(encoder)),
        metrics,
        workers=1,
        max_in_flight=4,
        min_deadline_s=0.001,
    )
    generic = [service_handler(DECISION_SERVICE_DESCRIPTOR, DecisionServicer(runner, registry))]
    boundary = ErrorBoundary(metrics, SERVICES)
    route = resolve(f"/{DECISION_SERVICE_DESCRIPTOR.full_name}/Route", (), [boundary], generic)
    request = pb.RouteRequest(
        embedding=pb.Embedding(values=encoder.encode(["hello, thanks"]).embeddings[0].tolist()),
        candidates=[
            pb.Candidate(id="a", model_name="gpt-4o"),
            pb.Candidate(id="b", model_name="gpt-4o-mini"),
        ],
    )
    reply = call(route, request.SerializeToString(), FakeContext())
    assert isinstance(reply, pb.RouteResponse)
    assert [r.id for r in reply.ranked] == ["b", "a"] and reply.bundle_version == "alpha-1"
    listed = resolve(
        f"/{DECISION_SERVICE_DESCRIPTOR.full_name}/ListStrategies", (), [boundary], generic
    )
    listing = call(listed, b"", FakeContext())
    assert listing.default_strategy == "routeiq-alpha@alpha-1"
    bad = pb.RouteRequest(prompt="hi")  # no candidates
    context = FakeContext()
    assert call(route, bad.SerializeToString(), context) is None
    assert context.code == grpc.StatusCode.INVALID_ARGUMENT and "no candidates" in context.details
    assert errors_counted(metrics, grpc.StatusCode.INVALID_ARGUMENT) == 1


def test_admin_rollback_of_an_unknown_version_is_not_found(encoder, bundles, tmp_path):
    from decision_service.admin import AdminOps
    from decision_service.audit import AuditLog

    registry = VersionRegistry(encoder, bundles["alpha"])
    metrics = ServiceMetrics()
    ops = AdminOps(
        registry,
        Exploding(),  # type: ignore[arg-type]
        AuditLog(tmp_path / "audit.jsonl"),
        metrics,
        in_flight=lambda: 0,
        serving=lambda: True,
        decisions_total=lambda: 0,
    )
    generic = [service_handler(ADMIN_SERVICE_DESCRIPTOR, AdminServicer(ops))]
    interceptors = [ErrorBoundary(metrics, SERVICES), AdminTokenInterceptor(TOKEN)]
    name = ADMIN_SERVICE_DESCRIPTOR.full_name
    rollback = resolve(f"/{name}/Rollback", AUTH, interceptors, generic)
    context = FakeContext(AUTH)
    payload = admin_pb.RollbackRequest(to="ghost", reason="test").SerializeToString()
    assert call(rollback, payload, context) is None
    assert context.code == grpc.StatusCode.NOT_FOUND and "'ghost' is not loaded" in context.details
    versions = resolve(f"/{name}/ListVersions", AUTH, interceptors, generic)
    listed = call(versions, b"", FakeContext(AUTH))
    assert [(v.version, v.active) for v in listed.versions] == [("alpha-1", True)]
