"""The pick core shared by both LiteLLM entry points: its steps, and the same decisions whether
it runs blocking or awaited. A real ``litellm.Router`` and a fake client; no sockets."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from litellm import Router
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway_client.breaker import BreakerState, CircuitBreaker
from gateway_client.client import Metadata
from gateway_client.pick import CallRoute, ReadCooldowns
from gateway_client.settings import GatewayClientSettings
from gateway_client.strategy import RouteIQRoutingStrategy
from gateway_client.telemetry import ATTR_SELECTED_DEPLOYMENT, ROUTE_SPAN_NAME
from routeiq.decision.v1 import decision_pb2

from .fakes import MESSAGES, MODEL_LIST, FakeClient, FakeRpcError, cool_down, ids, make_strategy


def test_a_pick_yields_its_cooldown_read_then_its_route_call(
    router: Router, client: FakeClient
) -> None:
    strategy = make_strategy(router, client, deadline_ms=40)
    steps = strategy.picker.pick("g", MESSAGES, None, False, {"metadata": {}})
    assert next(steps) == ReadCooldowns(["g-mini", "g-4o", "g-haiku"])
    call = steps.send(frozenset({"g-4o"}))
    assert isinstance(call, CallRoute)
    request, deadline_s = call.args  # no trace context: no metadata argument
    assert ids(request) == ["g-mini", "g-haiku"]
    assert deadline_s == pytest.approx(0.04)
    answer = decision_pb2.RouteResponse(
        ranked=[decision_pb2.RankedCandidate(id="g-haiku", score=0.9)], decision_id="d-7"
    )
    with pytest.raises(StopIteration) as done:
        steps.send(answer)
    assert done.value.value["model_info"]["id"] == "g-haiku"
    assert client.requests == []  # the pick itself called nothing
    assert strategy.last_decision is not None and strategy.last_decision.decision_id == "d-7"


def _unavailable(router: Router, client: FakeClient) -> None:
    client.error = FakeRpcError(grpc.StatusCode.UNAVAILABLE)


def _rejected(router: Router, client: FakeClient) -> None:
    client.error = FakeRpcError(grpc.StatusCode.INVALID_ARGUMENT)


def _unknown_ranking(router: Router, client: FakeClient) -> None:
    client.ranking = ["ghost"]


def _haiku_cooling(router: Router, client: FakeClient) -> None:
    cool_down(router, "g-haiku")


def _unchanged(router: Router, client: FakeClient) -> None:
    pass


SCENARIOS: dict[str, tuple[Callable[[Router, FakeClient], None], str, list[Any]]] = {
    "routed": (_unchanged, "g", MESSAGES),
    "cooling": (_haiku_cooling, "g", MESSAGES),
    "rpc_failure": (_unavailable, "g", MESSAGES),
    "caller_error": (_rejected, "g", MESSAGES),
    "bad_response": (_unknown_ranking, "g", MESSAGES),
    "no_prompt": (_unchanged, "g", [{"role": "system", "content": "x"}]),
    "single": (_unchanged, "solo", MESSAGES),
    "named": (_unchanged, "g-4o", MESSAGES),
}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_blocking_and_awaited_picks_decide_alike(scenario: str) -> None:
    prepare, model, messages = SCENARIOS[scenario]
    outcomes = []
    for awaited in (False, True):
        router = Router(model_list=MODEL_LIST, num_retries=0)
        client = FakeClient()
        prepare(router, client)
        strategy = make_strategy(router, client)
        kwargs: dict[str, object] = {"metadata": {}}
        if awaited:
            picked = asyncio.run(
                strategy.async_get_available_deployment(
                    model, messages=messages, request_kwargs=kwargs
                )
            )
        else:
            picked = strategy.get_available_deployment(
                model, messages=messages, request_kwargs=kwargs
            )
        assert strategy.last_decision is not None
        record = strategy.last_decision.as_metadata()
        assert (record["latency_ms"] is None) == (not client.requests)
        record.pop("latency_ms")
        outcomes.append(
            (
                picked["model_info"]["id"],
                record,
                [ids(r) for r in client.requests],
                strategy.breaker.consecutive_failures,
                strategy.recorder.stats,
            )
        )
    assert outcomes[0] == outcomes[1]


def test_an_interrupted_blocking_call_frees_the_half_open_probe(
    router: Router, client: FakeClient
) -> None:
    now = [0.0]
    breaker = CircuitBreaker(1, 10.0, clock=lambda: now[0])
    strategy = RouteIQRoutingStrategy(router, GatewayClientSettings(), client, breaker=breaker)
    client.error = FakeRpcError(grpc.StatusCode.UNAVAILABLE)
    strategy.get_available_deployment("g", messages=MESSAGES)
    now[0] = 10.0
    client.error = KeyboardInterrupt()
    with pytest.raises(KeyboardInterrupt):
        strategy.get_available_deployment("g", messages=MESSAGES)
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow_request()


class TracedClient(FakeClient):
    """Also takes the trace context metadata, and keeps it."""

    def __init__(self) -> None:
        super().__init__()
        self.metadata: list[dict[str, str]] = []

    def route(
        self, request: decision_pb2.RouteRequest, timeout_s: float, metadata: Metadata | None = None
    ) -> decision_pb2.RouteResponse:
        self.metadata.append(dict(metadata or ()))
        return super().route(request, timeout_s)

    async def route_async(
        self, request: decision_pb2.RouteRequest, timeout_s: float, metadata: Metadata | None = None
    ) -> decision_pb2.RouteResponse:
        self.metadata.append(dict(metadata or ()))
        return await super().route_async(request, timeout_s)


@pytest.mark.parametrize("awaited", [False, True], ids=["blocking", "awaited"])
def test_the_route_span_wraps_the_call_and_is_no_longer_current_after(
    router: Router, awaited: bool
) -> None:
    client = TracedClient()
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    strategy = RouteIQRoutingStrategy(
        router,
        GatewayClientSettings(fallback_policy="ordered"),
        client,
        tracer_provider=provider,
    )
    tracer = provider.get_tracer("test")

    async def pick_awaited() -> Any:
        picked = await strategy.async_get_available_deployment("g", messages=MESSAGES)
        return picked, trace.get_current_span()

    with tracer.start_as_current_span("gateway.request") as request_span:
        if awaited:
            picked, current = asyncio.run(pick_awaited())
        else:
            picked = strategy.get_available_deployment("g", messages=MESSAGES)
            current = trace.get_current_span()
        assert current is request_span
    (route,) = [s for s in exporter.get_finished_spans() if s.name == ROUTE_SPAN_NAME]
    (request,) = [s for s in exporter.get_finished_spans() if s.name == "gateway.request"]
    assert route.parent is not None and route.parent.span_id == request.context.span_id
    for span in (route, request):
        assert span.attributes is not None
        assert span.attributes[ATTR_SELECTED_DEPLOYMENT] == picked["model_info"]["id"]
    # The service is called from inside the route span: its traceparent names that span.
    (metadata,) = client.metadata
    assert metadata["traceparent"].split("-")[2] == f"{route.context.span_id:016x}"
