"""Configuration of the gateway client, read from ``ROUTEIQ_GATEWAY_*`` environment variables.

Precedence: an explicit constructor argument beats the environment, which beats the default.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

FallbackPolicyName = Literal["ordered", "weighted_shuffle", "cheapest"]


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
            "litellm_params.weight or model_info.weight (default 1), like LiteLLM's "
            "simple-shuffle; "
            "'cheapest' takes the deployment with the lowest input+output price per token "
            "(model_info, else litellm_params; unpriced deployments last, ties in group order)."
        ),
    )
    cost_weight: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description=(
            "Price sensitivity sent with every Route call (RouteRequest.cost_weight, in [0, 1]: "
            "the predicted quality a candidate must gain to be worth each doubling of price; 0 "
            "ranks by quality alone). The gateway-wide default: a request's, its key's or "
            "team's metadata routeiq.cost_weight, or its group's model_info routeiq.cost_weight, "
            "win over it (see docs/operations.md). Unset lets the service use its bundle's "
            "default."
        ),
    )
    strong_share: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description=(
            "Instead of cost_weight: the share of calls (0..1) to send at most to the bundle's "
            "strong model (RouteRequest.strong_share; the service turns it into a cost weight "
            "with the bundle's calibration table). The gateway-wide default, with the same "
            "precedence: a request's, key's, team's or group's routeiq.strong_share or "
            "routeiq.cost_weight wins over it. Set at most one of cost_weight and strong_share."
        ),
    )
    allow_request_cost_weight: bool = Field(
        default=True,
        description=(
            "Honour the caller's own request metadata routeiq.cost_weight and "
            "routeiq.strong_share. False leaves the "
            "trade-off to the key, team, group and gateway settings, so callers of a shared "
            "proxy cannot buy quality past what their team was given."
        ),
    )
    litellm_prices: bool = Field(
        default=True,
        description=(
            "Price a deployment that sets no input_cost_per_token/output_cost_per_token "
            "(model_info, else litellm_params) from litellm.model_cost, looked up by "
            "model_info.base_model, litellm_params.model, then that model without its provider "
            "prefix. False sends such deployments unpriced (the service uses its bundle's price "
            "for the model, if any)."
        ),
    )
    id_hash_key: SecretStr | None = Field(
        default=None,
        min_length=16,
        description=(
            "Key of the HMAC-SHA256 that turns user and team ids into RouteRequest.user_id_hash "
            "and team_id_hash (hex), so the service and its logs never see a raw id and nobody "
            "without the key can test guesses against a hash. At least 16 characters; keep it "
            "the same across gateway replicas and restarts so a user keeps one hash. Unset: no "
            "id is sent at all (both hashes empty), and a traffic split keys on the request id "
            "instead of the user."
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

    keepalive_time_ms: int = Field(
        default=30_000,
        ge=10_000,
        description=(
            "Interval of HTTP/2 keepalive pings while calls are in flight. At least 10 s: the "
            "decision service accepts pings no more often (its "
            "grpc.http2.min_ping_interval_without_data_ms) and closes a connection that pings "
            "faster."
        ),
    )
    keepalive_timeout_ms: int = Field(
        default=5_000,
        ge=100,
        description="How long a keepalive ping may go unanswered before the connection is dropped.",
    )
    retry_max_attempts: int = Field(
        default=3,
        ge=1,
        le=5,
        description=(
            "Route calls made in all for one pick when an attempt ends UNAVAILABLE (the "
            "connection or the pod went away), all within the one deadline_ms; 1 turns the "
            "retry policy off (gRPC's transparent retry of calls the server never saw stays on). "
            "gRPC caps it at 5."
        ),
    )
    retry_initial_backoff_ms: float = Field(
        default=5.0,
        gt=0,
        description=(
            "Upper bound of the random wait before the first retry; doubled for each further "
            "retry up to retry_max_backoff_ms."
        ),
    )
    retry_max_backoff_ms: float = Field(
        default=20.0, gt=0, description="Upper bound of the random wait before any retry."
    )
    tls: bool = Field(
        default=False,
        description=(
            "Connect over TLS. Implied when tls_ca_file or a client certificate is set; without "
            "tls_ca_file the system roots verify the server."
        ),
    )
    tls_ca_file: Path | None = Field(
        default=None, description="PEM file of the CA(s) that signed the service's certificate."
    )
    tls_cert_file: Path | None = Field(
        default=None, description="PEM client certificate for mutual TLS (with tls_key_file)."
    )
    tls_key_file: Path | None = Field(default=None, description="PEM private key of tls_cert_file.")
    tls_server_name: str | None = Field(
        default=None,
        description=(
            "Name to verify the service's certificate against when it differs from the target's "
            "host (grpc.ssl_target_name_override)."
        ),
    )
    record_outcomes: bool = Field(
        default=False,
        description=(
            "Also send each request's outcome to DecisionService.RecordOutcome, off the request "
            "path through a bounded queue (the OTel span event is always emitted)."
        ),
    )
    outcome_queue_size: int = Field(
        default=10_000,
        ge=1,
        description="Outcomes waiting to be sent; when full, new ones are dropped and counted.",
    )
    outcome_deadline_ms: float = Field(
        default=1_000.0, gt=0, description="Deadline of one RecordOutcome call."
    )
    metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description=(
            "Port on which the LiteLLM proxy hook (gateway_client.proxy.handler) serves the "
            "process's Prometheus registry at /metrics, from proxy startup; unset serves "
            "nothing. Only the proxy hook reads it: install() opens no port."
        ),
    )

    @model_validator(mode="after")
    def _check_tls(self) -> GatewayClientSettings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file must be set together")
        if self.cost_weight is not None and self.strong_share is not None:
            raise ValueError(
                "set one of cost_weight and strong_share: the service takes one trade-off"
            )
        return self

    @property
    def uses_tls(self) -> bool:
        """Whether the channel is a TLS channel."""
        return self.tls or self.tls_ca_file is not None or self.tls_cert_file is not None

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
