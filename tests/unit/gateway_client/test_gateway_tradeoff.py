"""The cost weight a pick sends: request, key, team, group and gateway sources, validation, and
deployment prices from LiteLLM's catalogue."""

from __future__ import annotations

import logging
import math
from typing import Any

import pytest
from litellm import Router
from prometheus_client import CollectorRegistry, Counter
from pydantic import ValidationError

from gateway_client.prices import catalog_cost_per_million_tokens, catalog_keys, price_function
from gateway_client.request import build_route_request
from gateway_client.settings import GatewayClientSettings
from gateway_client.tradeoff import CostWeights, Tradeoff, parse_cost_weight

from .fakes import MESSAGES, FakeClient, deployment, make_strategy


def weights(default: float | None = None, allow_request: bool = True) -> CostWeights:
    ignored = Counter("ignored", "test", ["source"], registry=CollectorRegistry())
    return CostWeights(default, allow_request=allow_request, ignored=ignored)


def ignored_count(cw: CostWeights, source: str) -> float:
    return cw._ignored["cost_weight"].labels(source=source)._value.get()


def routeiq(weight: object) -> dict[str, Any]:
    return {"routeiq": {"cost_weight": weight}}


GROUP = [deployment("g", "a", "openai/gpt-4o"), deployment("g", "b", "openai/gpt-4o-mini")]


@pytest.mark.parametrize("value", [0, 0.0, 1, 0.25, "0.5", " 1 "])
def test_valid_cost_weights(value: object) -> None:
    assert parse_cost_weight(value) == pytest.approx(float(value))  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [-0.1, 1.5, math.nan, math.inf, "high", True, None, [0.5]])
def test_invalid_cost_weights(value: object) -> None:
    with pytest.raises(ValueError):
        parse_cost_weight(value)


def test_the_most_specific_source_wins() -> None:
    cw = weights(default=0.9)
    metadata: dict[str, Any] = {
        **routeiq(0.1),
        "user_api_key_metadata": routeiq(0.2),
        "user_api_key_team_metadata": routeiq(0.3),
    }
    group = [deployment("g", "a", "openai/gpt-4o", routeiq={"cost_weight": 0.4}), *GROUP]
    assert cw.resolve({"metadata": metadata}, group).cost_weight == 0.1
    del metadata["routeiq"]
    assert cw.resolve({"metadata": metadata}, group).cost_weight == 0.2
    del metadata["user_api_key_metadata"]
    assert cw.resolve({"metadata": metadata}, group).cost_weight == 0.3
    assert cw.resolve({"metadata": {}}, group).cost_weight == 0.4
    assert cw.resolve(None, GROUP).cost_weight == 0.9
    assert (
        weights().resolve({"metadata": {}}, GROUP).cost_weight is None
    )  # unset: the bundle's default
    # litellm_metadata carries the proxy's fields on its assistant/batch routes.
    assert cw.resolve({"litellm_metadata": routeiq(0)}, GROUP).cost_weight == 0.0


def test_the_groups_setting_is_its_first_deployments() -> None:
    group = [
        GROUP[0],
        deployment("g", "c", "openai/gpt-4o", routeiq={"cost_weight": 0.6}),
        deployment("g", "d", "openai/gpt-4o", routeiq={"cost_weight": 0.1}),
    ]
    assert weights(default=0.9).resolve(None, group).cost_weight == 0.6


def test_a_callers_own_weight_can_be_turned_off() -> None:
    cw = weights(default=0.9, allow_request=False)
    metadata = {**routeiq(0.0), "user_api_key_team_metadata": routeiq(0.7)}
    assert cw.resolve({"metadata": metadata}, GROUP).cost_weight == 0.7
    assert cw.resolve({"metadata": routeiq(0.0)}, GROUP).cost_weight == 0.9


