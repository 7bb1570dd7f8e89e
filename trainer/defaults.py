"""Defaults the CLI needs before it imports anything heavy (no numpy, no torch here)."""

from __future__ import annotations

# The encoder variants `trainer build` can serve, and the default: per-channel int8 weights
# with a 128-token limit. On MMLU (docs/quality.md, "Encoder variants") its routers score
# APGR 0.667 (KNN) / 0.666 (MLP) against 0.660 / 0.664 for fp32 at 256 tokens, every
# difference inside its 95 % interval, while the encoder is a quarter of the size and
# roughly halves its p99 on long prompts (docs/performance.md).
BUILD_ENCODER_VARIANTS = ("int8-t128", "int8", "fp32-t128", "fp32")
DEFAULT_ENCODER_VARIANT = "int8-t128"
