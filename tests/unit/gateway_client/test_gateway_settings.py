"""GatewayClientSettings: defaults, environment, precedence, validation."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway_client.settings import GatewayClientSettings

_ENV = [
    "TARGET",
    "DEADLINE_MS",
    "BREAKER_FAILURE_THRESHOLD",
    "BREAKER_COOLDOWN_S",
    "FALLBACK_POLICY",
    "COST_WEIGHT",
    "ROUTING_GROUPS",
    "METRICS_PORT",
    "ID_HASH_KEY",
    "RETRY_MAX_ATTEMPTS",
    "ALLOW_REQUEST_COST_WEIGHT",
    "LITELLM_PRICES",
]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _ENV:
        monkeypatch.delenv(f"ROUTEIQ_GATEWAY_{name}", raising=False)


def test_defaults() -> None:
    s = GatewayClientSettings()
    assert s.target == "127.0.0.1:50051"
    assert s.deadline_ms == 50
    assert s.deadline_s == pytest.approx(0.05)
    assert s.breaker_failure_threshold == 5
    assert s.breaker_cooldown_s == 60.0
    assert s.fallback_policy == "weighted_shuffle"
    assert s.cost_weight is None
    assert s.routing_groups == []
    assert s.routes_group("anything")
    assert s.metrics_port is None
    assert s.id_hash_key is None  # no key: no caller id is sent
    assert s.retry_max_attempts == 3
    assert s.allow_request_cost_weight and s.litellm_prices


def test_the_id_hash_key_is_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROUTEIQ_GATEWAY_ID_HASH_KEY", "a-long-enough-secret")
    s = GatewayClientSettings()
    assert s.id_hash_key is not None
    assert s.id_hash_key.get_secret_value() == "a-long-enough-secret"
    assert "a-long-enough-secret" not in repr(s)


def test_every_field_is_documented() -> None:
    for name, info in GatewayClientSettings.model_fields.items():
        assert info.description, name


def test_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROUTEIQ_GATEWAY_TARGET", "dns:///routeiq:50051")
    monkeypatch.setenv("ROUTEIQ_GATEWAY_DEADLINE_MS", "25")
    monkeypatch.setenv("ROUTEIQ_GATEWAY_BREAKER_FAILURE_THRESHOLD", "3")
    monkeypatch.setenv("ROUTEIQ_GATEWAY_BREAKER_COOLDOWN_S", "0.5")
    monkeypatch.setenv("ROUTEIQ_GATEWAY_FALLBACK_POLICY", "ordered")
    monkeypatch.setenv("ROUTEIQ_GATEWAY_COST_WEIGHT", "0.3")
    monkeypatch.setenv("ROUTEIQ_GATEWAY_ROUTING_GROUPS", "auto, gpt-4o")
    monkeypatch.setenv("ROUTEIQ_GATEWAY_METRICS_PORT", "9465")
    s = GatewayClientSettings()
    assert s.target == "dns:///routeiq:50051"
    assert s.deadline_ms == 25
    assert s.breaker_failure_threshold == 3
    assert s.breaker_cooldown_s == 0.5
    assert s.fallback_policy == "ordered"
    assert s.cost_weight == 0.3
    assert s.routing_groups == ["auto", "gpt-4o"]
    assert s.routes_group("auto") and not s.routes_group("claude")
    assert s.metrics_port == 9465


def test_routing_groups_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROUTEIQ_GATEWAY_ROUTING_GROUPS", '["a", "b"]')
    assert GatewayClientSettings().routing_groups == ["a", "b"]
    monkeypatch.setenv("ROUTEIQ_GATEWAY_ROUTING_GROUPS", "")
    assert GatewayClientSettings().routing_groups == []


def test_explicit_argument_beats_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROUTEIQ_GATEWAY_DEADLINE_MS", "25")
    monkeypatch.setenv("ROUTEIQ_GATEWAY_TARGET", "env:1")
    s = GatewayClientSettings(deadline_ms=80)
    assert s.deadline_ms == 80
    assert s.target == "env:1"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"deadline_ms": 0},
        {"breaker_failure_threshold": 0},
        {"breaker_cooldown_s": 0},
        {"fallback_policy": "random"},
        {"cost_weight": 1.5},
        {"cost_weight": -0.1},
        {"target": ""},
        {"metrics_port": 0},
        {"metrics_port": 65536},
        {"id_hash_key": "too-short"},
        {"retry_max_attempts": 0},
        {"retry_max_attempts": 6},
        {"retry_initial_backoff_ms": 0},
        # Below the service's 10 s minimum ping interval: it would close the connection.
        {"keepalive_time_ms": 5_000},
    ],
)
def test_validation(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        GatewayClientSettings(**kwargs)  # type: ignore[arg-type]
