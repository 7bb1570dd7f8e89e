from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class OutcomeResult(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OUTCOME_RESULT_UNSPECIFIED: _ClassVar[OutcomeResult]
    OUTCOME_RESULT_SUCCESS: _ClassVar[OutcomeResult]
    OUTCOME_RESULT_PROVIDER_ERROR: _ClassVar[OutcomeResult]
    OUTCOME_RESULT_REFUSAL: _ClassVar[OutcomeResult]
    OUTCOME_RESULT_TIMEOUT: _ClassVar[OutcomeResult]
    OUTCOME_RESULT_ESCALATION: _ClassVar[OutcomeResult]

class Thumbs(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    THUMBS_UNSPECIFIED: _ClassVar[Thumbs]
    THUMBS_UP: _ClassVar[Thumbs]
    THUMBS_DOWN: _ClassVar[Thumbs]

class FeedbackSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FEEDBACK_SOURCE_UNSPECIFIED: _ClassVar[FeedbackSource]
    FEEDBACK_SOURCE_USER: _ClassVar[FeedbackSource]
    FEEDBACK_SOURCE_APPLICATION: _ClassVar[FeedbackSource]
    FEEDBACK_SOURCE_JUDGE: _ClassVar[FeedbackSource]
OUTCOME_RESULT_UNSPECIFIED: OutcomeResult
OUTCOME_RESULT_SUCCESS: OutcomeResult
OUTCOME_RESULT_PROVIDER_ERROR: OutcomeResult
OUTCOME_RESULT_REFUSAL: OutcomeResult
OUTCOME_RESULT_TIMEOUT: OutcomeResult
OUTCOME_RESULT_ESCALATION: OutcomeResult
THUMBS_UNSPECIFIED: Thumbs
THUMBS_UP: Thumbs
THUMBS_DOWN: Thumbs
FEEDBACK_SOURCE_UNSPECIFIED: FeedbackSource
FEEDBACK_SOURCE_USER: FeedbackSource
FEEDBACK_SOURCE_APPLICATION: FeedbackSource
FEEDBACK_SOURCE_JUDGE: FeedbackSource

class Candidate(_message.Message):
    __slots__ = ("id", "model_name", "provider", "cost_per_million_tokens")
    ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    COST_PER_MILLION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    id: str
    model_name: str
    provider: str
    cost_per_million_tokens: float
    def __init__(self, id: _Optional[str] = ..., model_name: _Optional[str] = ..., provider: _Optional[str] = ..., cost_per_million_tokens: _Optional[float] = ...) -> None: ...

class RouteRequest(_message.Message):
    __slots__ = ("prompt", "embedding", "candidates", "requested_model", "user_id_hash", "team_id_hash", "request_id", "cost_weight", "strategy", "strong_share")
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_MODEL_FIELD_NUMBER: _ClassVar[int]
    USER_ID_HASH_FIELD_NUMBER: _ClassVar[int]
    TEAM_ID_HASH_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    COST_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    STRONG_SHARE_FIELD_NUMBER: _ClassVar[int]
    prompt: str
    embedding: Embedding
    candidates: _containers.RepeatedCompositeFieldContainer[Candidate]
    requested_model: str
    user_id_hash: str
    team_id_hash: str
    request_id: str
    cost_weight: float
    strategy: str
    strong_share: float
    def __init__(self, prompt: _Optional[str] = ..., embedding: _Optional[_Union[Embedding, _Mapping]] = ..., candidates: _Optional[_Iterable[_Union[Candidate, _Mapping]]] = ..., requested_model: _Optional[str] = ..., user_id_hash: _Optional[str] = ..., team_id_hash: _Optional[str] = ..., request_id: _Optional[str] = ..., cost_weight: _Optional[float] = ..., strategy: _Optional[str] = ..., strong_share: _Optional[float] = ...) -> None: ...

class Embedding(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, values: _Optional[_Iterable[float]] = ...) -> None: ...

class RankedCandidate(_message.Message):
    __slots__ = ("id", "model_name", "score", "predicted_quality", "cost_per_million_tokens", "known_to_router")
    ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_QUALITY_FIELD_NUMBER: _ClassVar[int]
    COST_PER_MILLION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    KNOWN_TO_ROUTER_FIELD_NUMBER: _ClassVar[int]
    id: str
    model_name: str
    score: float
    predicted_quality: float
    cost_per_million_tokens: float
    known_to_router: bool
    def __init__(self, id: _Optional[str] = ..., model_name: _Optional[str] = ..., score: _Optional[float] = ..., predicted_quality: _Optional[float] = ..., cost_per_million_tokens: _Optional[float] = ..., known_to_router: _Optional[bool] = ...) -> None: ...

class Timings(_message.Message):
    __slots__ = ("total_ms", "embedding_ms", "strategy_ms")
    TOTAL_MS_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_MS_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_MS_FIELD_NUMBER: _ClassVar[int]
    total_ms: float
    embedding_ms: float
    strategy_ms: float
    def __init__(self, total_ms: _Optional[float] = ..., embedding_ms: _Optional[float] = ..., strategy_ms: _Optional[float] = ...) -> None: ...

class RouteResponse(_message.Message):
    __slots__ = ("ranked", "decision_id", "strategy_name", "strategy_version", "bundle_version", "arm", "timings", "selection_reason", "prompt_tokens", "prompt_truncated", "propensity", "explored")
    RANKED_FIELD_NUMBER: _ClassVar[int]
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_NAME_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_VERSION_FIELD_NUMBER: _ClassVar[int]
    BUNDLE_VERSION_FIELD_NUMBER: _ClassVar[int]
    ARM_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    SELECTION_REASON_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    PROPENSITY_FIELD_NUMBER: _ClassVar[int]
    EXPLORED_FIELD_NUMBER: _ClassVar[int]
    ranked: _containers.RepeatedCompositeFieldContainer[RankedCandidate]
    decision_id: str
    strategy_name: str
    strategy_version: str
    bundle_version: str
    arm: str
    timings: Timings
    selection_reason: str
    prompt_tokens: int
    prompt_truncated: bool
    propensity: float
    explored: bool
    def __init__(self, ranked: _Optional[_Iterable[_Union[RankedCandidate, _Mapping]]] = ..., decision_id: _Optional[str] = ..., strategy_name: _Optional[str] = ..., strategy_version: _Optional[str] = ..., bundle_version: _Optional[str] = ..., arm: _Optional[str] = ..., timings: _Optional[_Union[Timings, _Mapping]] = ..., selection_reason: _Optional[str] = ..., prompt_tokens: _Optional[int] = ..., prompt_truncated: _Optional[bool] = ..., propensity: _Optional[float] = ..., explored: _Optional[bool] = ...) -> None: ...

class StrategyInfo(_message.Message):
    __slots__ = ("name", "version", "kind", "capabilities", "bundle_version", "models")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    BUNDLE_VERSION_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    kind: str
    capabilities: _containers.RepeatedScalarFieldContainer[str]
    bundle_version: str
    models: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., kind: _Optional[str] = ..., capabilities: _Optional[_Iterable[str]] = ..., bundle_version: _Optional[str] = ..., models: _Optional[_Iterable[str]] = ...) -> None: ...

class TrafficArm(_message.Message):
    __slots__ = ("name", "strategy", "weight")
    NAME_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    name: str
    strategy: str
    weight: float
    def __init__(self, name: _Optional[str] = ..., strategy: _Optional[str] = ..., weight: _Optional[float] = ...) -> None: ...

class ListStrategiesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListStrategiesResponse(_message.Message):
    __slots__ = ("strategies", "default_strategy", "split", "sticky_by")
    STRATEGIES_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_STRATEGY_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    STICKY_BY_FIELD_NUMBER: _ClassVar[int]
    strategies: _containers.RepeatedCompositeFieldContainer[StrategyInfo]
    default_strategy: str
    split: _containers.RepeatedCompositeFieldContainer[TrafficArm]
    sticky_by: str
    def __init__(self, strategies: _Optional[_Iterable[_Union[StrategyInfo, _Mapping]]] = ..., default_strategy: _Optional[str] = ..., split: _Optional[_Iterable[_Union[TrafficArm, _Mapping]]] = ..., sticky_by: _Optional[str] = ...) -> None: ...

class RecordOutcomeRequest(_message.Message):
    __slots__ = ("decision_id", "deployment_id", "model_name", "status", "input_tokens", "output_tokens", "latency_ms", "cost_usd", "fallback", "fallback_reason", "error_type", "result", "escalated_to_model")
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_REASON_FIELD_NUMBER: _ClassVar[int]
    ERROR_TYPE_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ESCALATED_TO_MODEL_FIELD_NUMBER: _ClassVar[int]
    decision_id: str
    deployment_id: str
    model_name: str
    status: str
    input_tokens: int
    output_tokens: int
    latency_ms: float
    cost_usd: float
    fallback: bool
    fallback_reason: str
    error_type: str
    result: OutcomeResult
    escalated_to_model: str
    def __init__(self, decision_id: _Optional[str] = ..., deployment_id: _Optional[str] = ..., model_name: _Optional[str] = ..., status: _Optional[str] = ..., input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., latency_ms: _Optional[float] = ..., cost_usd: _Optional[float] = ..., fallback: _Optional[bool] = ..., fallback_reason: _Optional[str] = ..., error_type: _Optional[str] = ..., result: _Optional[_Union[OutcomeResult, str]] = ..., escalated_to_model: _Optional[str] = ...) -> None: ...

class RecordOutcomeResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RecordFeedbackRequest(_message.Message):
    __slots__ = ("decision_id", "score", "thumbs", "source", "source_name")
    DECISION_ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    THUMBS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_NAME_FIELD_NUMBER: _ClassVar[int]
    decision_id: str
    score: float
    thumbs: Thumbs
    source: FeedbackSource
    source_name: str
    def __init__(self, decision_id: _Optional[str] = ..., score: _Optional[float] = ..., thumbs: _Optional[_Union[Thumbs, str]] = ..., source: _Optional[_Union[FeedbackSource, str]] = ..., source_name: _Optional[str] = ...) -> None: ...

class RecordFeedbackResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
