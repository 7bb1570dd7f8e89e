"""RouteIQRoutingStrategy over a real litellm.Router (mock deployments) and a fake client:
no sockets, no provider calls."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from typing import Any

import grpc
import litellm
import pytest
from litellm import Router

from gateway_client.breaker import BreakerState, CircuitBreaker
from gateway_client.fallback import OrderedFallback
from gateway_client.router_view import RouterView
from gateway_client.settings import GatewayClientSettings
from gateway_client.strategy import (
    METADATA_KEY,
    Reason,
    RouteIQRoutingStrategy,
    RoutingStats,
    install,
)

from .fakes import (
    MESSAGES,
    MODEL_LIST,
    FakeClient,
    FakeRpcError,
    cool_down,
    deployment,
    ids,
    make_strategy,
)

# -- the request -----------------------------------------------------------------------------


def test_sends_the_prompt_and_the_group(router: Router, client: FakeClient) -> None:
    strategy = make_strategy(
        router, client, cost_weight=0.4, deadline_ms=30, id_hash_key="0123456789abcdef"
    )
    kwargs: dict[str, object] = {
        "metadata": {"user_api_key_user_id": "alice", "user_api_key_team_id": "team-a"},
        "litellm_call_id": "call-9",
    }
    strategy.get_available_deployment("g", messages=MESSAGES, request_kwargs=kwargs)
    (request,) = client.requests
    assert request.prompt == "write a haiku"
    assert request.requested_model == "g"
    assert ids(request) == ["g-mini", "g-4o", "g-haiku"]
    mini, four_o, haiku = request.candidates
    assert (mini.model_name, mini.provider) == ("gpt-4o-mini", "openai")
    assert mini.cost_per_million_tokens == pytest.approx(0.375)  # its own price
    # No price of its own: LiteLLM's catalogue's (gpt-4o: $2.50 in, $10 out per million).
    catalog = litellm.model_cost["gpt-4o"]
    expected = (catalog["input_cost_per_token"] + catalog["output_cost_per_token"]) / 2 * 1e6
    assert four_o.cost_per_million_tokens == pytest.approx(expected)
    assert (haiku.model_name, haiku.provider) == ("claude-3-haiku-20240307", "anthropic")
    key = b"0123456789abcdef"
    assert request.user_id_hash == hmac.new(key, b"alice", hashlib.sha256).hexdigest()
    assert request.team_id_hash == hmac.new(key, b"team-a", hashlib.sha256).hexdigest()
    assert request.request_id == "call-9"
    assert request.cost_weight == pytest.approx(0.4)
    assert client.timeouts == [pytest.approx(0.03)]


# -- picks -----------------------------------------------------------------------------------


def test_returns_the_top_ranked_registry_deployment(router: Router, client: FakeClient) -> None:
    strategy = make_strategy(router, client)
    metadata: dict[str, Any] = {}
    picked = strategy.get_available_deployment(
        "g", messages=MESSAGES, request_kwargs={"metadata": metadata}
    )
    assert picked["model_info"]["id"] == "g-haiku"  # reversed ranking
    assert any(picked is d for d in RouterView(router).group_deployments("g"))
    record = metadata[METADATA_KEY]
    assert record["decision_id"] == "dec-1"
    assert record["fallback"] is False
    assert record["reason"] == "routed"
    assert record["deployment_id"] == "g-haiku"
    assert record["score"] == pytest.approx(1.0)
    assert record["service_ms"] == pytest.approx(1.5)
    assert record["latency_ms"] >= 0
    assert strategy.recorder.stats == RoutingStats(routed=1)
    assert strategy.last_decision is not None and strategy.last_decision.decision_id == "dec-1"


async def test_async_pick(router: Router, client: FakeClient) -> None:
    strategy = make_strategy(router, client)
    client.ranking = ["g-4o", "g-mini", "g-haiku"]
    picked = await strategy.async_get_available_deployment("g", messages=MESSAGES)
    assert picked["model_info"]["id"] == "g-4o"
    assert strategy.recorder.stats.routed == 1


def test_ranking_ids_unknown_to_the_request_are_skipped(router: Router, client: FakeClient) -> None:
    strategy = make_strategy(router, client)
    client.ranking = ["ghost", "g-mini"]
    assert strategy.get_available_deployment("g", messages=MESSAGES)["model_info"]["id"] == "g-mini"


def test_a_ranking_naming_no_candidate_falls_back(router: Router, client: FakeClient) -> None:
    strategy = make_strategy(router, client)
    client.ranking = ["ghost"]
    picked = strategy.get_available_deployment("g", messages=MESSAGES)
    assert picked["model_info"]["id"] == "g-mini"  # ordered fallback
    assert strategy.last_decision is not None
    assert strategy.last_decision.reason is Reason.BAD_RESPONSE
    assert strategy.breaker.consecutive_failures == 1


# -- short circuits --------------------------------------------------------------------------


def test_single_deployment_group_makes_no_call(router: Router, client: FakeClient) -> None:
    strategy = make_strategy(router, client)
    picked = strategy.get_available_deployment("solo", messages=MESSAGES)
    assert picked["model_info"]["id"] == "solo-1"
    assert client.requests == []
    assert strategy.last_decision is not None
    assert strategy.last_decision.reason is Reason.SINGLE_CANDIDATE
    assert not strategy.last_decision.fallback
    assert strategy.recorder.stats == RoutingStats(bypassed=1)


def test_cooled_down_deployments_are_not_candidates(router: Router, client: FakeClient) -> None:
    cool_down(router, "g-haiku")
    strategy = make_strategy(router, client)
    picked = strategy.get_available_deployment("g", messages=MESSAGES)
    assert ids(client.requests[0]) == ["g-mini", "g-4o"]
    assert picked["model_info"]["id"] == "g-4o"


async def test_cooled_down_deployments_are_not_candidates_async(
    router: Router, client: FakeClient
) -> None:
    cool_down(router, "g-mini")
    strategy = make_strategy(router, client)
    await strategy.async_get_available_deployment("g", messages=MESSAGES)
    assert ids(client.requests[0]) == ["g-4o", "g-haiku"]


def test_one_healthy_deployment_left_makes_no_call(router: Router, client: FakeClient) -> None:
    for id in ("g-mini", "g-4o"):
        cool_down(router, id)
    strategy = make_strategy(router, client)
    assert (
        strategy.get_available_deployment("g", messages=MESSAGES)["model_info"]["id"] == "g-haiku"
    )
    assert client.requests == []


def test_all_cooling_down_still_answers_from_the_group(router: Router, client: FakeClient) -> None:
    for id in ("g-mini", "g-4o", "g-haiku"):
        cool_down(router, id)
    strategy = make_strategy(router, client)
    assert strategy.get_available_deployment("g", messages=MESSAGES)["model_info"]["id"] == "g-mini"
    assert strategy.last_decision is not None
    assert strategy.last_decision.reason is Reason.NO_HEALTHY_CANDIDATES
    assert client.requests == []


def test_team_scoped_and_paused_deployments_are_left_out(client: FakeClient) -> None:
    team_only = deployment("g", "g-team", "openai/gpt-4o", team_id="t1")
    paused = deployment("g", "g-paused", "openai/gpt-4o", blocked=True)
    router = Router(model_list=[*MODEL_LIST[:3], team_only, paused], num_retries=0)
    strategy = make_strategy(router, client)
    strategy.get_available_deployment("g", messages=MESSAGES, request_kwargs={"metadata": {}})
    strategy.get_available_deployment(
        "g", messages=MESSAGES, request_kwargs={"metadata": {"user_api_key_team_id": "t2"}}
    )
    assert [ids(r) for r in client.requests] == [["g-mini", "g-4o", "g-haiku"]] * 2
    picked = strategy.get_available_deployment(
        "g", messages=MESSAGES, request_kwargs={"metadata": {"user_api_key_team_id": "t1"}}
    )
    assert picked["model_info"]["id"] == "g-team"  # the team's own deployment


def test_an_unreadable_cooldown_store_counts_as_none_cooling(
    router: Router, client: FakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    strategy = make_strategy(router, client)

    def broken(self: RouterView) -> object:
        raise ConnectionError("redis down")

    monkeypatch.setattr(RouterView, "_cooldown_store", broken)
    strategy.get_available_deployment("g", messages=MESSAGES)
    assert ids(client.requests[0]) == ["g-mini", "g-4o", "g-haiku"]


def test_groups_outside_routing_groups_use_the_fallback(router: Router, client: FakeClient) -> None:
    strategy = make_strategy(router, client, routing_groups=["other"])
    assert strategy.get_available_deployment("g", messages=MESSAGES)["model_info"]["id"] == "g-mini"
    assert client.requests == []
    strategy.get_available_deployment("other", messages=MESSAGES)
    assert len(client.requests) == 1


def test_no_prompt_makes_no_call(router: Router, client: FakeClient) -> None:
    strategy = make_strategy(router, client)
    strategy.get_available_deployment("g", messages=[{"role": "system", "content": "x"}])
    assert client.requests == []
    assert strategy.last_decision is not None and strategy.last_decision.reason is Reason.NO_PROMPT


def test_embedding_input_is_routed(router: Router, client: FakeClient) -> None:
    strategy = make_strategy(router, client)
    strategy.get_available_deployment("g", input=["embed", "this"])
    assert client.requests[0].prompt == "embed\nthis"


def test_a_deployment_id_as_model_returns_that_deployment(
    router: Router, client: FakeClient
) -> None:
    strategy = make_strategy(router, client)
    picked = strategy.get_available_deployment("g-4o", messages=MESSAGES)
    assert picked["model_info"]["id"] == "g-4o"
    assert client.requests == []


def test_specific_deployment_by_litellm_model(router: Router, client: FakeClient) -> None:
    strategy = make_strategy(router, client)
    picked = strategy.get_available_deployment(
        "anthropic/claude-3-haiku", messages=MESSAGES, specific_deployment=True
    )
    assert picked["model_info"]["id"] == "g-haiku"


def test_an_unknown_model_is_litellms_bad_request(router: Router, client: FakeClient) -> None:
    strategy = make_strategy(router, client)
    with pytest.raises(litellm.BadRequestError):
        strategy.get_available_deployment("nope", messages=MESSAGES)


# -- failures and the breaker ----------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        FakeRpcError(grpc.StatusCode.DEADLINE_EXCEEDED),
        FakeRpcError(grpc.StatusCode.UNAVAILABLE),
        FakeRpcError(grpc.StatusCode.RESOURCE_EXHAUSTED),
        FakeRpcError(grpc.StatusCode.INTERNAL),
        RuntimeError("boom"),
    ],
)
def test_failures_fall_back_and_count(router: Router, client: FakeClient, error: Exception) -> None:
    strategy = make_strategy(router, client, breaker_failure_threshold=3)
    client.error = error
    metadata: dict[str, Any] = {}
    picked = strategy.get_available_deployment(
        "g", messages=MESSAGES, request_kwargs={"metadata": metadata}
    )
    assert picked["model_info"]["id"] == "g-mini"
    assert metadata[METADATA_KEY]["fallback"] is True
    assert metadata[METADATA_KEY]["reason"] == "rpc_failure"
    assert metadata[METADATA_KEY]["error"]
    assert strategy.breaker.consecutive_failures == 1
    assert strategy.recorder.stats.fallbacks == 1


def test_invalid_argument_falls_back_without_counting(router: Router, client: FakeClient) -> None:
    strategy = make_strategy(router, client, breaker_failure_threshold=1)
    client.error = FakeRpcError(grpc.StatusCode.INVALID_ARGUMENT)
    for _ in range(3):
        strategy.get_available_deployment("g", messages=MESSAGES)
    assert strategy.breaker.state is BreakerState.CLOSED
    assert len(client.requests) == 3
    assert strategy.last_decision is not None
    assert strategy.last_decision.reason is Reason.CALLER_ERROR


def test_breaker_opens_and_stops_calling(router: Router, client: FakeClient) -> None:
    strategy = make_strategy(router, client, breaker_failure_threshold=2)
    client.error = FakeRpcError(grpc.StatusCode.UNAVAILABLE)
    for _ in range(5):
        assert (
            strategy.get_available_deployment("g", messages=MESSAGES)["model_info"]["id"]
            == "g-mini"
        )
    assert len(client.requests) == 2
    assert strategy.breaker.state is BreakerState.OPEN
    assert strategy.last_decision is not None
    assert strategy.last_decision.reason is Reason.BREAKER_OPEN
    assert strategy.recorder.stats.fallbacks == 5


def test_half_open_probe_closes_on_success(router: Router, client: FakeClient) -> None:
    now = [0.0]
    breaker = CircuitBreaker(1, 10.0, clock=lambda: now[0])
    strategy = RouteIQRoutingStrategy(
        router, GatewayClientSettings(), client, breaker=breaker, fallback=OrderedFallback()
    )
    client.error = FakeRpcError(grpc.StatusCode.UNAVAILABLE)
    strategy.get_available_deployment("g", messages=MESSAGES)
    assert breaker.state is BreakerState.OPEN
    now[0] = 10.0
    client.error = None
    assert (
        strategy.get_available_deployment("g", messages=MESSAGES)["model_info"]["id"] == "g-haiku"
    )
    assert breaker.state is BreakerState.CLOSED


async def test_cancellation_releases_the_probe(router: Router, client: FakeClient) -> None:
    now = [0.0]
    breaker = CircuitBreaker(1, 10.0, clock=lambda: now[0])
    strategy = RouteIQRoutingStrategy(router, GatewayClientSettings(), client, breaker=breaker)
    client.error = FakeRpcError(grpc.StatusCode.UNAVAILABLE)
    await strategy.async_get_available_deployment("g", messages=MESSAGES)
    now[0] = 10.0
    client.error = asyncio.CancelledError()
    with pytest.raises(asyncio.CancelledError):
        await strategy.async_get_available_deployment("g", messages=MESSAGES)
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.allow_request()  # the slot is free for the next probe


def test_a_bug_in_the_strategy_still_returns_a_deployment(
    router: Router, client: FakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    strategy = make_strategy(router, client)

    def broken(*args: object, **kwargs: object) -> None:
        raise KeyError("bug")

    monkeypatch.setattr(strategy.planner, "plan", broken)
    picked = strategy.get_available_deployment("g", messages=MESSAGES)
    assert picked["model_info"]["id"] == "g-mini"
    assert strategy.last_decision is not None
    assert strategy.last_decision.reason is Reason.INTERNAL_ERROR


# -- installation ----------------------------------------------------------------------------


def test_install_registers_with_the_router(router: Router, client: FakeClient) -> None:
    strategy = install(router, GatewayClientSettings(fallback_policy="ordered"), client)
    response: Any = router.completion(model="g", messages=MESSAGES)
    assert response.choices[0].message.content == "from g-haiku"
    assert strategy.recorder.stats.routed == 1


async def test_install_serves_acompletion(router: Router, client: FakeClient) -> None:
    strategy = install(router, GatewayClientSettings(), client)
    metadata: dict[str, Any] = {}
    response = await router.acompletion(model="g", messages=MESSAGES, metadata=metadata)
    assert response.choices[0].message.content == "from g-haiku"
    assert metadata[METADATA_KEY]["deployment_id"] == "g-haiku"
    assert strategy.recorder.stats.routed == 1


def test_install_uses_set_custom_routing_strategy_without_register_plugin(
    client: FakeClient,
) -> None:
    class OldRouter:
        """The surface of litellm < 1.110."""

        def __init__(self) -> None:
            self.model_list = MODEL_LIST
            self.registered: object = None

        def set_custom_routing_strategy(self, strategy: object) -> None:
            self.registered = strategy

        def get_model_list(
            self, model_name: str | None = None, team_id: str | None = None
        ) -> list[Any]:
            return [d for d in self.model_list if d["model_name"] == model_name]

        def get_model_info(self, id: str) -> Any:
            return next((d for d in self.model_list if d["model_info"]["id"] == id), None)

    old = OldRouter()
    strategy = install(old, GatewayClientSettings(), client)
    assert old.registered is strategy
    picked = strategy.get_available_deployment("g", messages=MESSAGES)
    assert picked is MODEL_LIST[2]
