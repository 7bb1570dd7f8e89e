"""The LiteLLM deployment group the gateway integration tests route over (mock responses only)."""

from __future__ import annotations

from typing import Any

GROUP = "chat"
IDS = ["dep-mini", "dep-4o", "dep-haiku"]
MODEL_LIST: list[dict[str, Any]] = [
    {
        "model_name": GROUP,
        "litellm_params": {"model": model, "mock_response": f"from {id}", "api_key": "x"},
        "model_info": {"id": id},
    }
    for id, model in zip(
        IDS, ["openai/gpt-4o-mini", "openai/gpt-4o", "anthropic/claude-3-haiku"], strict=True
    )
]
MESSAGES = [{"role": "user", "content": "Prove that there are infinitely many primes."}]
