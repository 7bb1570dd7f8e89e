"""The record of a pick: :class:`RoutingDecision` (which deployment, why, what the service
said), its :class:`Reason`, and the running :class:`RoutingStats`. No LiteLLM import."""

from __future__ import annotations

import enum
from dataclasses import dataclass, fields
from typing import Any


class Reason(enum.StrEnum):
    """Why a deployment was picked."""

    ROUTED = "routed"  # the service's top-ranked candidate
    SINGLE_CANDIDATE = "single_candidate"  # one healthy deployment: nothing to decide
    SPECIFIC_DEPLOYMENT = "specific_deployment"  # the caller named a deployment
    GROUP_NOT_ROUTED = "group_not_routed"  # the group is not in settings.routing_groups
    NO_HEALTHY_CANDIDATES = "no_healthy_candidates"  # all cooling down: fallback over the group
    NO_PROMPT = "no_prompt"  # no text to route on
    BREAKER_OPEN = "breaker_open"
    RPC_FAILURE = "rpc_failure"  # deadline, unavailable, overloaded, ...
    CALLER_ERROR = "caller_error"  # the service rejected the request (INVALID_ARGUMENT)
    BAD_RESPONSE = "bad_response"  # the ranking named none of the candidates
    INTERNAL_ERROR = "internal_error"  # a bug in this strategy; logged


# Picks where the service had nothing to decide: neither routed nor a fallback.
_BYPASS_REASONS = frozenset(
    {Reason.SINGLE_CANDIDATE, Reason.SPECIFIC_DEPLOYMENT, Reason.GROUP_NOT_ROUTED}
)


@dataclass(frozen=True, slots=True)
class RoutingDecision:
    """One pick: which deployment, why, and what the service said."""

    requested_model: str
    deployment_id: str | None
    reason: Reason
    candidates: int = 0
    decision_id: str = ""
    score: float | None = None
    latency_ms: float | None = None  # Route round trip seen by the gateway
    service_ms: float | None = None  # the service's own total (RouteResponse.timings)
    strategy_name: str = ""
    selection_reason: str = ""
    error: str = ""  # the gRPC status (or exception type) of a failed call
    candidate_ids: tuple[str, ...] = ()  # the healthy deployments offered to the service

    @property
    def routed(self) -> bool:
        return self.reason is Reason.ROUTED

    @property
    def fallback(self) -> bool:
        """Whether the static fallback replaced a decision the service should have made."""
        return self.reason is not Reason.ROUTED and self.reason not in _BYPASS_REASONS

    def as_metadata(self) -> dict[str, Any]:
        # Built by hand: dataclasses.asdict deep-copies and costs tens of microseconds.
        data = {name: getattr(self, name) for name in _DECISION_FIELDS}
        data["reason"] = self.reason.value
        data["fallback"] = self.fallback
        return data


_DECISION_FIELDS = tuple(f.name for f in fields(RoutingDecision))


@dataclass(frozen=True, slots=True)
class RoutingStats:
    """Picks so far: made by the service, by the fallback in its place, or with nothing to
    decide. Immutable, so a reader always sees one consistent snapshot."""

    routed: int = 0
    fallbacks: int = 0
    bypassed: int = 0

    def counting(self, decision: RoutingDecision) -> RoutingStats:
        """These stats with ``decision`` counted."""
        if decision.routed:
            return RoutingStats(self.routed + 1, self.fallbacks, self.bypassed)
        if decision.fallback:
            return RoutingStats(self.routed, self.fallbacks + 1, self.bypassed)
        return RoutingStats(self.routed, self.fallbacks, self.bypassed + 1)
