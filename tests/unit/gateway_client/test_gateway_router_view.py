"""The strategy's view of the router keeps each group's registry lookup between picks: what
changes the router's deployments or aliases at runtime is seen by the next pick, and what
changes without a new registry version (cooldowns, a deployment paused in place) is read on
every pick. A real ``litellm.Router``; no sockets."""

from __future__ import annotations

from typing import Any

import pytest
from litellm import Router
from litellm.router_api import ChangeSet
from litellm.types.router import Deployment as LiteLLMDeployment

from gateway_client.breaker import CircuitBreaker
from gateway_client.router_view import RouterView
from gateway_client.settings import GatewayClientSettings
from gateway_client.strategy import Reason, RouteIQRoutingStrategy

from .fakes import MESSAGES, FakeClient, cool_down, deployment, ids, make_strategy


def open_breaker_strategy(router: Router, client: FakeClient) -> RouteIQRoutingStrategy:
    opened = CircuitBreaker(1, 3600.0)
    opened.record_failure()
    settings = GatewayClientSettings(fallback_policy="ordered")
    return RouteIQRoutingStrategy(router, settings, client, breaker=opened)


def pick_id(strategy: RouteIQRoutingStrategy, model: str = "g") -> str:
    picked = strategy.get_available_deployment(model, messages=MESSAGES)
    return str(picked["model_info"]["id"])


def offered(strategy: RouteIQRoutingStrategy) -> tuple[str, ...]:
    assert strategy.last_decision is not None
    return strategy.last_decision.candidate_ids


def test_a_deployment_added_after_a_pick_is_picked_up(router: Router, client: FakeClient) -> None:
    strategy = open_breaker_strategy(router, client)
    assert pick_id(strategy, "solo") == "solo-1"
    assert strategy.last_decision is not None
    assert strategy.last_decision.reason is Reason.SINGLE_CANDIDATE

    router.add_deployment(LiteLLMDeployment(**deployment("solo", "solo-2", "openai/gpt-4o")))
    assert pick_id(strategy, "solo") == "solo-1"  # ordered fallback: the router's first
    assert strategy.last_decision is not None
    assert strategy.last_decision.reason is Reason.BREAKER_OPEN
    assert offered(strategy) == ("solo-1", "solo-2")
    cool_down(router, "solo-1")
    assert pick_id(strategy, "solo") == "solo-2"


def test_a_deployment_added_after_a_pick_is_offered_to_the_service(
    router: Router, client: FakeClient
) -> None:
    strategy = make_strategy(router, client)
    strategy.get_available_deployment("g", messages=MESSAGES)
    router.apply(
        ChangeSet(upsert=[LiteLLMDeployment(**deployment("g", "g-new", "openai/gpt-4.1"))])
    )
    client.ranking = ["g-new"]
    assert pick_id(strategy) == "g-new"
    assert [ids(r) for r in client.requests] == [
        ["g-mini", "g-4o", "g-haiku"],
        ["g-mini", "g-4o", "g-haiku", "g-new"],
    ]


def test_a_deleted_deployment_is_no_longer_picked(router: Router, client: FakeClient) -> None:
    strategy = open_breaker_strategy(router, client)
    assert pick_id(strategy) == "g-mini"
    router.apply(ChangeSet(delete=["g-mini"]))
    assert pick_id(strategy) == "g-4o"
    assert offered(strategy) == ("g-4o", "g-haiku")


def test_a_replaced_model_list_is_picked_up(router: Router, client: FakeClient) -> None:
    strategy = open_breaker_strategy(router, client)
    assert pick_id(strategy) == "g-mini"
    router.set_model_list([deployment("g", "g-a", "openai/a"), deployment("g", "g-b", "openai/b")])
    assert pick_id(strategy) == "g-a"
    assert offered(strategy) == ("g-a", "g-b")


def test_an_alias_pointed_elsewhere_is_followed(router: Router, client: FakeClient) -> None:
    # LiteLLM changes model_group_alias without a new registry version: the view compares it.
    strategy = open_breaker_strategy(router, client)
    router.apply(ChangeSet(settings={"model_group_alias": {"fast": "g"}}))
    assert pick_id(strategy, "fast") == "g-mini"
    router.apply(ChangeSet(settings={"model_group_alias": {"fast": "other"}}))
    assert pick_id(strategy, "fast") == "o-1"
    assert offered(strategy) == ("o-1", "o-2")
    router.registry().aliases()["fast"] = "g"  # the live map, changed in place
    assert pick_id(strategy, "fast") == "g-mini"


def test_a_deployment_paused_in_place_is_left_out(router: Router, client: FakeClient) -> None:
    strategy = open_breaker_strategy(router, client)
    assert pick_id(strategy) == "g-mini"
    version = router.registry().version
    first = router.registry().deployments("g")[0]
    first["model_info"]["blocked"] = True
    assert router.registry().version == version  # no new version: only a per-pick read sees it
    assert pick_id(strategy) == "g-4o"


def test_cooldowns_are_read_on_every_pick(router: Router, client: FakeClient) -> None:
    strategy = open_breaker_strategy(router, client)
    assert pick_id(strategy) == "g-mini"
    cool_down(router, "g-mini")
    assert pick_id(strategy) == "g-4o"
    assert offered(strategy) == ("g-4o", "g-haiku")


def test_the_group_lookup_is_made_once_per_registry_version(
    router: Router, client: FakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry_type = type(router.registry())
    lookups: list[Any] = []
    original = registry_type.deployments

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        lookups.append(args)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(registry_type, "deployments", counted)
    strategy = open_breaker_strategy(router, client)
    for _ in range(3):
        pick_id(strategy)
    assert len(lookups) == 1
    router.add_deployment(LiteLLMDeployment(**deployment("g", "g-late", "openai/gpt-4.1")))
    for _ in range(3):
        pick_id(strategy)
    assert len(lookups) == 2
    assert offered(strategy) == ("g-mini", "g-4o", "g-haiku", "g-late")


def test_each_team_gets_its_own_lookup(client: FakeClient) -> None:
    team_only = deployment("g", "g-team", "openai/gpt-4o", team_id="t1")
    router = Router(model_list=[deployment("g", "g-1", "openai/a"), team_only], num_retries=0)
    view = RouterView(router)
    assert [d["model_info"]["id"] for d in view.group_deployments("g", "t1")] == ["g-1", "g-team"]
    assert [d["model_info"]["id"] for d in view.group_deployments("g", None)] == ["g-1"]
    assert [d["model_info"]["id"] for d in view.group_deployments("g", "t1")] == ["g-1", "g-team"]


def test_a_registry_without_a_version_is_asked_every_time(client: FakeClient) -> None:
    class Registry:
        """A registry that cannot tell when it changed."""

        def __init__(self) -> None:
            self.model_list = [deployment("g", "g-1", "openai/a"), deployment("g", "g-2", "b")]

        def deployments(self, model_name: str, team_id: str | None = None) -> list[Any]:
            return [d for d in self.model_list if d["model_name"] == model_name]

    class VersionlessRouter:
        def __init__(self) -> None:
            self._registry = Registry()

        def registry(self) -> Registry:
            return self._registry

    router = VersionlessRouter()
    view = RouterView(router)
    assert [d["model_info"]["id"] for d in view.group_deployments("g")] == ["g-1", "g-2"]
    router.registry().model_list.append(deployment("g", "g-3", "openai/c"))
    assert [d["model_info"]["id"] for d in view.group_deployments("g")] == ["g-1", "g-2", "g-3"]
