"""Which price sensitivity (``RouteRequest.cost_weight``) a pick sends.

The most specific valid value wins, each under the key ``routeiq`` → ``cost_weight``:

1. the request's own metadata (``metadata={"routeiq": {"cost_weight": 0.5}}``), unless
   ``allow_request_cost_weight`` is off;
2. the proxy virtual key's metadata (the proxy hands it to the router as
   ``metadata.user_api_key_metadata``);
3. the team's metadata (``metadata.user_api_key_team_metadata``);
4. the model group's: the first of its deployments, in the router's order, whose ``model_info``
   sets it;
5. the gateway's ``cost_weight`` setting;

and with none of them the field is left unset, so the service uses its bundle's default. The
proxy strips ``user_api_key_*`` keys a caller puts in its own metadata before filling them in,
so 2 and 3 are what an admin set, not what a caller claims.

A value that is not a number in [0, 1] (a string that parses as one counts) is ignored: the
next source decides, the request is still routed, and the miss is logged (once per source and
value, so a bad team setting does not flood the log) and counted in
``routeiq_gateway_cost_weight_ignored_total{source}``. Refusing the request instead would turn
an admin's typo into an outage for a whole team.
"""

from __future__ import annotations

import enum
import logging
import math
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from prometheus_client import REGISTRY, Counter

from .request import request_metadata
from .router_view import Deployment, is_mapping
from .settings import GatewayClientSettings

logger = logging.getLogger(__name__)

SECTION = "routeiq"
FIELD = "cost_weight"
_KEY_METADATA = "user_api_key_metadata"
_TEAM_METADATA = "user_api_key_team_metadata"
_MAX_WARNED = 1_000  # distinct bad values remembered for log de-duplication


class Source(enum.StrEnum):
    REQUEST = "request"
    KEY = "key"
    TEAM = "team"
    GROUP = "group"


def parse_cost_weight(value: object) -> float:
    """``value`` as a cost weight; ValueError unless it is a finite number in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"cost_weight must be a number in [0, 1], not {type(value).__name__}")
    weight = float(value)  # ValueError for a string that is no number
    if not (math.isfinite(weight) and 0.0 <= weight <= 1.0):
        raise ValueError(f"cost_weight must be within [0, 1], not {value!r}")
    return weight


def _setting(holder: object) -> object:
    """``holder["routeiq"]["cost_weight"]`` when both levels are there, else None."""
    if not is_mapping(holder):
        return None
    section = holder.get(SECTION)
    return section.get(FIELD) if is_mapping(section) else None


_ignored: Counter | None = None
_ignored_lock = threading.Lock()


def ignored_counter() -> Counter:
    """``routeiq_gateway_cost_weight_ignored_total{source}`` on the default registry."""
    global _ignored
    with _ignored_lock:
        if _ignored is None:
            _ignored = Counter(
                "routeiq_gateway_cost_weight_ignored_total",
                "cost_weight settings ignored because they were not a number in [0, 1], by "
                "source (request, key, team, group).",
                ["source"],
                registry=REGISTRY,
            )
        return _ignored


class CostWeights:
    """Resolves the cost weight of each pick (see the module docstring)."""

    def __init__(
        self,
        default: float | None = None,
        *,
        allow_request: bool = True,
        ignored: Counter | None = None,
    ) -> None:
        self.default = default
        self.allow_request = allow_request
        self._ignored = ignored if ignored is not None else ignored_counter()
        self._warned: set[tuple[Source, str]] = set()
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: GatewayClientSettings) -> CostWeights:
        return cls(settings.cost_weight, allow_request=settings.allow_request_cost_weight)

    def resolve(
        self, request_kwargs: Mapping[str, Any] | None, group: Sequence[Deployment]
    ) -> float | None:
        """The cost weight for a request to a group of ``group`` deployments; None: unset."""
        metadata = request_metadata(request_kwargs)
        if metadata:
            candidates: list[tuple[Source, object]] = []
            if self.allow_request:
                candidates.append((Source.REQUEST, _setting(metadata)))
            candidates.append((Source.KEY, _setting(metadata.get(_KEY_METADATA))))
            candidates.append((Source.TEAM, _setting(metadata.get(_TEAM_METADATA))))
            for source, raw in candidates:
                weight = self._valid(source, raw)
                if weight is not None:
                    return weight
        for deployment in group:
            raw = _setting(deployment.get("model_info"))
            if raw is not None:
                weight = self._valid(Source.GROUP, raw)
                if weight is not None:
                    return weight
                break  # the group's setting is the first one found, valid or not
        return self.default

    def _valid(self, source: Source, raw: object) -> float | None:
        if raw is None:
            return None
        try:
            return parse_cost_weight(raw)
        except ValueError as error:
            self._ignored.labels(source=source.value).inc()
            key = (source, repr(raw)[:100])
            with self._lock:
                first = key not in self._warned and len(self._warned) < _MAX_WARNED
                if first:
                    self._warned.add(key)
            if first:
                logger.warning("ignoring the %s's routeiq.cost_weight %r: %s", source, raw, error)
            return None
