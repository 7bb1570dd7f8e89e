"""The price the service is told for a deployment: its own, else LiteLLM's model catalogue.

A deployment's explicit ``input_cost_per_token``/``output_cost_per_token`` (``model_info``, else
``litellm_params``) always win: they are what the operator bills with. A deployment without
them is priced from ``litellm.model_cost``, the catalogue LiteLLM itself uses for spend
tracking, so a plain ``model: openai/gpt-4o`` entry is priced the way LiteLLM prices it rather
than left to the bundle's training-time price.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .request import Deployment, average_per_million, cost_per_million_tokens

PriceOf = Callable[[Deployment], float | None]


def catalog_keys(deployment: Deployment) -> list[str]:
    """The ``litellm.model_cost`` keys tried, in order: ``model_info.base_model`` (how LiteLLM
    prices an Azure deployment too), ``litellm_params.model`` as written, then that model
    without its provider prefix (the catalogue keys most OpenAI models bare)."""
    keys: list[str] = []
    info = deployment.get("model_info")
    if isinstance(info, Mapping):
        base = info.get("base_model")
        if isinstance(base, str) and base:
            keys.append(base)
    params = deployment.get("litellm_params")
    model = params.get("model") if isinstance(params, Mapping) else None
    if isinstance(model, str) and model:
        keys.append(model)
        if "/" in model:
            keys.append(model.split("/", 1)[1])
    return keys


def catalog_cost_per_million_tokens(
    deployment: Deployment, catalog: Mapping[str, Any] | None = None
) -> float | None:
    """USD per million tokens from ``catalog`` (default: ``litellm.model_cost``, read at each
    call because LiteLLM may replace it), averaged like an explicit price; None when no key
    matches a priced entry."""
    if catalog is None:
        import litellm  # loaded already: the strategy subclasses a LiteLLM type

        catalog = litellm.model_cost
    for key in catalog_keys(deployment):
        entry = catalog.get(key)
        if isinstance(entry, Mapping):
            price = average_per_million(entry)
            if price is not None:
                return price
    return None


def explicit_then_catalog(deployment: Deployment) -> float | None:
    """The deployment's own price, else the catalogue's."""
    price = cost_per_million_tokens(deployment)
    return price if price is not None else catalog_cost_per_million_tokens(deployment)


def price_function(use_catalog: bool) -> PriceOf:
    """How a gateway with ``litellm_prices`` set (or not) prices a deployment."""
    return explicit_then_catalog if use_catalog else cost_per_million_tokens
