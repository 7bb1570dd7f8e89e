"""Settings of the sync agent: explicit argument beats ROUTEIQ_* env beats default.

The agent shares the ``ROUTEIQ_`` prefix with the service on purpose: the pod sets
``ROUTEIQ_BUNDLE_PUBLIC_KEY_FILE``, ``ROUTEIQ_REQUIRE_SIGNED_BUNDLES`` and
``ROUTEIQ_ADMIN_TOKEN`` once and both containers read them. Fields only the agent has are
named ``sync_*`` (or name the registry and Redis) so they never collide with the service's.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class SyncSettings(BaseSettings):
    """Settings of ``routeiq-sync-agent`` (``python -m decision_service.sync``). Its flags
    ``--registry``, ``--channel``, ``--models-dir``, ``--redis-url`` and ``--once`` beat the
    environment."""

    model_config = SettingsConfigDict(env_prefix="ROUTEIQ_", extra="ignore")

    registry: str = Field(
        description="Registry URI the agent reads: a directory, file:///dir or "
        "s3://bucket/prefix (credentials as boto3 finds them)."
    )
    registry_name: str = Field(
        default="routeiq-router", description="Registry entry name (trainer --name)."
    )
    channel: str = Field(default="stable", description="Channel whose version this pod serves.")
    s3_endpoint: str | None = Field(
        default=None, description="S3 endpoint URL for MinIO or another S3-compatible store."
    )
    models_dir: Path = Field(
        default=Path("/models"),
        description="Where bundles land: <dir>/<version>, <dir>/encoders/<key>, and the "
        "pointers <dir>/current and <dir>/encoder the service reads.",
    )
    redis_url: str | None = Field(
        default=None,
        description="Redis for fleet coordination (download slots and change notifications), "
        "e.g. redis://redis:6379/0. Unset or unreachable: the agent polls the store with "
        "jitter and downloads without a slot.",
    )
    redis_prefix: str = Field(
        default="routeiq", description="Prefix of every Redis key and topic the agent uses."
    )
    sync_interval_s: float = Field(
        default=30.0,
        gt=0,
        description="Store poll while Redis notifications work: a safety net for a missed "
        "message; changes normally arrive by notification within a second.",
    )
    sync_fallback_interval_s: float = Field(
        default=5.0,
        gt=0,
        description="Store poll while notifications are down (no Redis or Redis unreachable).",
    )
    sync_jitter: float = Field(
        default=0.3,
        ge=0,
        lt=1,
        description="Each poll waits interval * (1 +- jitter), uniformly: a fleet polling "
        "without Redis spreads its reads instead of arriving together.",
    )
    sync_slots: int = Field(
        default=4,
        ge=1,
        description="Downloads allowed at once across the fleet (Redis leases); every agent "
        "of a fleet must use the same value.",
    )
    sync_lease_ttl_s: float = Field(
        default=15.0,
        gt=0,
        description="A download slot's lease lifetime; renewed every third of it while the "
        "download runs, so a dead agent frees its slot within this time.",
    )
    sync_slot_poll_s: float = Field(
        default=0.05, gt=0, description="How often a waiting agent tries the slots again."
    )
    sync_retry_max_s: float = Field(
        default=30.0,
        gt=0,
        description="Longest wait between retries after a failed sync (exponential backoff "
        "from 0.5 s, with jitter).",
    )
    sync_keep_versions: int = Field(
        default=3,
        ge=1,
        description="Bundle versions kept on disk (the active one included): a rollback to "
        "one of them needs no download.",
    )
    sync_reload_address: str | None = Field(
        default=None,
        description="host:port of the service's AdminService: after a swap the agent calls "
        "Reload there (needs admin_token) instead of waiting for the service's pointer "
        "watcher.",
    )
    admin_token: SecretStr | None = Field(
        default=None, description="Bearer token for the Reload call (the service's token)."
    )
    bundle_public_key_file: Path | None = Field(
        default=None,
        description="Ed25519 public key (PEM) a downloaded bundle's manifest.sig must verify "
        "against before it is made visible.",
    )
    require_signed_bundles: bool = Field(
        default=False, description="Refuse unsigned bundles (needs bundle_public_key_file)."
    )
    sync_agent_id: str = Field(
        default="",
        description="Name of this agent in leases, logs and its S3 user agent; empty: "
        "hostname-pid.",
    )
    sync_metrics_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="Prometheus /metrics HTTP port of the agent; unset: no endpoint.",
    )
    sync_metrics_host: str = Field(default="0.0.0.0", description="Address /metrics binds.")
    log_level: str = Field(default="INFO", description="Python logging level.")

    def agent_id(self) -> str:
        return self.sync_agent_id or f"{socket.gethostname()}-{os.getpid()}"

    @model_validator(mode="after")
    def _check(self) -> SyncSettings:
        if self.require_signed_bundles and self.bundle_public_key_file is None:
            raise ValueError("require_signed_bundles needs bundle_public_key_file")
        if self.sync_reload_address is not None and self.admin_token is None:
            raise ValueError("sync_reload_address needs admin_token (the service's token)")
        return self