def test_a_bad_value_is_ignored_logged_once_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    cw = weights(default=0.9)
    metadata = {**routeiq("lots"), "user_api_key_team_metadata": routeiq(0.3)}
    with caplog.at_level(logging.WARNING, logger="gateway_client.tradeoff"):
        for _ in range(3):
            assert (
                cw.resolve({"metadata": metadata}, GROUP).cost_weight == 0.3
            )  # the next source decides
    assert ignored_count(cw, "request") == 3
    (warning,) = caplog.records
    assert "request" in warning.getMessage() and "'lots'" in warning.getMessage()
    bad_group = [deployment("g", "a", "openai/gpt-4o", routeiq={"cost_weight": 2})]
    assert cw.resolve(None, bad_group).cost_weight == 0.9
    assert ignored_count(cw, "group") == 1
    assert (
        cw.resolve({"metadata": {"user_api_key_team_metadata": routeiq(-1)}}, GROUP).cost_weight
        == 0.9
    )
    assert ignored_count(cw, "team") == 1


def test_the_request_weight_reaches_the_route_request(router: Router, client: FakeClient) -> None:
    strategy = make_strategy(router, client, cost_weight=0.9)
    for metadata, sent in [
        (routeiq(0.0), 0.0),
        ({"user_api_key_team_metadata": routeiq(0.35)}, 0.35),
        (routeiq("bad"), 0.9),
        ({}, 0.9),
    ]:
        strategy.get_available_deployment(
            "g", messages=MESSAGES, request_kwargs={"metadata": metadata}
        )
        assert client.requests[-1].cost_weight == pytest.approx(sent)


def test_without_any_weight_the_field_is_unset(router: Router, client: FakeClient) -> None:
    strategy = make_strategy(router, client)
    strategy.get_available_deployment("g", messages=MESSAGES, request_kwargs={"metadata": {}})
    assert not client.requests[-1].HasField("cost_weight")


# -- strong_share: the same sources, either key --------------------------------------------


def shares(default_share: float | None = None, allow_request: bool = True) -> CostWeights:
    registry = CollectorRegistry()
    return CostWeights(
        default_share=default_share,
        allow_request=allow_request,
        ignored=Counter("ignored_w", "test", ["source"], registry=registry),
        ignored_shares=Counter("ignored_s", "test", ["source"], registry=registry),
    )


def share_ignored(cw: CostWeights, source: str) -> float:
    return cw._ignored["strong_share"].labels(source=source)._value.get()


def test_the_most_specific_source_wins_whichever_key_it_uses() -> None:
    cw = shares(default_share=0.9)
    metadata: dict[str, Any] = {
        "routeiq": {"strong_share": 0.1},
        "user_api_key_metadata": routeiq(0.2),
        "user_api_key_team_metadata": {"routeiq": {"strong_share": 0.3}},
    }
    group = [deployment("g", "a", "openai/gpt-4o", routeiq={"strong_share": 0.4}), *GROUP]
    assert cw.resolve({"metadata": metadata}, group) == Tradeoff(strong_share=0.1)
    del metadata["routeiq"]
    assert cw.resolve({"metadata": metadata}, group) == Tradeoff(cost_weight=0.2)
    del metadata["user_api_key_metadata"]
    assert cw.resolve({"metadata": metadata}, group) == Tradeoff(strong_share=0.3)
    assert cw.resolve({"metadata": {}}, group) == Tradeoff(strong_share=0.4)
    assert cw.resolve(None, GROUP) == Tradeoff(strong_share=0.9)
    assert shares().resolve(None, GROUP) == Tradeoff()
    # A group whose first setting is a weight: the weight, over the gateway's share.
    weighted = [deployment("g", "a", "openai/gpt-4o", routeiq={"cost_weight": 0.5}), *GROUP]
    assert cw.resolve(None, weighted) == Tradeoff(cost_weight=0.5)


def test_a_source_with_both_keys_sends_its_weight_and_counts_the_share() -> None:
    cw = shares(default_share=0.9)
    both = {"routeiq": {"cost_weight": 0.2, "strong_share": 0.7}}
    assert cw.resolve({"metadata": both}, GROUP) == Tradeoff(cost_weight=0.2)
    assert share_ignored(cw, "request") == 1


