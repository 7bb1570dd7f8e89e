"""What the strategy reads from a ``litellm.Router``, across LiteLLM versions.

LiteLLM 1.110 exposes the deployments through ``router.registry()`` and the cooldown store
through ``router.health().cooldowns``; older routers (1.108) have ``get_model_list``,
``get_model_info`` and a ``cooldown_cache`` attribute instead. Both cooldown stores answer
``get_active_cooldowns(model_ids, parent_otel_span)`` and its async twin with
``[(deployment_id, cooldown_value), ...]``.

A group's lookup in the registry costs ~20 us, a fifth of an open-breaker pick's budget, so
:class:`RouterView` keeps each group's answer while the registry's ``version`` (which LiteLLM
raises on every deployment change: ``add_deployment``, ``upsert_deployment``,
``delete_deployment``, ``set_model_list``, routing groups) and its alias map are unchanged.
What can change without a new version is read on every pick: cooldowns, and the blocked flag
and team of each deployment (the cached entries are the registry's live objects).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeGuard

logger = logging.getLogger(__name__)

Deployment = Mapping[str, Any]


def is_mapping(value: object) -> TypeGuard[Mapping[str, Any]]:
    """``isinstance(value, Mapping)``, with the common case (a dict, or a dict subclass such as
    LiteLLM 1.110's registry entries) first: the ABC check costs ~0.5 us and a pick makes dozens
    of them, against a 0.1 ms budget for a static pick."""
    return isinstance(value, (dict, Mapping))


def deployment_id(deployment: Deployment) -> str | None:
    """The deployment's ``model_info.id``, if it has one."""
    info = deployment.get("model_info")
    if not is_mapping(info):
        return None
    value = info.get("id")
    return None if value is None else str(value)


def deployment_ids(deployments: Iterable[Deployment]) -> list[str]:
    """The ids of ``deployments`` that have one, in order."""
    return [i for i in (deployment_id(d) for d in deployments) if i is not None]


def is_blocked(deployment: Deployment) -> bool:
    """Whether an admin paused the deployment (``model_info.blocked``)."""
    info = deployment.get("model_info")
    return is_mapping(info) and info.get("blocked") is True


def usable_by_team(deployment: Deployment, team_id: str | None) -> bool:
    """A team-scoped deployment (``model_info.team_id`` set) serves only that team; any other
    deployment serves everyone (LiteLLM's ``deployment_usable_by_team``)."""
    info = deployment.get("model_info")
    owner = info.get("team_id") if is_mapping(info) else None
    return owner is None or (team_id is not None and str(owner) == team_id)


def _as_deployments(value: object) -> list[Deployment]:
    if type(value) is not list and (
        not isinstance(value, Iterable) or isinstance(value, str | bytes | Mapping)
    ):
        return []
    return [item for item in value if is_mapping(item)]


# Distinct (group, team) lookups kept per registry version; past it the cache starts over, so a
# gateway serving many teams holds a bounded number of lists.
MAX_CACHED_GROUPS = 1024


@dataclass(frozen=True, slots=True)
class _GroupCache:
    """The registry's group lookups, valid for one registry ``version`` and alias map."""

    version: object
    aliases: dict[str, Any]
    groups: dict[tuple[str, str | None], tuple[Deployment, ...]] = field(default_factory=dict)


class RouterView:
    """Read-only access to a router's deployments and cooldowns."""

    def __init__(self, router: Any) -> None:
        self._router = router
        # Bound once: LiteLLM 1.110's Router resolves each attribute read through a Python
        # __getattribute__ (~1 us), and a pick reads both.
        self._registry = getattr(router, "registry", None)
        self._health = getattr(router, "health", None)
        self._has_registry = callable(self._registry)
        self._has_health = callable(self._health)
        self._cache: _GroupCache | None = None

    @property
    def router(self) -> Any:
        return self._router

    def group_deployments(self, model_group: str, team_id: str | None = None) -> list[Deployment]:
        """The deployments serving ``model_group`` (its aliases and routing groups included) to
        ``team_id``, in the router's order. Left out: deployments an admin paused, and
        deployments scoped to another team (the registry lists a team's own deployments first,
        but also lists team-scoped ones to a caller without a team)."""
        if self._has_registry:
            found: Iterable[Deployment] = self._registry_group(model_group, team_id)
        else:
            found = _as_deployments(
                self._router.get_model_list(model_name=model_group, team_id=team_id)
            )
        return [d for d in found if not is_blocked(d) and usable_by_team(d, team_id)]

    def _registry_group(self, model_group: str, team_id: str | None) -> tuple[Deployment, ...]:
        """The registry's answer for the group, from the cache while it is current."""
        registry = self._registry()  # type: ignore[misc]  # callable: checked at __init__
        version = getattr(registry, "version", None)
        if version is None:  # a registry that cannot tell when it changed: ask every time
            return tuple(_as_deployments(registry.deployments(model_group, team_id=team_id)))
        aliases = _alias_map(registry)
        cache = self._cache
        if cache is None or cache.version != version or cache.aliases != aliases:
            cache = self._cache = _GroupCache(version, copy.deepcopy(dict(aliases)))
        key = (model_group, team_id)
        cached = cache.groups.get(key)
        if cached is None:
            cached = tuple(_as_deployments(registry.deployments(model_group, team_id=team_id)))
            if len(cache.groups) >= MAX_CACHED_GROUPS:
                cache.groups.clear()
            cache.groups[key] = cached
        return cached

    def all_deployments(self) -> list[Deployment]:
        if self._has_registry:
            return _as_deployments(self._router.registry().all())
        return _as_deployments(getattr(self._router, "model_list", None))

    def deployment_by_id(self, model_id: str) -> Deployment | None:
        """The deployment whose ``model_info.id`` is ``model_id``."""
        if self._has_registry:
            found = self._router.registry().deployment_dict(model_id)
        else:
            found = self._router.get_model_info(id=model_id)
        return found if isinstance(found, Mapping) else None

    def deployment_by_litellm_model(self, litellm_model: str) -> Deployment | None:
        """The first deployment whose ``litellm_params.model`` is ``litellm_model``
        (what LiteLLM picks for ``specific_deployment=True``)."""
        for deployment in self.all_deployments():
            params = deployment.get("litellm_params")
            if isinstance(params, Mapping) and params.get("model") == litellm_model:
                return deployment
        return None

    # -- cooldowns --------------------------------------------------------------------------

    def _cooldown_store(self) -> Any:
        if self._has_health:
            return self._health().cooldowns  # type: ignore[misc]  # callable: checked at __init__
        return getattr(self._router, "cooldown_cache", None)

    def cooldown_ids(self, model_ids: Sequence[str]) -> frozenset[str]:
        """The ids among ``model_ids`` that are cooling down now. A store that cannot be read
        counts as none cooling down."""
        if not model_ids:
            return frozenset()
        try:
            store = self._cooldown_store()
            if store is None:
                return frozenset()
            active = store.get_active_cooldowns(model_ids=list(model_ids), parent_otel_span=None)
        except Exception:
            logger.warning(
                "could not read deployment cooldowns; using every deployment", exc_info=True
            )
            return frozenset()
        return _active_ids(active)

    async def async_cooldown_ids(self, model_ids: Sequence[str]) -> frozenset[str]:
        """``cooldown_ids`` without blocking the event loop (a Redis-backed store is read async)."""
        if not model_ids:
            return frozenset()
        try:
            store = self._cooldown_store()
            if store is None:
                return frozenset()
            active = await store.async_get_active_cooldowns(
                model_ids=list(model_ids), parent_otel_span=None
            )
        except Exception:
            logger.warning(
                "could not read deployment cooldowns; using every deployment", exc_info=True
            )
            return frozenset()
        return _active_ids(active)


def _alias_map(registry: Any) -> Mapping[str, Any]:
    """The router's ``model_group_alias`` (changing it resolves names to other groups without a
    new registry version)."""
    aliases = getattr(registry, "aliases", None)
    found = aliases() if callable(aliases) else None
    return found if is_mapping(found) else {}


def _active_ids(active: object) -> frozenset[str]:
    if not isinstance(active, Iterable):
        return frozenset()
    ids: set[str] = set()
    for entry in active:
        if isinstance(entry, tuple) and entry:
            ids.add(str(entry[0]))
        elif isinstance(entry, str):
            ids.add(entry)
    return frozenset(ids)
