"""Which price/quality trade-off a pick sends: ``RouteRequest.cost_weight`` or ``strong_share``.

Two keys, under ``routeiq``: ``cost_weight`` (the raw price sensitivity) and
``strong_share`` (the share of calls, 0..1, to send at most to the bundle's strong model,
which the service turns into a weight with the bundle's calibration table). The most
specific source that sets a valid value of either wins:

1. the request's own metadata (``metadata={"routeiq": {"strong_share": 0.2}}``), unless
   ``allow_request_cost_weight`` is off;
2. the proxy virtual key's metadata (the proxy hands it to the router as
   ``metadata.user_api_key_metadata``);
3. the team's metadata (``metadata.user_api_key_team_metadata``);
4. the model group's: the first of its deployments, in the router's order, whose ``model_info``
   sets either key;
5. the gateway's ``cost_weight`` or ``strong_share`` setting (at most one may be set);

and with none of them both fields are left unset, so the service uses its own default. A
source that sets both valid keys sends its ``cost_weight`` (the service takes only one);
its ``strong_share`` is then ignored like an invalid one. The proxy strips
``user_api_key_*`` keys a caller puts in its own metadata before filling them in, so 2 and 3
are what an admin set, not what a caller claims.

A value that is not a number in [0, 1] (a string that parses as one counts) is ignored: the
next source decides, the request is still routed, and the miss is logged (once per source and
value, so a bad team setting does not flood the log) and counted in
``routeiq_gateway_cost_weight_ignored_total{source}`` or
``routeiq_gateway_strong_share_ignored_total{source}``. Refusing the request instead would
turn an admin's typo into an outage for a whole team.
"""

from __future__ import annotations

import enum
import logging
import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import REGISTRY, Counter

from .request import request_metadata
from .router_view import Deployment, is_mapping
from .settings import GatewayClientSettings

logger = logging.getLogger(__name__)

SECTION = "routeiq"
FIELD = "cost_weight"
SHARE_FIELD = "strong_share"
_KEY_METADATA = "user_api_key_metadata"
_TEAM_METADATA = "user_api_key_team_metadata"
_MAX_WARNED = 1_000  # distinct bad values remembered for log de-duplication


class Source(enum.StrEnum):
    REQUEST = "request"
    KEY = "key"
    TEAM = "team"
    GROUP = "group"


@dataclass(frozen=True)
class Tradeoff:
    """What a Route call sends: at most one of the two fields; neither: the service default."""

    cost_weight: float | None = None
    strong_share: float | None = None


def parse_unit(value: object, field: str = FIELD) -> float:
    """``value`` as a number in [0, 1]; ValueError (naming ``field``) otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{field} must be a number in [0, 1], not {type(value).__name__}")
    number = float(value)  # ValueError for a string that is no number
    if not (math.isfinite(number) and 0.0 <= number <= 1.0):
        raise ValueError(f"{field} must be within [0, 1], not {value!r}")
    return number


def parse_cost_weight(value: object) -> float:
    """``value`` as a cost weight; ValueError unless it is a finite number in [0, 1]."""
    return parse_unit(value, FIELD)


def _section(holder: object) -> Mapping[str, Any] | None:
    """``holder["routeiq"]`` when it is a mapping, else None."""
    if not is_mapping(holder):
        return None
    section = holder.get(SECTION)
    return section if is_mapping(section) else None


def _counter(name: str, what: str) -> Counter:
    return Counter(
        name,
        f"{what} settings ignored because they were not a number in [0, 1], by source "
        "(request, key, team, group).",
        ["source"],
        registry=REGISTRY,
    )


_ignored: dict[str, Counter] = {}
_ignored_lock = threading.Lock()


def ignored_counter(field: str = FIELD) -> Counter:
    """``routeiq_gateway_<field>_ignored_total{source}`` on the default registry."""
    with _ignored_lock:
        if field not in _ignored:
            _ignored[field] = _counter(f"routeiq_gateway_{field}_ignored_total", field)
        return _ignored[field]


class CostWeights:
    """Resolves the trade-off of each pick (see the module docstring)."""

    def __init__(
        self,
        default: float | None = None,
        *,
        default_share: float | None = None,
        allow_request: bool = True,
        ignored: Counter | None = None,
        ignored_shares: Counter | None = None,
    ) -> None:
        if default is not None and default_share is not None:
            raise ValueError("set one of cost_weight and strong_share as the gateway default")
        self.default = Tradeoff(cost_weight=default, strong_share=default_share)
        self.allow_request = allow_request
        self._ignored = {
            FIELD: ignored if ignored is not None else ignored_counter(FIELD),
            SHARE_FIELD: (
                ignored_shares if ignored_shares is not None else ignored_counter(SHARE_FIELD)
            ),
        }
        self._warned: set[tuple[Source, str, str]] = set()
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: GatewayClientSettings) -> CostWeights:
        return cls(
            settings.cost_weight,
            default_share=settings.strong_share,
            allow_request=settings.allow_request_cost_weight,
        )

    def resolve(
        self, request_kwargs: Mapping[str, Any] | None, group: Sequence[Deployment]
    ) -> Tradeoff:
        """The trade-off for a request to a group of ``group`` deployments."""
        metadata = request_metadata(request_kwargs)
        if metadata:
            holders: list[tuple[Source, object]] = []
            if self.allow_request:
                holders.append((Source.REQUEST, metadata))
            holders.append((Source.KEY, metadata.get(_KEY_METADATA)))
            holders.append((Source.TEAM, metadata.get(_TEAM_METADATA)))
            for source, holder in holders:
                chosen = self._from(source, _section(holder))
                if chosen is not None:
                    return chosen
        for deployment in group:
            section = _section(deployment.get("model_info"))
            if section is not None and (FIELD in section or SHARE_FIELD in section):
                # The group's setting is the first one found, valid or not.
                return self._from(Source.GROUP, section) or self.default
        return self.default

    def _from(self, source: Source, section: Mapping[str, Any] | None) -> Tradeoff | None:
        """The valid trade-off ``section`` sets, else None (the next source decides)."""
        if section is None:
            return None
        weight = self._valid(source, FIELD, section.get(FIELD))
        share = self._valid(source, SHARE_FIELD, section.get(SHARE_FIELD))
        if weight is not None:
            if share is not None:
                self._ignore(source, SHARE_FIELD, share, "cost_weight is set beside it")
            return Tradeoff(cost_weight=weight)
        return Tradeoff(strong_share=share) if share is not None else None

    def _valid(self, source: Source, field: str, raw: object) -> float | None:
        if raw is None:
            return None
        try:
            return parse_unit(raw, field)
        except ValueError as error:
            self._ignore(source, field, raw, str(error))
            return None

    def _ignore(self, source: Source, field: str, raw: object, why: str) -> None:
        self._ignored[field].labels(source=source.value).inc()
        key = (source, field, repr(raw)[:100])
        with self._lock:
            first = key not in self._warned and len(self._warned) < _MAX_WARNED
            if first:
                self._warned.add(key)
        if first:
            logger.warning("ignoring the %s's routeiq.%s %r: %s", source, field, raw, why)
