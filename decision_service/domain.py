"""The service's domain types: what a request asks, what a decision answers, what admin sees.

Plain frozen dataclasses with no behaviour and no gRPC: ``convert`` turns the wire messages
into these and back, and everything between the servicer and the ONNX sessions speaks them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .bundle import RouterBundle
    from .strategies import MLStrategy

OUTCOME_STATUSES = ("success", "failure", "fallback", "error", "timeout")
# RecordOutcomeRequest.result as a string (the enum name without its prefix, lower case).
OUTCOME_RESULTS = ("success", "provider_error", "refusal", "timeout", "escalation")
# The result an older gateway means by its status, when it sends no result.
RESULT_OF_STATUS = {
    "success": "success",
    "fallback": "success",
    "failure": "provider_error",
    "error": "provider_error",
    "timeout": "timeout",
}
FEEDBACK_SOURCES = ("application", "user", "judge")


# ---- Route ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CandidateIn:
    """A deployment the gateway can use now; ``cost_per_million_tokens`` overrides the bundle's."""

    id: str
    model_name: str
    provider: str = ""
    cost_per_million_tokens: float | None = None


@dataclass(frozen=True)
class RequestLimits:
    max_prompt_chars: int = 200_000
    max_candidates: int = 256
    max_id_chars: int = 256


@dataclass(frozen=True)
class RouteQuery:
    """One Route call: exactly one of ``prompt`` and ``embedding``, and the candidates."""

    candidates: Sequence[CandidateIn]
    prompt: str | None = None
    embedding: Sequence[float] | None = None
    requested_model: str = ""
    user_id_hash: str = ""
    team_id_hash: str = ""
    request_id: str = ""
    cost_weight: float | None = None
    strategy: str = ""
    # Instead of cost_weight: the share (0..1) of calls to send to the bundle's strong
    # model, turned into a cost weight by the serving bundle's calibration table.
    strong_share: float | None = None


@dataclass(frozen=True)
class RankedCandidate:
    id: str
    model_name: str
    score: float
    predicted_quality: float
    cost_per_million_tokens: float
    known_to_router: bool


@dataclass(frozen=True)
class Timings:
    total_ms: float
    embedding_ms: float
    strategy_ms: float


@dataclass(frozen=True)
class Decision:
    ranked: list[RankedCandidate]
    decision_id: str
    strategy_name: str
    strategy_version: str
    bundle_version: str
    arm: str
    timings: Timings
    selection_reason: str
    prompt_tokens: int
    prompt_truncated: bool
    # Probability with which ranked[0] was chosen (1.0 without exploration), and whether
    # exploration put a candidate other than the best-scored one first.
    propensity: float = 1.0
    explored: bool = False
    # The query embedding, kept only when telemetry asked for it (never sent to the caller).
    embedding: np.ndarray | None = field(default=None, compare=False, repr=False)


# ---- RecordOutcome --------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What a gateway reports after the LLM call of a decision (``status`` in OUTCOME_STATUSES)."""

    decision_id: str
    deployment_id: str
    model_name: str
    status: str
    input_tokens: int
    output_tokens: int
    latency_ms: float
    cost_usd: float | None
    fallback: bool
    fallback_reason: str
    error_type: str
    # One of OUTCOME_RESULTS; convert derives it from ``status`` when the gateway sent none.
    result: str = "success"
    escalated_to_model: str = ""


@dataclass(frozen=True)
class Feedback:
    """A quality signal for a decision (``score`` in [0, 1]; thumbs arrive as 1.0 / 0.0)."""

    decision_id: str
    score: float
    source: str  # one of FEEDBACK_SOURCES
    source_name: str = ""
    thumbs: bool = False  # the score came from thumbs up/down


# ---- strategies and splits ------------------------------------------------------------


@dataclass(frozen=True)
class StrategyInfo:
    name: str
    version: str
    kind: str  # "ml" or "static"
    capabilities: tuple[str, ...]
    bundle_version: str = ""
    models: tuple[str, ...] = ()


@dataclass(frozen=True)
class TrafficArm:
    name: str
    strategy: str
    weight: float


@dataclass(frozen=True)
class StrategyListing:
    """ListStrategies: every strategy a request may name, the default, and the split."""

    strategies: tuple[StrategyInfo, ...]
    default: str
    split: tuple[TrafficArm, ...]
    sticky_by: str


# ---- versions and admin ---------------------------------------------------------------


@dataclass(frozen=True)
class LoadedVersion:
    """A validated bundle held ready to serve, and the strategy that ranks with it."""

    bundle: RouterBundle
    strategy: MLStrategy
    loaded_utc: str

    @property
    def version(self) -> str:
        return self.bundle.version


@dataclass(frozen=True)
class VersionInfo:
    version: str
    strategy_name: str
    router_type: str
    loaded_utc: str
    active: bool
    directory: str
    encoder_digest: str


@dataclass(frozen=True)
class Status:
    active_versions: list[str]
    encoder_name: str
    encoder_digest: str
    uptime_s: float
    in_flight: int
    decisions_total: int
    split: tuple[TrafficArm, ...]
    sticky_by: str
    default_strategy: str
    serving: bool


@dataclass(frozen=True)
class ReloadResult:
    previous_version: str | None
    active_version: str | None
    changed: bool


@dataclass(frozen=True)
class RollbackChange:
    """Rollback: re-activate ``to`` (a loaded version, or ``"previous"``), for ``why``."""

    to: str
    why: str


@dataclass(frozen=True)
class RollbackResult:
    previous_version: str | None
    active_version: str


@dataclass(frozen=True)
class SplitChange:
    """SetTrafficSplit: arms as (name, strategy, weight), no arms clearing the split."""

    arms: tuple[tuple[str, str, float], ...]
    sticky_by: str
    why: str


@dataclass(frozen=True)
class SplitResult:
    """The split now in force (no arms: none)."""

    arms: tuple[TrafficArm, ...]
    sticky_by: str
