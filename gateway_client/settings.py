"""Configuration of the gateway client, read from ``ROUTEIQ_GATEWAY_*`` environment variables.

Precedence: an explicit constructor argument beats the environment, which beats the default.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

FallbackPolicyName = Literal["ordered", "weighted_shuffle"]


class GatewayClientSettings(BaseSettings):
    """Everything the LiteLLM routing strategy needs to reach the decision service."""

    model_config = SettingsConfigDict(
        env_prefix="ROUTEIQ_GATEWAY_",
        extra="ignore",
        frozen=True,
    )

    target: str = Field(
        default="127.0.0.1:50051",
        min_length=1,
        description=(
            "gRPC target of the decision service: 'host:port', or 'dns:///host:port' to resolve "
            "every address of the name and balance calls over them round-robin."
        ),
    )
    deadline_ms: float = Field(
        default=50.0,
        gt=0,
        description=(
            "Deadline of one Route call in milliseconds. A call that misses it counts as a "
            "failure and the request is served by the static fallback."
        ),
    )
    breaker_failure_threshold: int = Field(
        default=5,
        ge=1,
        description="Consecutive failed Route calls that open the circuit breaker.",
    )
    breaker_cooldown_s: float = Field(
        default=60.0,
        gt=0,
        description=(
            "Seconds the breaker stays open before letting one probe call through (half-open)."
        ),
    )
    fallback_policy: FallbackPolicyName = Field(
        default="weighted_shuffle",
        description=(
            "How a deployment is picked without the service: 'ordered' takes the first healthy "
            "deployment of the group, 'weighted_shuffle' draws one at random weighted by "
            "litellm_params.weight or model_info.weight (default 1), like LiteLLM's simple-shuffle."
        ),
    )
    cost_weight: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description=(
            "Price sensitivity sent with every Route call (RouteRequest.cost_weight, in [0, 1]); "
            "unset lets the service use its bundle's default."
        ),
    )
    routing_groups: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description=(
            "Model groups routed by the decision service; any other group is served by the "
            "static fallback policy without a call. Empty routes every group. From the "
            "environment: a JSON list or a comma-separated string."
        ),
    )

    @field_validator("routing_groups", mode="before")
    @classmethod
    def _parse_routing_groups(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if not text:
                return []
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @property
    def deadline_s(self) -> float:
        """The Route deadline in seconds."""
        return self.deadline_ms / 1000.0

    def routes_group(self, model_group: str) -> bool:
        """Whether requests for ``model_group`` are sent to the decision service."""
        return not self.routing_groups or model_group in self.routing_groups
