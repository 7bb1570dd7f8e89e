"""The gateway strategy in a real litellm.Router against a real decision service.

Needs the ``decision_server`` fixture (tests/integration/conftest.py): a running
DecisionService with ``.address``, ``.stop()`` and ``.start()`` (restart on the same port).
Deployments use ``mock_response``, so no provider is called.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import pytest
from litellm import Router

from decision_service.api.v1 import decision_pb2
from gateway_client import BreakerState, DecisionClient, GatewayClientSettings
from gateway_client.strategy import METADATA_KEY, Reason, install

pytestmark = pytest.mark.integration

GROUP = "chat"
IDS = ["dep-mini", "dep-4o", "dep-haiku"]
MODEL_LIST = [
    {
        "model_name": GROUP,
        "litellm_params": {"model": model, "mock_response": f"from {id}", "api_key": "x"},
        "model_info": {"id": id},
    }
    for id, model in zip(
        IDS, ["openai/gpt-4o-mini", "openai/gpt-4o", "anthropic/claude-3-haiku"], strict=True
    )
]
MESSAGES = [{"role": "user", "content": "Prove that there are infinitely many primes."}]
THRESHOLD = 3
COOLDOWN_S = 0.5


class SpyClient:
    """A real DecisionClient that remembers what it sent and whether it failed."""

    def __init__(self, inner: DecisionClient) -> None:
        self.inner = inner
        self.requests: list[decision_pb2.RouteRequest] = []
        self.failures = 0

    def route(
        self, request: decision_pb2.RouteRequest, timeout_s: float
    ) -> decision_pb2.RouteResponse:
        self.requests.append(request)
        try:
            return self.inner.route(request, timeout_s)
        except Exception:
            self.failures += 1
            raise

    async def route_async(
        self, request: decision_pb2.RouteRequest, timeout_s: float
    ) -> decision_pb2.RouteResponse:
        self.requests.append(request)
        try:
            return await self.inner.route_async(request, timeout_s)
        except Exception:
            self.failures += 1
            raise


Complete = Callable[..., Any]


@pytest.fixture(params=["sync", "async"])
def complete(request: pytest.FixtureRequest) -> Iterator[Complete]:
    """``router.completion``, or ``router.acompletion`` run on one event loop for the test."""
    if request.param == "sync":
        yield lambda router, **kwargs: router.completion(**kwargs)
        return
    with asyncio.Runner() as runner:
        yield lambda router, **kwargs: runner.run(router.acompletion(**kwargs))


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
    assert strategy.routed == 1 and strategy.fallbacks == 0


def test_breaker_opens_while_the_service_is_down_and_closes_after_restart(
    decision_server: Any, client: DecisionClient, complete: Complete
) -> None:
    router = make_router()
    spy = SpyClient(client)
    strategy = install(router, settings(decision_server.address), spy)
    assert chosen_id(complete(router, model=GROUP, messages=MESSAGES))  # warm: routed
    assert strategy.routed == 1

    decision_server.stop()
    try:
        for _ in range(THRESHOLD + 4):
            metadata: dict[str, Any] = {}
            response = complete(router, model=GROUP, messages=MESSAGES, metadata=metadata)
            assert chosen_id(response) == IDS[0]  # the ordered fallback
            assert metadata[METADATA_KEY]["fallback"] is True
        assert strategy.breaker.state is BreakerState.OPEN
        assert spy.failures == THRESHOLD  # no call once the breaker opened
        assert strategy.last_decision is not None
        assert strategy.last_decision.reason is Reason.BREAKER_OPEN
        assert strategy.fallbacks == THRESHOLD + 4
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

    routed_before = strategy.routed
    chosen_id(complete(router, model=GROUP, messages=MESSAGES))
    assert strategy.routed == routed_before + 1
