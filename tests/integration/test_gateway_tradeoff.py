"""Per-request, per-team and per-group cost weights through a real ``litellm.Router`` to a real
decision service (the KNN bundle trained on the synthetic data, where gpt-4o is the better and
far dearer model at maths and gpt-4o-mini the cheap one), with prices from LiteLLM's catalogue
and keyed caller hashes. Deployments use ``mock_response``: no provider is called."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
from collections.abc import Iterator
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm
import pytest
from litellm import Router
from prometheus_client import REGISTRY

from gateway_client import DecisionClient, GatewayClientSettings
from gateway_client.client import Metadata
from gateway_client.strategy import METADATA_KEY, Reason, install
from routeiq.decision.v1 import decision_pb2

from .deployments import GROUP, MESSAGES, MODEL_LIST

pytestmark = pytest.mark.integration

KEY = "integration-hash-key-0123"


class Spy:
    """A real DecisionClient that keeps the requests it sent."""

    def __init__(self, inner: DecisionClient) -> None:
        self.inner = inner
        self.requests: list[decision_pb2.RouteRequest] = []

    def route(
        self, request: decision_pb2.RouteRequest, timeout_s: float, metadata: Metadata | None = None
    ) -> decision_pb2.RouteResponse:
        self.requests.append(request)
        return self.inner.route(request, timeout_s, metadata)

    async def route_async(
        self, request: decision_pb2.RouteRequest, timeout_s: float, metadata: Metadata | None = None
    ) -> decision_pb2.RouteResponse:
        self.requests.append(request)
        return await self.inner.route_async(request, timeout_s, metadata)


@pytest.fixture
def client(decision_server: Any) -> Iterator[DecisionClient]:
    with DecisionClient(decision_server.address) as client:
        warm_up = decision_pb2.RouteRequest(
            prompt="warm up", candidates=[decision_pb2.Candidate(id="a", model_name="gpt-4o")]
        )
        client.route(warm_up, timeout_s=60.0)
        yield client


def strategy_on(router: Router, client: DecisionClient, **overrides: Any) -> tuple[Any, Spy]:
    spy = Spy(client)
    settings = GatewayClientSettings(
        target="unused:1", deadline_ms=5000, fallback_policy="ordered", id_hash_key=KEY, **overrides
    )
    return install(router, settings, spy, outcomes=False), spy


def served(router: Router, metadata: dict[str, Any], asynchronous: bool = False) -> str:
    kwargs = {"model": GROUP, "messages": MESSAGES, "metadata": metadata}
    if asynchronous:
        response = asyncio.run(router.acompletion(**kwargs))
    else:
        response = router.completion(**kwargs)
    assert metadata[METADATA_KEY]["reason"] == Reason.ROUTED
    return str(response._hidden_params["model_id"])


def weight(value: object) -> dict[str, Any]:
    return {"routeiq": {"cost_weight": value}}


def test_the_request_and_team_weights_change_the_services_choice(client: DecisionClient) -> None:
    router = Router(model_list=[dict(d) for d in MODEL_LIST], num_retries=0)
    strategy, spy = strategy_on(router, client)
    quality = served(router, weight(0.0))
    thrifty = served(router, weight(1.0), asynchronous=True)
    team = served(router, {"user_api_key_team_metadata": weight(1.0), "user_id": "alice"})
    unset = served(router, {})
    print(f"cost_weight 0 -> {quality}, 1 -> {thrifty}, team 1 -> {team}, unset -> {unset}")
    assert [r.cost_weight for r in spy.requests[:3]] == [0.0, 1.0, 1.0]
    assert not spy.requests[3].HasField("cost_weight")  # the bundle's default
    # Quality alone takes the maths-strong gpt-4o; full price sensitivity the cheap mini.
    assert (quality, thrifty, team) == ("dep-4o", "dep-mini", "dep-mini")
    for request, pick in zip(spy.requests, (quality, thrifty, team, unset), strict=True):
        assert client.route(request, timeout_s=5.0).ranked[0].id == pick

    # The deployments set no prices: LiteLLM's catalogue's went to the service.
    prices = {c.id: c for c in spy.requests[0].candidates}
    catalog = litellm.model_cost["gpt-4o"]
    expected = (catalog["input_cost_per_token"] + catalog["output_cost_per_token"]) / 2 * 1e6
    assert prices["dep-4o"].cost_per_million_tokens == pytest.approx(expected)
    assert not prices["dep-haiku"].HasField("cost_per_million_tokens")  # not in the catalogue
    # The caller id went out only as an HMAC under the configured key.
    digest = hmac.new(KEY.encode(), b"alice", hashlib.sha256).hexdigest()
    assert spy.requests[2].user_id_hash == digest
    assert spy.requests[0].user_id_hash == ""
    strategy.close()


def test_a_groups_model_info_weight_applies_unless_the_request_sets_one(
    client: DecisionClient,
) -> None:
    priced_group = [
        {**d, "model_info": {**d["model_info"], "routeiq": {"cost_weight": 1.0}}}
        for d in MODEL_LIST
    ]
    router = Router(model_list=priced_group, num_retries=0)
    strategy, spy = strategy_on(router, client, cost_weight=0.0)
    assert served(router, {}) == "dep-mini"  # the group's 1.0 beats the gateway's 0
    assert served(router, weight(0.0)) == "dep-4o"  # the request's beats the group's
    assert [r.cost_weight for r in spy.requests] == [1.0, 0.0]
    strategy.close()


def test_a_bad_weight_is_ignored_counted_and_the_request_still_routed(
    client: DecisionClient,
) -> None:
    router = Router(model_list=[dict(d) for d in MODEL_LIST], num_retries=0)
    strategy, spy = strategy_on(router, client, cost_weight=0.0)

    def ignored() -> float:
        value = REGISTRY.get_sample_value(
            "routeiq_gateway_cost_weight_ignored_total", {"source": "request"}
        )
        return value or 0.0

    before = ignored()
    assert served(router, weight(7)) == "dep-4o"  # out of range: the gateway's 0 decides
    assert spy.requests[-1].cost_weight == 0.0
    assert ignored() == before + 1
    strategy.close()