def test_a_bad_share_is_ignored_counted_and_the_next_source_decides(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cw = shares(default_share=0.9)
    metadata = {
        "routeiq": {"strong_share": 1.5},
        "user_api_key_metadata": {"routeiq": {"strong_share": "half"}},
        "user_api_key_team_metadata": {"routeiq": {"strong_share": "0.25"}},
    }
    with caplog.at_level(logging.WARNING, logger="gateway_client.tradeoff"):
        assert cw.resolve({"metadata": metadata}, GROUP) == Tradeoff(strong_share=0.25)
    assert share_ignored(cw, "request") == 1 and share_ignored(cw, "key") == 1
    assert any("routeiq.strong_share" in r.getMessage() for r in caplog.records)
    bad_group = [deployment("g", "a", "openai/gpt-4o", routeiq={"strong_share": -1})]
    assert cw.resolve(None, bad_group) == Tradeoff(strong_share=0.9)


def test_a_callers_own_share_can_be_turned_off() -> None:
    cw = shares(default_share=0.9, allow_request=False)
    assert cw.resolve({"metadata": {"routeiq": {"strong_share": 0.0}}}, GROUP) == Tradeoff(
        strong_share=0.9
    )


def test_the_share_reaches_the_route_request(router: Router, client: FakeClient) -> None:
    strategy = make_strategy(router, client, strong_share=0.3)
    for metadata, share, weight in [
        ({"routeiq": {"strong_share": 0.0}}, 0.0, None),
        ({}, 0.3, None),
        (routeiq(0.5), None, 0.5),
    ]:
        strategy.get_available_deployment(
            "g", messages=MESSAGES, request_kwargs={"metadata": metadata}
        )
        sent = client.requests[-1]
        assert (sent.strong_share if sent.HasField("strong_share") else None) == share
        assert (sent.cost_weight if sent.HasField("cost_weight") else None) == weight


def test_the_gateway_sets_one_trade_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROUTEIQ_GATEWAY_STRONG_SHARE", "0.2")
    assert GatewayClientSettings().strong_share == 0.2
    with pytest.raises(ValidationError, match="one of cost_weight and strong_share"):
        GatewayClientSettings(cost_weight=0.1)
    monkeypatch.delenv("ROUTEIQ_GATEWAY_STRONG_SHARE")
    with pytest.raises(ValidationError):
        GatewayClientSettings(strong_share=1.2)
    with pytest.raises(ValueError, match="not both"):
        build_route_request(
            requested_model="g", prompt="p", candidates=[], cost_weight=0.1, strong_share=0.2
        )


# -- prices ------------------------------------------------------------------------------------

CATALOG = {
    "gpt-4o": {"input_cost_per_token": 2e-6, "output_cost_per_token": 8e-6},
    "azure-base": {"input_cost_per_token": 1e-6},
    "free-text": {"mode": "chat"},
}


def test_catalog_keys_and_prices() -> None:
    dep = deployment("g", "a", "openai/gpt-4o")
    assert catalog_keys(dep) == ["openai/gpt-4o", "gpt-4o"]
    assert catalog_cost_per_million_tokens(dep, CATALOG) == pytest.approx(5.0)
    azure = deployment("g", "b", "azure/my-deployment", base_model="azure-base")
    assert catalog_keys(azure)[0] == "azure-base"
    assert catalog_cost_per_million_tokens(azure, CATALOG) == pytest.approx(1.0)
    assert catalog_cost_per_million_tokens(deployment("g", "c", "x/free-text"), CATALOG) is None
    assert catalog_cost_per_million_tokens(deployment("g", "d", "x/unknown"), CATALOG) is None


def test_explicit_prices_win_over_the_catalog() -> None:
    priced = deployment("g", "a", "openai/gpt-4o", input_cost_per_token=1e-7)
    unpriced = deployment("g", "b", "openai/gpt-4o")
    with_catalog = price_function(True)
    assert with_catalog(priced) == pytest.approx(0.1)
    assert with_catalog(unpriced) == pytest.approx(catalog_cost_per_million_tokens(unpriced))
    assert with_catalog(unpriced) is not None
    assert price_function(False)(unpriced) is None


def test_litellm_prices_off_sends_unpriced_candidates(router: Router, client: FakeClient) -> None:
    strategy = make_strategy(router, client, litellm_prices=False)
    strategy.get_available_deployment("g", messages=MESSAGES, request_kwargs={})
    mini, four_o, _ = client.requests[-1].candidates
    assert mini.HasField("cost_per_million_tokens")
    assert not four_o.HasField("cost_per_million_tokens")
