"""Building a ``RouteRequest`` from a LiteLLM call: pure functions, no LiteLLM import."""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from routeiq.decision.v1 import decision_pb2

from .router_view import Deployment, deployment_id

# The service embeds at most a few hundred tokens; sending megabytes of prompt only costs time.
MAX_PROMPT_CHARS = 16_384

_USER_KEYS = ("user_api_key_user_id", "user_id")
_TEAM_KEYS = ("user_api_key_team_id", "team_id")


def _text_of(content: object) -> str:
    """The text of a message's content: a string, or the text parts of a content list."""
    if isinstance(content, str):
        return content
    if isinstance(content, Iterable) and not isinstance(content, bytes | Mapping):
        parts: list[str] = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, Mapping) and part.get("type", "text") == "text":
                text = part.get("text")
                if isinstance(text, str):
                    parts.append(text)
        return "\n".join(p for p in parts if p)
    return ""


def extract_prompt(
    messages: Sequence[Mapping[str, Any]] | None,
    input: object = None,
    *,
    max_chars: int = MAX_PROMPT_CHARS,
) -> str:
    """The text to route on: the last user message's text; for an embedding call, its string
    input(s). At most ``max_chars`` characters (the start is kept)."""
    prompt = ""
    if messages:
        for message in reversed(messages):
            if isinstance(message, Mapping) and message.get("role") == "user":
                prompt = _text_of(message.get("content"))
                break
    if not prompt and input is not None:
        if isinstance(input, str):
            prompt = input
        elif isinstance(input, Iterable) and not isinstance(input, bytes | Mapping):
            prompt = "\n".join(item for item in input if isinstance(item, str))
    return prompt[:max_chars]


def _params(deployment: Deployment, section: str) -> Mapping[str, Any]:
    value = deployment.get(section)
    # The exact-dict check first: an ABC isinstance check costs several times more.
    return value if type(value) is dict or isinstance(value, Mapping) else {}


def model_name_of(deployment: Deployment) -> str:
    """``model_info.base_model`` when set, else ``litellm_params.model`` after its last '/'."""
    base = _params(deployment, "model_info").get("base_model")
    if isinstance(base, str) and base:
        return base
    model = _params(deployment, "litellm_params").get("model")
    return model.rsplit("/", 1)[-1] if isinstance(model, str) else ""


def provider_of(deployment: Deployment) -> str:
    """``litellm_params.custom_llm_provider``, else the prefix of ``litellm_params.model``
    before its first '/', else ""."""
    params = _params(deployment, "litellm_params")
    custom = params.get("custom_llm_provider")
    if isinstance(custom, str) and custom:
        return custom
    model = params.get("model")
    if isinstance(model, str) and "/" in model:
        return model.split("/", 1)[0]
    return ""


def _price(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        price = float(value)
    except ValueError:
        return None
    return price if math.isfinite(price) and price >= 0 else None


def average_per_million(params: Mapping[str, Any]) -> float | None:
    """USD per million tokens from ``params``' ``input_cost_per_token`` and
    ``output_cost_per_token``, averaged (either alone when only one is valid); None for neither."""
    prices = [
        p
        for p in (
            _price(params.get("input_cost_per_token")),
            _price(params.get("output_cost_per_token")),
        )
        if p is not None
    ]
    return sum(prices) / len(prices) * 1_000_000 if prices else None


def cost_per_million_tokens(deployment: Deployment) -> float | None:
    """USD per million tokens, input and output prices per token averaged (either alone when
    only one is set), from ``model_info`` or else ``litellm_params``; None when neither sets one."""
    for section in ("model_info", "litellm_params"):
        price = average_per_million(_params(deployment, section))
        if price is not None:
            return price
    return None


def candidate_for(
    deployment: Deployment,
    price_of: Callable[[Deployment], float | None] = cost_per_million_tokens,
) -> decision_pb2.Candidate | None:
    """The deployment as a ``Candidate`` priced by ``price_of`` (default: its explicit price
    only); None when it has no ``model_info.id``."""
    model_id = deployment_id(deployment)
    if not model_id:
        return None
    candidate = decision_pb2.Candidate(
        id=model_id, model_name=model_name_of(deployment), provider=provider_of(deployment)
    )
    cost = price_of(deployment)
    if cost is not None:
        candidate.cost_per_million_tokens = cost
    return candidate


def hash_id(value: object, key: bytes | None) -> str:
    """The HMAC-SHA256 (hex) of an id under ``key``; "" for no id, and "" for every id without
    a key: a plain digest of a guessable id (an email, a sequential team id) is reversed by
    hashing the guesses, so without a key nothing about the caller leaves the gateway."""
    if key is None or value is None or value == "":
        return ""
    return hmac.new(key, str(value).encode("utf-8"), hashlib.sha256).hexdigest()


def request_metadata(request_kwargs: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The request's metadata dict (``metadata``, else ``litellm_metadata``), if it has one."""
    if not request_kwargs:
        return None
    for key in ("metadata", "litellm_metadata"):
        value = request_kwargs.get(key)
        if isinstance(value, dict):
            return value
    return None


def _first(mapping: Mapping[str, Any], keys: Sequence[str]) -> object:
    for key in keys:
        value = mapping.get(key)
        if value not in (None, ""):
            return value
    return None


def team_id_of(request_kwargs: Mapping[str, Any] | None) -> str | None:
    """The caller's team id (the proxy's ``user_api_key_team_id`` or ``team_id`` metadata)."""
    team = _first(request_metadata(request_kwargs) or {}, _TEAM_KEYS)
    return None if team is None else str(team)


def caller_hashes(request_kwargs: Mapping[str, Any] | None, key: bytes | None) -> tuple[str, str]:
    """(user id hash, team id hash) under ``key`` (see :func:`hash_id`). The user is the proxy's
    ``user_api_key_user_id``, else ``metadata.user_id``, else the OpenAI ``user`` argument."""
    if key is None:
        return "", ""
    metadata = request_metadata(request_kwargs) or {}
    user = _first(metadata, _USER_KEYS)
    if user is None and request_kwargs:
        user = request_kwargs.get("user") or None
    return hash_id(user, key), hash_id(team_id_of(request_kwargs), key)


def request_id_of(request_kwargs: Mapping[str, Any] | None) -> str:
    if not request_kwargs:
        return ""
    for key in ("litellm_call_id", "litellm_trace_id"):
        value = request_kwargs.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def build_route_request(
    *,
    requested_model: str,
    prompt: str,
    candidates: Sequence[decision_pb2.Candidate],
    request_kwargs: Mapping[str, Any] | None = None,
    cost_weight: float | None = None,
    id_hash_key: bytes | None = None,
    strong_share: float | None = None,
) -> decision_pb2.RouteRequest:
    """The ``RouteRequest`` for one call; caller ids are sent only as HMACs under
    ``id_hash_key``, and not at all without one. At most one of ``cost_weight`` and
    ``strong_share`` may be given (the service refuses both)."""
    if cost_weight is not None and strong_share is not None:
        raise ValueError("send one of cost_weight and strong_share, not both")
    user_hash, team_hash = caller_hashes(request_kwargs, id_hash_key)
    request = decision_pb2.RouteRequest(
        prompt=prompt,
        candidates=candidates,
        requested_model=requested_model,
        user_id_hash=user_hash,
        team_id_hash=team_hash,
        request_id=request_id_of(request_kwargs),
    )
    if cost_weight is not None:
        request.cost_weight = cost_weight
    if strong_share is not None:
        request.strong_share = strong_share
    return request
