"""What the strategy tests share: a fake decision client, a deployment group on a real
``litellm.Router`` and helpers. No sockets."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
from litellm import Router

from gateway_client.settings import GatewayClientSettings
from gateway_client.strategy import RouteIQRoutingStrategy
from routeiq.decision.v1 import decision_pb2


class FakeRpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode) -> None:
        super().__init__(code.name)
        self._code = code

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return "details"


class FakeClient:
    """Ranks candidates in reverse request order, or raises ``error``."""

    def __init__(self) -> None:
        self.requests: list[decision_pb2.RouteRequest] = []
        self.timeouts: list[float] = []
        self.error: BaseException | None = None
        self.ranking: list[str] | None = None

    def _answer(self, request: decision_pb2.RouteRequest) -> decision_pb2.RouteResponse:
        self.requests.append(request)
        if self.error is not None:
            raise self.error
        ids = self.ranking if self.ranking is not None else [c.id for c in request.candidates][::-1]
        return decision_pb2.RouteResponse(
            ranked=[
                decision_pb2.RankedCandidate(id=i, score=1.0 - n / 10) for n, i in enumerate(ids)
            ],
            decision_id=f"dec-{len(self.requests)}",
            strategy_name="reverse",
            selection_reason="highest_score",
            timings=decision_pb2.Timings(total_ms=1.5),
        )

    def route(
        self, request: decision_pb2.RouteRequest, timeout_s: float
    ) -> decision_pb2.RouteResponse:
        self.timeouts.append(timeout_s)
        return self._answer(request)

    async def route_async(
        self, request: decision_pb2.RouteRequest, timeout_s: float
    ) -> decision_pb2.RouteResponse:
        self.timeouts.append(timeout_s)
        await asyncio.sleep(0)
        return self._answer(request)


def deployment(group: str, id: str, model: str, **info: Any) -> dict[str, Any]:
    return {
        "model_name": group,
        "litellm_params": {"model": model, "mock_response": f"from {id}", "api_key": "x"},
        "model_info": {"id": id, **info},
    }


MODEL_LIST = [
    deployment(
        "g", "g-mini", "openai/gpt-4o-mini", input_cost_per_token=1.5e-7, output_cost_per_token=6e-7
    ),
    deployment("g", "g-4o", "openai/gpt-4o"),
    deployment("g", "g-haiku", "anthropic/claude-3-haiku", base_model="claude-3-haiku-20240307"),
    deployment("solo", "solo-1", "openai/gpt-4o-mini"),
    deployment("other", "o-1", "openai/gpt-4o-mini"),
    deployment("other", "o-2", "openai/gpt-4o"),
]

MESSAGES: list[Any] = [
    {"role": "system", "content": "sys"},
    {"role": "user", "content": "write a haiku"},
]


def make_strategy(router: Router, client: FakeClient, **settings: Any) -> RouteIQRoutingStrategy:
    settings.setdefault("fallback_policy", "ordered")
    return RouteIQRoutingStrategy(router, GatewayClientSettings(**settings), client, breaker=None)


def cool_down(router: Router, model_id: str) -> None:
    """Put a deployment in cooldown (``health().cooldowns`` in litellm 1.110, else
    ``cooldown_cache``)."""
    health = getattr(router, "health", None)
    store = health().cooldowns if callable(health) else router.cooldown_cache
    store.add_deployment_to_cooldown(model_id, Exception("boom"), 500, 60)


def ids(request: decision_pb2.RouteRequest) -> list[str]:
    return [c.id for c in request.candidates]
