"""Settings of the decision service: explicit argument beats ROUTEIQ_* env beats default."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ROUTEIQ_", extra="ignore")

    bundle_dir: Path = Field(
        description="Router bundle directory to serve (a symlink or pointer path is fine)."
    )
    encoder_dir: Path | None = Field(
        default=None,
        description="Encoder directory (encoder.json, encoder.onnx, tokenizer.json). "
        "Default: the `encoder` directory beside bundle_dir, the layout the trainer writes.",
    )
    host: str = Field(default="0.0.0.0", description="Address the gRPC server binds.")
    port: int = Field(default=50051, ge=0, le=65535, description="gRPC port (0 picks a free one).")
    workers: int = Field(
        default=2, ge=1, description="Threads that run encoder and router (CPU work off the loop)."
    )
    intra_op_threads: int = Field(default=1, ge=1, description="onnxruntime threads per graph run.")
    max_prompt_chars: int = Field(
        default=200_000, ge=1, description="Longer prompts are refused with INVALID_ARGUMENT."
    )
    max_candidates: int = Field(default=256, ge=1, description="Most candidates per request.")
    shutdown_grace_s: float = Field(
        default=10.0, ge=0, description="On SIGTERM, time calls in flight get to finish."
    )
    max_connection_age_s: float = Field(
        default=300.0,
        gt=0,
        description="Server closes client connections this old so clients re-resolve DNS "
        "and spread over new pods.",
    )
    log_level: str = Field(default="INFO", description="Python logging level.")

    def resolved_encoder_dir(self) -> Path:
        return (
            self.encoder_dir if self.encoder_dir is not None else self.bundle_dir.parent / "encoder"
        )
