"""Settings of the decision service: explicit argument beats ROUTEIQ_* env beats default.

This is the one settings object of the service. Each field's ``description`` is its
documentation: docs/configuration.md is generated from it (``make docs``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """Settings of ``python -m decision_service``. Its flags ``--bundle`` (bundle_dir),
    ``--encoder`` (encoder_dir), ``--host``, ``--port``, ``--workers``, ``--log-level`` and
    ``--metrics-port`` beat the environment."""

    model_config = SettingsConfigDict(env_prefix="ROUTEIQ_", extra="ignore")

    bundle_dir: Path = Field(
        description="Router bundle directory to serve (a symlink or pointer path is fine); "
        "watched for changes when reload_poll_ms > 0."
    )
    encoder_dir: Path | None = Field(
        default=None,
        description="Encoder directory (encoder.json, encoder.onnx, tokenizer.json). "
        "Default: the `encoder` directory beside bundle_dir, the layout the trainer writes.",
    )
    host: str = Field(default="0.0.0.0", description="Address the gRPC server binds.")
    port: int = Field(default=50051, ge=0, le=65535, description="gRPC port (0 picks a free one).")
    workers: int = Field(
        default=2,
        ge=1,
        description="Decisions that run the encoder at once (decide slots; one per core). "
        "With encoder batching on, more slots than encoder_parallel_runs let concurrent "
        "prompts queue and share one encoder run.",
    )
    intra_op_threads: int = Field(default=1, ge=1, description="onnxruntime threads per graph run.")
    encoder_parallel_runs: int = Field(
        default=2, ge=1, description="Encoder runs at once (one per core uses the machine)."
    )
    encoder_batch_max: int = Field(
        default=1,
        ge=1,
        description="Most prompts one encoder run takes from the queue under load; 1 (the "
        "default, see docs/performance.md) turns batching off. Nobody waits for a batch to "
        "fill, so idle latency is unchanged.",
    )
    embedding_cache_size: int = Field(
        default=4096,
        ge=0,
        description="Embeddings of recent prompts kept (LRU, keyed by the text's sha256); 0 off.",
    )
    max_prompt_chars: int = Field(
        default=200_000, ge=1, description="Longer prompts are refused with INVALID_ARGUMENT."
    )
    max_candidates: int = Field(default=256, ge=1, description="Most candidates per request.")
    max_message_bytes: int = Field(
        default=16 * 1024 * 1024,
        ge=1024,
        description="Largest request message gRPC accepts; larger ones get RESOURCE_EXHAUSTED "
        "from gRPC itself.",
    )
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

    # Load and deadlines.
    max_in_flight: int = Field(
        default=64,
        ge=1,
        description="Route calls admitted at once (running or waiting for a decide slot); "
        "more are refused at once with RESOURCE_EXHAUSTED so the gateway falls back. The "
        "server's thread pool has 8 threads more, for health, admin calls and refusals.",
    )
    min_deadline_ms: float = Field(
        default=1.0,
        ge=0,
        description="A call arriving with less time left than this is refused at once with "
        "DEADLINE_EXCEEDED.",
    )

    # Hot reload and versions.
    reload_poll_ms: int = Field(
        default=500,
        ge=0,
        description="How often the bundle pointer is checked for a new bundle; 0 turns "
        "watching off (Reload still works).",
    )
    keep_versions: int = Field(
        default=3, ge=1, description="Loaded bundle versions kept ready for rollback and splits."
    )

    # Strategies and splits.
    default_strategy: str = Field(
        default="",
        description="Strategy used when a request names none and no split is active; empty: "
        "the active bundle's ML strategy.",
    )
    static_order: list[str] = Field(
        default_factory=list,
        description="Model names the `fixed-order` strategy prefers, best first (JSON list).",
    )
    traffic_split: dict[str, float] = Field(
        default_factory=dict,
        description='Split at start, strategy -> weight (JSON, e.g. {"routeiq-knn@v1": 90, '
        '"cheapest": 10}); the arm is named after the strategy.',
    )
    split_sticky_by: Literal["user", "team", "request"] = Field(
        default="user", description="Which hash keeps a caller on one arm of traffic_split."
    )

    # Canary.
    canary_dir: Path | None = Field(
        default=None,
        description="Pointer to a canary bundle (e.g. the `current` link of a sync agent on "
        "the `canary` channel), watched like bundle_dir; while it names a valid version other "
        "than the stable one, that version gets canary_share of requests. Unset: no canary.",
    )
    canary_share: float = Field(
        default=0.05,
        gt=0,
        le=1,
        description="Share of the requests that name no strategy sent to the canary, sticky "
        "by split_sticky_by (a salted hash, independent of split arms).",
    )
    canary_window_s: float = Field(
        default=60.0, gt=0, description="Sliding window the canary rule's figures cover."
    )
    canary_min_samples: int = Field(
        default=50,
        ge=1,
        description="Canary decisions (or outcomes, for the fallback figure) in the window "
        "before the rule judges; the latency figure needs as many stable decisions too.",
    )
    canary_max_error_rate: float = Field(
        default=0.01,
        ge=0,
        le=1,
        description="Withdraw when more than this share of canary decisions fail (raise or "
        "give non-finite quality; each is answered by the stable version instead).",
    )
    canary_max_fallback_excess: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="Withdraw when the share of canary decisions whose RecordOutcome says "
        "fallback exceeds the stable version's share by more than this.",
    )
    canary_max_latency_ratio: float = Field(
        default=2.0,
        ge=1,
        description="Withdraw when the canary's p99 router time exceeds the stable version's "
        "p99 times this plus canary_latency_slack_ms.",
    )
    canary_latency_slack_ms: float = Field(
        default=5.0,
        ge=0,
        description="Added to the latency threshold, so sub-millisecond jitter never "
        "withdraws a canary.",
    )
    canary_state_file: Path | None = Field(
        default=None,
        description="Where a withdrawal is remembered (JSON) so a restart does not give the "
        "withdrawn canary traffic again; unset: remembered in memory only.",
    )

    # Admin.
    admin_token: SecretStr | None = Field(
        default=None,
        description="Bearer token the AdminService requires; unset: every admin call is "
        "refused with UNAUTHENTICATED.",
    )
    audit_log_path: Path | None = Field(
        default=None,
        description="Admin audit log (JSON lines, appended); entries are also logged.",
    )

    # Telemetry.
    metrics_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="Prometheus /metrics HTTP port; unset: no metrics endpoint.",
    )
    metrics_host: str = Field(default="0.0.0.0", description="Address /metrics binds.")
    telemetry_embedding: bool = Field(
        default=False,
        description="Attach the int8-quantized query embedding to each decision event "
        "(for training; off by default). The prompt text itself is never recorded.",
    )
    telemetry_prompt_hash: bool = Field(
        default=False,
        description="Attach the sha256 of the prompt text to each decision event (to join "
        "with an application's own records or count repeats). Short prompts can be guessed "
        "from their hash: treat it as personal data where prompts are.",
    )
    telemetry_events_file: Path | None = Field(
        default=None,
        description="Also append every decision, outcome and feedback event to this JSON "
        "lines file (the trainer's `--events` input); unset: events go only to traces.",
    )
    exploration_rate: float = Field(
        default=0.0,
        ge=0.0,
        le=0.2,
        description="Share of ML decisions (0..0.2) served by a candidate drawn uniformly "
        "from the router-known candidates instead of the best-scored one (epsilon-greedy, "
        "seeded by decision id); the served candidate's probability is logged as "
        "`propensity`. 0 turns exploration off.",
    )
    strong_share: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Share of calls (0..1) to send at most to each bundle's strong model (the "
        "one its calibration table names: the best model in training, or for bundles learned "
        "from traffic the base bundle's): replaces the bundle's default_cost_weight by the "
        "weight its calibration table gives for this share, per bundle version, so a reload "
        "recalibrates. A bundle without a table is refused. Requests that send cost_weight "
        "or strong_share still override it. Unset: default_cost_weight.",
    )

    # Security.
    tls_cert_file: Path | None = Field(
        default=None, description="PEM server certificate chain; with tls_key_file turns TLS on."
    )
    tls_key_file: Path | None = Field(default=None, description="PEM private key of the server.")
    tls_client_ca_file: Path | None = Field(
        default=None,
        description="PEM CA bundle; when set, clients must present a certificate it signed "
        "(mutual TLS).",
    )
    bundle_public_key_file: Path | None = Field(
        default=None,
        description="Ed25519 public key (PEM) that bundle signatures (manifest.sig) must verify "
        "against.",
    )
    require_signed_bundles: bool = Field(
        default=False,
        description="Refuse bundles without a valid signature by bundle_public_key_file.",
    )

    debug_decision_delay_ms: float = Field(
        default=0.0,
        ge=0,
        description="Testing only: every decision sleeps this long on its worker, so tests "
        "can hold calls in flight.",
    )

    @model_validator(mode="after")
    def _check_pairs(self) -> ServiceSettings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("set both tls_cert_file and tls_key_file, or neither")
        if self.tls_client_ca_file is not None and self.tls_cert_file is None:
            raise ValueError("tls_client_ca_file (mutual TLS) needs tls_cert_file/tls_key_file")
        if self.require_signed_bundles and self.bundle_public_key_file is None:
            raise ValueError("require_signed_bundles needs bundle_public_key_file")
        if self.canary_dir is not None and self.reload_poll_ms == 0:
            raise ValueError("canary_dir needs reload_poll_ms > 0 (the watcher runs the canary)")
        return self

    def resolved_encoder_dir(self) -> Path:
        return (
            self.encoder_dir if self.encoder_dir is not None else self.bundle_dir.parent / "encoder"
        )
