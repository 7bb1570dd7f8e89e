"""The gateway strategy in a real litellm.Router against a real decision service.

Needs the ``decision_server`` fixture (tests/integration/conftest.py): a running
DecisionService with ``.address``, ``.stop()`` and ``.start()`` (restart on the same port).
Deployments use ``mock_response``, so no provider is called.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import pytest
from litellm import Router
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Span, Tracer
from prometheus_client import CollectorRegistry

from gateway_client import BreakerState, DecisionClient, GatewayClientSettings
from gateway_client.client import Metadata
from gateway_client.metrics import GatewayMetrics
from gateway_client.router_view import RouterView
from gateway_client.strategy import METADATA_KEY, Reason, install
from routeiq.decision.v1 import decision_pb2

from .deployments import GROUP, IDS, MESSAGES, MODEL_LIST

pytestmark = pytest.mark.integration

THRESHOLD = 3
RATE_LIMITED = "litellm.RateLimitError"  # a mock_response that raises
COOLDOWN_S = 0.5


class SpyClient:
    """A real DecisionClient that remembers what it sent and whether it failed."""

    def __init__(self, inner: DecisionClient) -> None:
        self.inner = inner
        self.requests: list[decision_pb2.RouteRequest] = []
        self.failures = 0

        self.timeouts: list[float] = []

    def route(
        self,
        request: decision_pb2.RouteRequest,
        timeout_s: float,
        metadata: Metadata | None = None,
    ) -> decision_pb2.RouteResponse:
        self.requests.append(request)
        self.timeouts.append(timeout_s)
        try:
            return self.inner.route(request, timeout_s, metadata)
        except Exception:
            self.failures += 1
            raise

    async def route_async(
        self,
        request: decision_pb2.RouteRequest,
        timeout_s: float,
        metadata: Metadata | None = None,
    ) -> decision_pb2.RouteResponse:
        self.requests.append(request)
        self.timeouts.append(timeout_s)
        try:
            return await self.inner.route_async(request, timeout_s, metadata)
        except Exception:
            self.failures += 1
            raise

    def record_outcome(self, request: decision_pb2.RecordOutcomeRequest, timeout_s: float) -> None:
        self.inner.record_outcome(request, timeout_s)


class Complete:
    """``router.completion``, or ``router.acompletion`` run on one event loop for the test."""

    def __init__(self, runner: asyncio.Runner | None) -> None:
        self.runner = runner

    def __call__(self, router: Router, **kwargs: Any) -> Any:
        if self.runner is None:
            return router.completion(**kwargs)
        return self.runner.run(router.acompletion(**kwargs))

    def traced(self, tracer: Tracer, router: Router, **kwargs: Any) -> tuple[Any, Span]:
        """The completion inside a ``gateway.request`` span, as a gateway would run it."""
        if self.runner is None:
            with tracer.start_as_current_span("gateway.request") as span:
                return router.completion(**kwargs), span

        async def run() -> tuple[Any, Span]:
            with tracer.start_as_current_span("gateway.request") as span:
                return await router.acompletion(**kwargs), span

        return self.runner.run(run())

    def idle(self, seconds: float) -> None:
        """Let background work run: LiteLLM's async success logging runs on the test's loop."""
        if self.runner is None:
            time.sleep(seconds)
        else:
            self.runner.run(asyncio.sleep(seconds))


@pytest.fixture(params=["sync", "async"])
def complete(request: pytest.FixtureRequest) -> Iterator[Complete]:
    if request.param == "sync":
        yield Complete(None)
        return
    with asyncio.Runner() as runner:
        yield Complete(runner)


@pytest.fixture
def client(decision_server: Any) -> Iterator[DecisionClient]:
    """A direct client, used once first with a long deadline so the service is warm."""
    with DecisionClient(decision_server.address) as client:
        warm_up = decision_pb2.RouteRequest(
            prompt="warm up",
            candidates=[decision_pb2.Candidate(id="a", model_name="gpt-4o-mini")],
            requested_model=GROUP,
        )
        client.route(warm_up, timeout_s=60.0)
        yield client


def make_router() -> Router:
    return Router(model_list=[dict(d) for d in MODEL_LIST], num_retries=0)


def settings(address: str) -> GatewayClientSettings:
    # A generous deadline: a cold service may take a while to embed its first prompt.
    return GatewayClientSettings(
        target=address,
        deadline_ms=2000,
        breaker_failure_threshold=THRESHOLD,
        breaker_cooldown_s=COOLDOWN_S,
        fallback_policy="ordered",
    )


def chosen_id(response: Any) -> str:
    model_id = response._hidden_params["model_id"]
    assert response.choices[0].message.content == f"from {model_id}"
    return str(model_id)


def test_picks_the_services_top_ranked_deployment(
    decision_server: Any, client: DecisionClient, complete: Complete
) -> None:
    router = make_router()
    spy = SpyClient(client)
    strategy = install(router, settings(decision_server.address), spy)

    metadata: dict[str, Any] = {"user_id": "integration-user"}
    response = complete(router, model=GROUP, messages=MESSAGES, metadata=metadata)

    (sent,) = spy.requests
    assert sorted(c.id for c in sent.candidates) == sorted(IDS)
    assert sent.prompt == MESSAGES[0]["content"]
    assert sent.requested_model == GROUP
    direct = client.route(sent, timeout_s=5.0)
    assert chosen_id(response) == direct.ranked[0].id

    record = metadata[METADATA_KEY]
    assert record["reason"] == Reason.ROUTED
    assert record["fallback"] is False
    assert record["deployment_id"] == direct.ranked[0].id
    assert record["decision_id"]
    stats = strategy.recorder.stats
    assert stats.routed == 1 and stats.fallbacks == 0


def test_breaker_opens_while_the_service_is_down_and_closes_after_restart(
    decision_server: Any, client: DecisionClient, complete: Complete
) -> None:
    router = make_router()
    spy = SpyClient(client)
    registry = CollectorRegistry()
    strategy = install(
        router, settings(decision_server.address), spy, metrics=GatewayMetrics(registry)
    )
    assert chosen_id(complete(router, model=GROUP, messages=MESSAGES))  # warm: routed
    assert strategy.recorder.stats.routed == 1
    assert breaker_state(registry, decision_server.address) == "closed"

    decision_server.stop()
    try:
        records = []
        for _ in range(THRESHOLD + 4):
            metadata: dict[str, Any] = {}
            response = complete(router, model=GROUP, messages=MESSAGES, metadata=metadata)
            assert chosen_id(response) == IDS[0]  # the ordered fallback
            assert metadata[METADATA_KEY]["fallback"] is True
            records.append(metadata[METADATA_KEY])
        assert strategy.breaker.state is BreakerState.OPEN
        assert spy.failures == THRESHOLD  # no call once the breaker opened
        # Each failed call was bounded by the deadline; once open, no call at all.
        assert spy.timeouts == [settings(decision_server.address).deadline_s] * (THRESHOLD + 1)
        failing, open_ = records[:THRESHOLD], records[THRESHOLD:]
        assert all(r["reason"] == Reason.RPC_FAILURE and r["latency_ms"] >= 0 for r in failing)
        assert all(r["reason"] == Reason.BREAKER_OPEN and r["latency_ms"] is None for r in open_)
        print("failed-call ms:", [round(r["latency_ms"], 2) for r in failing])
        assert breaker_state(registry, decision_server.address) == "open"
        fallbacks = registry.get_sample_value(
            "routeiq_gateway_fallbacks_total", {"reason": "breaker_open"}
        )
        assert fallbacks == len(open_)
        assert strategy.last_decision is not None
        assert strategy.last_decision.reason is Reason.BREAKER_OPEN
        assert strategy.recorder.stats.fallbacks == THRESHOLD + 4
    finally:
        decision_server.start()

    # After the cooldown a single probe goes through; once the channel has reconnected a
    # probe succeeds and closes the breaker.
    deadline = time.monotonic() + 20.0
    while strategy.breaker.state is not BreakerState.CLOSED:
        assert time.monotonic() < deadline, "the breaker never closed after the restart"
        time.sleep(COOLDOWN_S / 5)
        chosen_id(complete(router, model=GROUP, messages=MESSAGES))
    assert strategy.last_decision is not None
    assert strategy.last_decision.reason is Reason.ROUTED

    routed_before = strategy.recorder.stats.routed
    chosen_id(complete(router, model=GROUP, messages=MESSAGES))
    assert strategy.recorder.stats.routed == routed_before + 1
    assert breaker_state(registry, decision_server.address) == "closed"
    strategy.close()


def breaker_state(registry: CollectorRegistry, target: str) -> str:
    """The state the breaker state set marks 1 for ``target``."""
    (state,) = [
        name
        for name in ("closed", "open", "half_open")
        if registry.get_sample_value(
            "routeiq_gateway_breaker_state",
            {"target": target, "routeiq_gateway_breaker_state": name},
        )
        == 1
    ]
    return state


def test_only_healthy_deployments_are_candidates_and_a_cooling_one_is_never_chosen(
    decision_server: Any, client: DecisionClient, complete: Complete
) -> None:
    router = make_router()
    spy = SpyClient(client)
    strategy = install(router, settings(decision_server.address), spy)
    # Find the deployment the service ranks first, then cool it down in LiteLLM's own store.
    top = chosen_id(complete(router, model=GROUP, messages=MESSAGES))
    RouterView(router)._cooldown_store().add_deployment_to_cooldown(
        top, Exception("test cooldown"), 429, 600.0
    )
    for _ in range(3):
        metadata: dict[str, Any] = {}
        served = chosen_id(complete(router, model=GROUP, messages=MESSAGES, metadata=metadata))
        assert served != top
        sent_ids = {c.id for c in spy.requests[-1].candidates}
        assert sent_ids == set(IDS) - {top}
        direct = client.route(spy.requests[-1], timeout_s=5.0)
        assert served == direct.ranked[0].id
        assert metadata[METADATA_KEY]["reason"] == Reason.ROUTED
    strategy.close()


def test_fallback_groups_route_through_the_service(
    decision_server: Any, client: DecisionClient, complete: Complete
) -> None:
    broken = [
        {
            "model_name": "broken",
            "litellm_params": {
                "model": m,
                "mock_response": "litellm.RateLimitError",
                "api_key": "x",
            },
            "model_info": {"id": f"broken-{i}"},
        }
        for i, m in enumerate(["openai/gpt-4o-mini", "openai/gpt-4o"])
    ]
    router = Router(
        model_list=[*broken, *(dict(d) for d in MODEL_LIST)],
        fallbacks=[{"broken": [GROUP]}],
        num_retries=0,
    )
    spy = SpyClient(client)
    strategy = install(router, settings(decision_server.address), spy)
    metadata: dict[str, Any] = {}
    served = chosen_id(complete(router, model="broken", messages=MESSAGES, metadata=metadata))
    assert served in IDS
    groups = [r.requested_model for r in spy.requests]
    assert groups[0] == "broken" and groups[-1] == GROUP
    direct = client.route(spy.requests[-1], timeout_s=5.0)
    assert served == direct.ranked[0].id
    assert strategy.last_decision is not None
    assert strategy.last_decision.reason is Reason.ROUTED
    assert strategy.last_decision.requested_model == GROUP
    strategy.close()


def test_streaming_is_routed(decision_server: Any, client: DecisionClient) -> None:
    router = make_router()
    spy = SpyClient(client)
    strategy = install(router, settings(decision_server.address), spy)
    chunks = list(router.completion(model=GROUP, messages=MESSAGES, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    (sent,) = spy.requests
    top = client.route(sent, timeout_s=5.0).ranked[0].id
    assert text == f"from {top}"

    async def stream() -> str:
        response = await router.acompletion(model=GROUP, messages=MESSAGES, stream=True)
        return "".join([c.choices[0].delta.content or "" async for c in response])

    assert asyncio.run(stream()) == f"from {top}"
    strategy.close()


def test_outcome_events_carry_the_decision_id_and_token_counts(
    decision_server: Any, client: DecisionClient, complete: Complete
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    router = make_router()
    strategy = install(
        router,
        settings(decision_server.address).model_copy(update={"record_outcomes": True}),
        SpyClient(client),
        tracer_provider=provider,
    )
    tracer = provider.get_tracer("test")
    metadata: dict[str, Any] = {}
    response, request_span = complete.traced(
        tracer, router, model=GROUP, messages=MESSAGES, metadata=metadata
    )
    served = chosen_id(response)
    decision_id = metadata[METADATA_KEY]["decision_id"]
    assert decision_id

    deadline = time.monotonic() + 10.0  # LiteLLM logs success on a background worker
    while strategy.outcome_callback.last_outcome is None:
        assert time.monotonic() < deadline, "no outcome was reported"
        complete.idle(0.02)
    outcome = strategy.outcome_callback.last_outcome
    assert outcome.decision_id == decision_id
    assert outcome.deployment_id == served
    assert outcome.status == "success" and outcome.fallback is False
    assert outcome.input_tokens > 0 and outcome.output_tokens > 0

    trace_id = request_span.get_span_context().trace_id
    spans = exporter.get_finished_spans()
    events = [
        e for sp in spans if sp.context.trace_id == trace_id for e in sp.events
        if e.name == "routeiq.router_outcome.v1"
    ]  # fmt: skip
    (event,) = events
    assert event.attributes["routeiq.decision_id"] == decision_id
    assert event.attributes["gen_ai.usage.input_tokens"] == outcome.input_tokens
    assert event.attributes["gen_ai.usage.output_tokens"] == outcome.output_tokens
    request = next(sp for sp in spans if sp.name == "gateway.request")
    assert request.attributes["routeiq.decision_id"] == decision_id
    assert request.attributes["routeiq.selected_deployment"] == served
    assert request.attributes["routeiq.fallback"] is False
    assert sorted(request.attributes["routeiq.candidates"]) == sorted(IDS)
    for name in ("routeiq.strategy", "routeiq.score", "gen_ai.request.model"):
        assert name in request.attributes
    assert "routeiq.route_latency_ms" in request.attributes
    route_span = next(sp for sp in spans if sp.name == "routeiq.route")
    assert route_span.parent is not None and route_span.parent.span_id == request.context.span_id
    # The RecordOutcome RPC went through the real service (its queue drained, nothing failed).
    reporter = strategy.outcome_callback.reporter
    assert reporter is not None and reporter.flush(10.0)
    assert reporter.sent >= 1 and reporter.dropped == 0
    strategy.close()
