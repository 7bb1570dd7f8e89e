"""Building RouteRequests from LiteLLM messages and deployments."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest

from gateway_client.request import (
    MAX_PROMPT_CHARS,
    build_route_request,
    caller_hashes,
    candidate_for,
    cost_per_million_tokens,
    extract_prompt,
    hash_id,
    model_name_of,
    provider_of,
    request_metadata,
    team_id_of,
)

KEY = b"0123456789abcdef-test-key"


def sha(value: str) -> str:
    """The keyed hash the gateway sends for ``value`` under ``KEY``."""
    return hmac.new(KEY, value.encode(), hashlib.sha256).hexdigest()


# -- prompt ----------------------------------------------------------------------------------


def test_prompt_is_the_last_user_message() -> None:
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "second"},
        {"role": "assistant", "content": "later"},
    ]
    assert extract_prompt(messages) == "second"


def test_prompt_joins_the_text_parts_of_a_content_list() -> None:
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "describe"},
                {"type": "image_url", "image_url": {"url": "data:..."}},
                {"type": "text", "text": "this image"},
            ],
        }
    ]
    assert extract_prompt(messages) == "describe\nthis image"


@pytest.mark.parametrize(
    ("messages", "input", "expected"),
    [
        (None, None, ""),
        ([], None, ""),
        ([{"role": "system", "content": "x"}], None, ""),
        ([{"role": "user", "content": None}], None, ""),
        (None, "embed me", "embed me"),
        (None, ["a", "b", 3], "a\nb"),
        (None, [[1, 2, 3]], ""),
        ([{"role": "user", "content": "chat"}], "ignored", "chat"),
    ],
)
def test_prompt_edge_cases(messages: Any, input: Any, expected: str) -> None:
    assert extract_prompt(messages, input) == expected


def test_prompt_is_capped() -> None:
    text = "x" * (MAX_PROMPT_CHARS + 10)
    assert extract_prompt([{"role": "user", "content": text}]) == "x" * MAX_PROMPT_CHARS
    assert extract_prompt([{"role": "user", "content": "abcdef"}], max_chars=3) == "abc"


# -- candidates ------------------------------------------------------------------------------


def dep(model: str, **info: Any) -> dict[str, Any]:
    return {
        "model_name": "g",
        "litellm_params": {"model": model},
        "model_info": {"id": "d1", **info},
    }


@pytest.mark.parametrize(
    ("deployment", "name", "provider"),
    [
        (dep("openai/gpt-4o-mini"), "gpt-4o-mini", "openai"),
        (dep("gpt-4o"), "gpt-4o", ""),
        (dep("openrouter/anthropic/claude-3-haiku"), "claude-3-haiku", "openrouter"),
        (dep("azure/my-deploy", base_model="azure/gpt-4o"), "azure/gpt-4o", "azure"),
        (
            {
                "litellm_params": {"model": "my-model", "custom_llm_provider": "hosted_vllm"},
                "model_info": {"id": "x"},
            },
            "my-model",
            "hosted_vllm",
        ),
    ],
)
def test_model_name_and_provider(deployment: dict[str, Any], name: str, provider: str) -> None:
    assert model_name_of(deployment) == name
    assert provider_of(deployment) == provider


def test_cost_averages_input_and_output_per_million() -> None:
    deployment = dep("openai/x", input_cost_per_token=1e-6, output_cost_per_token=3e-6)
    assert cost_per_million_tokens(deployment) == pytest.approx(2.0)
    assert cost_per_million_tokens(dep("openai/x", input_cost_per_token=5e-7)) == pytest.approx(0.5)
    assert cost_per_million_tokens(dep("openai/x")) is None
    assert cost_per_million_tokens(dep("openai/x", input_cost_per_token="bad")) is None


def test_cost_from_litellm_params_when_model_info_has_none() -> None:
    deployment = {
        "litellm_params": {"model": "openai/x", "input_cost_per_token": 2e-6},
        "model_info": {"id": "a"},
    }
    assert cost_per_million_tokens(deployment) == pytest.approx(2.0)


def test_candidate_for() -> None:
    candidate = candidate_for(
        dep("openai/gpt-4o-mini", input_cost_per_token=1e-6, output_cost_per_token=1e-6)
    )
    assert candidate is not None
    assert (candidate.id, candidate.model_name, candidate.provider) == (
        "d1",
        "gpt-4o-mini",
        "openai",
    )
    assert candidate.HasField("cost_per_million_tokens")
    assert candidate.cost_per_million_tokens == pytest.approx(1.0)

    unpriced = candidate_for(dep("openai/gpt-4o-mini"))
    assert unpriced is not None and not unpriced.HasField("cost_per_million_tokens")
    assert candidate_for({"litellm_params": {"model": "x"}, "model_info": {}}) is None
    assert candidate_for({"litellm_params": {"model": "x"}}) is None


# -- caller ids ------------------------------------------------------------------------------


def test_hash_id_is_an_hmac_under_the_key() -> None:
    assert hash_id("alice", KEY) == sha("alice")
    assert hash_id(42, KEY) == sha("42")
    # Not the plain digest anyone can recompute from a guessed id.
    assert hash_id("alice", KEY) != hashlib.sha256(b"alice").hexdigest()
    assert hash_id("alice", b"another key 0123") != hash_id("alice", KEY)
    assert hash_id(None, KEY) == ""
    assert hash_id("", KEY) == ""


def test_without_a_key_no_id_is_sent() -> None:
    assert hash_id("alice", None) == ""
    kwargs = {"user": "bob", "metadata": {"user_api_key_team_id": "t"}}
    assert caller_hashes(kwargs, None) == ("", "")


def test_caller_hashes_prefer_the_proxy_keys() -> None:
    kwargs = {
        "user": "openai-user",
        "metadata": {
            "user_api_key_user_id": "u-proxy",
            "user_id": "u-meta",
            "user_api_key_team_id": "t-proxy",
        },
    }
    assert caller_hashes(kwargs, KEY) == (sha("u-proxy"), sha("t-proxy"))
    assert team_id_of(kwargs) == "t-proxy"


def test_caller_hashes_fall_back_to_metadata_then_user() -> None:
    assert caller_hashes({"metadata": {"user_id": "u", "team_id": "t"}}, KEY) == (
        sha("u"),
        sha("t"),
    )
    assert caller_hashes({"user": "bob"}, KEY) == (sha("bob"), "")
    assert caller_hashes({"litellm_metadata": {"user_id": "lm"}}, KEY) == (sha("lm"), "")
    assert caller_hashes(None, KEY) == ("", "")


def test_request_metadata() -> None:
    md: dict[str, Any] = {}
    assert request_metadata({"metadata": md}) is md
    assert request_metadata({"metadata": None, "litellm_metadata": md}) is md
    assert request_metadata({}) is None
    assert request_metadata(None) is None


# -- request ---------------------------------------------------------------------------------


def test_build_route_request() -> None:
    candidates = [c for c in (candidate_for(dep("openai/a")),) if c is not None]
    request = build_route_request(
        requested_model="auto",
        prompt="hello",
        candidates=candidates,
        request_kwargs={"litellm_call_id": "call-1", "metadata": {"user_id": "alice"}},
        cost_weight=0.25,
        id_hash_key=KEY,
    )
    assert request.WhichOneof("features") == "prompt"
    assert request.prompt == "hello"
    assert [c.id for c in request.candidates] == ["d1"]
    assert request.requested_model == "auto"
    assert request.user_id_hash == sha("alice")
    assert "alice" not in request.SerializeToString().decode("latin-1")
    assert request.team_id_hash == ""
    assert request.request_id == "call-1"
    assert request.HasField("cost_weight") and request.cost_weight == 0.25


def test_build_route_request_leaves_cost_weight_and_ids_unset() -> None:
    request = build_route_request(
        requested_model="g",
        prompt="p",
        candidates=[],
        request_kwargs={"metadata": {"user_id": "alice", "team_id": "t"}},
    )
    assert not request.HasField("cost_weight")
    assert (request.user_id_hash, request.team_id_hash) == ("", "")
    assert request.request_id == ""
