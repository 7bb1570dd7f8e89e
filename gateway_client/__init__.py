"""RouteIQ gateway client: a LiteLLM routing strategy that asks the decision service which
deployment should serve each request, behind a circuit breaker with a static fallback.

Typical use::

    from gateway_client import GatewayClientSettings, install

    strategy = install(router, GatewayClientSettings(target="dns:///routeiq:50051"))

``gateway_client.strategy``, ``callback`` and ``proxy`` import LiteLLM; the other modules do not
(``pick`` only to raise LiteLLM's error for an unknown model). In the LiteLLM proxy, name
``gateway_client.proxy.handler`` under ``litellm_settings.callbacks``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .breaker import BreakerState, CircuitBreaker
from .client import DecisionClient, ErrorKind, RouteCaller, classify_error
from .decision import Reason, RoutingDecision, RoutingStats
from .fallback import (
    CheapestFallback,
    FallbackPolicy,
    OrderedFallback,
    WeightedShuffleFallback,
    deployment_weight,
    make_fallback_policy,
)
from .feedback import decision_id_of, send_feedback
from .outcomes import METADATA_KEY
from .settings import GatewayClientSettings

if TYPE_CHECKING:
    from .strategy import RouteIQRoutingStrategy, install

_STRATEGY_EXPORTS = frozenset({"RouteIQRoutingStrategy", "install"})


def __getattr__(name: str) -> Any:
    # The strategy needs LiteLLM, which is slow to import; load it on first use.
    if name in _STRATEGY_EXPORTS:
        from . import strategy

        return getattr(strategy, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "METADATA_KEY",
    "BreakerState",
    "CheapestFallback",
    "CircuitBreaker",
    "DecisionClient",
    "ErrorKind",
    "FallbackPolicy",
    "GatewayClientSettings",
    "OrderedFallback",
    "Reason",
    "RouteCaller",
    "RouteIQRoutingStrategy",
    "RoutingDecision",
    "RoutingStats",
    "WeightedShuffleFallback",
    "classify_error",
    "decision_id_of",
    "deployment_weight",
    "install",
    "make_fallback_policy",
    "send_feedback",
]
