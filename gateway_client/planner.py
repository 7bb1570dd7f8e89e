"""The pure part of a pick: given a group's deployments and the request, whether to ask the
decision service and what to ask it, how to read its answer, and how to pick without it.

No I/O: the cooldowns and the breaker's state come in as arguments, nothing here calls the
service, reads the router or records anything (:mod:`gateway_client.pick` does).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from routeiq.decision.v1 import decision_pb2

from .decision import Reason, RoutingDecision
from .fallback import FallbackPolicy
from .prices import price_function
from .request import build_route_request, candidate_for, extract_prompt
from .router_view import Deployment, deployment_id, deployment_ids
from .settings import GatewayClientSettings
from .tradeoff import CostWeights


@dataclass(frozen=True, slots=True)
class Plan:
    """A pick decided without the service (``pick`` and ``reason`` set), or the ``request`` to
    send it, with ``by_id`` mapping the request's candidate ids back to the router's
    deployments."""

    model: str
    healthy: Sequence[Deployment] = ()
    pick: Deployment | None = None
    reason: Reason | None = None
    request: decision_pb2.RouteRequest | None = None
    by_id: Mapping[str, Deployment] = field(default_factory=dict)


class Choice(NamedTuple):
    """A pick made: the decision to record and the router's deployment to return."""

    decision: RoutingDecision
    deployment: Deployment


class Planner:
    """Plans picks with ``settings`` (routing groups, prices, id hashing), the request's
    ``cost_weights`` and the static ``fallback``."""

    def __init__(
        self,
        settings: GatewayClientSettings,
        fallback: FallbackPolicy,
        cost_weights: CostWeights | None = None,
    ) -> None:
        self.settings = settings
        self.fallback = fallback
        self.cost_weights = cost_weights or CostWeights.from_settings(settings)
        self.price_of = price_function(settings.litellm_prices)
        key = settings.id_hash_key
        self._id_hash_key = None if key is None else key.get_secret_value().encode("utf-8")

    def plan(
        self,
        model: str,
        group: Sequence[Deployment],
        cooling: frozenset[str],
        messages: Sequence[Mapping[str, Any]] | None,
        input: object,
        request_kwargs: Mapping[str, Any] | None,
        *,
        breaker_open: bool,
    ) -> Plan:
        """What to do for a request to ``model`` served by ``group``, of which the ids in
        ``cooling`` are cooling down."""
        # Nothing cooling (the usual case) needs no id lookups.
        healthy = [d for d in group if deployment_id(d) not in cooling] if cooling else list(group)
        if not healthy:
            # Every deployment is cooling down: still answer, from the whole group.
            return Plan(model, group, self.fallback.choose(group), Reason.NO_HEALTHY_CANDIDATES)
        if len(healthy) == 1:
            return Plan(model, healthy, healthy[0], Reason.SINGLE_CANDIDATE)
        if not self.settings.routes_group(model):
            return Plan(model, healthy, self.fallback.choose(healthy), Reason.GROUP_NOT_ROUTED)
        if breaker_open:
            # Decided before any request is built: an open breaker costs no serialization.
            return Plan(model, healthy, self.fallback.choose(healthy), Reason.BREAKER_OPEN)
        by_id: dict[str, Deployment] = {}
        candidates: list[decision_pb2.Candidate] = []
        for deployment in healthy:
            candidate = candidate_for(deployment, self.price_of)
            if candidate is None or candidate.id in by_id:
                continue
            by_id[candidate.id] = deployment
            candidates.append(candidate)
        if len(candidates) < 2:
            only = next(iter(by_id.values()), None) or self.fallback.choose(healthy)
            return Plan(model, healthy, only, Reason.SINGLE_CANDIDATE)
        prompt = extract_prompt(messages, input)
        if not prompt:
            return Plan(model, healthy, self.fallback.choose(healthy), Reason.NO_PROMPT)
        tradeoff = self.cost_weights.resolve(request_kwargs, group)
        request = build_route_request(
            requested_model=model,
            prompt=prompt,
            candidates=candidates,
            request_kwargs=request_kwargs,
            cost_weight=tradeoff.cost_weight,
            strong_share=tradeoff.strong_share,
            id_hash_key=self._id_hash_key,
        )
        return Plan(model, healthy, request=request, by_id=by_id)

    def decided(self, plan: Plan) -> Choice:
        """The choice of a plan that needed no call."""
        assert plan.pick is not None and plan.reason is not None
        decision = RoutingDecision(
            requested_model=plan.model,
            deployment_id=deployment_id(plan.pick),
            reason=plan.reason,
            candidates=len(plan.healthy),
            candidate_ids=tuple(deployment_ids(plan.healthy)),
        )
        return Choice(decision, plan.pick)

    def answered(
        self, plan: Plan, response: decision_pb2.RouteResponse, latency_ms: float
    ) -> Choice | None:
        """The service's top-ranked candidate among those ``plan`` offered; None when its
        ranking names none of them."""
        top = next((r for r in response.ranked if r.id in plan.by_id), None)
        if top is None:
            return None
        decision = RoutingDecision(
            requested_model=plan.model,
            deployment_id=top.id,
            reason=Reason.ROUTED,
            candidates=len(plan.by_id),
            decision_id=response.decision_id,
            score=top.score,
            latency_ms=latency_ms,
            service_ms=response.timings.total_ms if response.HasField("timings") else None,
            strategy_name=response.strategy_name,
            selection_reason=response.selection_reason,
            candidate_ids=tuple(plan.by_id),
        )
        return Choice(decision, plan.by_id[top.id])

    def fall_back(
        self,
        plan: Plan,
        reason: Reason,
        *,
        latency_ms: float | None = None,
        error: str = "",
    ) -> Choice:
        """The fallback's pick among the healthy deployments when the service could not be
        used for ``reason``."""
        pick = self.fallback.choose(plan.healthy)
        decision = RoutingDecision(
            requested_model=plan.model,
            deployment_id=deployment_id(pick),
            reason=reason,
            candidates=len(plan.by_id),
            latency_ms=latency_ms,
            error=error,
            candidate_ids=tuple(plan.by_id),
        )
        return Choice(decision, pick)

    def emergency(self, model: str, group: Sequence[Deployment]) -> Choice:
        """The fallback's pick over the whole ``group`` after a bug in the strategy."""
        pick = self.fallback.choose(group)
        decision = RoutingDecision(
            requested_model=model,
            deployment_id=deployment_id(pick),
            reason=Reason.INTERNAL_ERROR,
            candidates=len(group),
            candidate_ids=tuple(deployment_ids(group)),
        )
        return Choice(decision, pick)
