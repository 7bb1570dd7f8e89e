from routeiq.decision.v1 import decision_pb2 as _decision_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BundleVersion(_message.Message):
    __slots__ = ("version", "strategy_name", "router_type", "loaded_utc", "active", "directory", "encoder_digest")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_NAME_FIELD_NUMBER: _ClassVar[int]
    ROUTER_TYPE_FIELD_NUMBER: _ClassVar[int]
    LOADED_UTC_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    DIRECTORY_FIELD_NUMBER: _ClassVar[int]
    ENCODER_DIGEST_FIELD_NUMBER: _ClassVar[int]
    version: str
    strategy_name: str
    router_type: str
    loaded_utc: str
    active: bool
    directory: str
    encoder_digest: str
    def __init__(self, version: _Optional[str] = ..., strategy_name: _Optional[str] = ..., router_type: _Optional[str] = ..., loaded_utc: _Optional[str] = ..., active: _Optional[bool] = ..., directory: _Optional[str] = ..., encoder_digest: _Optional[str] = ...) -> None: ...

class GetStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetStatusResponse(_message.Message):
    __slots__ = ("active_versions", "encoder_name", "encoder_digest", "uptime_s", "in_flight", "decisions_total", "split", "default_strategy", "health")
    ACTIVE_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    ENCODER_NAME_FIELD_NUMBER: _ClassVar[int]
    ENCODER_DIGEST_FIELD_NUMBER: _ClassVar[int]
    UPTIME_S_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    DECISIONS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_STRATEGY_FIELD_NUMBER: _ClassVar[int]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    active_versions: _containers.RepeatedScalarFieldContainer[str]
    encoder_name: str
    encoder_digest: str
    uptime_s: float
    in_flight: int
    decisions_total: int
    split: _containers.RepeatedCompositeFieldContainer[_decision_pb2.TrafficArm]
    default_strategy: str
    health: str
    def __init__(self, active_versions: _Optional[_Iterable[str]] = ..., encoder_name: _Optional[str] = ..., encoder_digest: _Optional[str] = ..., uptime_s: _Optional[float] = ..., in_flight: _Optional[int] = ..., decisions_total: _Optional[int] = ..., split: _Optional[_Iterable[_Union[_decision_pb2.TrafficArm, _Mapping]]] = ..., default_strategy: _Optional[str] = ..., health: _Optional[str] = ...) -> None: ...

class ListVersionsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListVersionsResponse(_message.Message):
    __slots__ = ("versions",)
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[BundleVersion]
    def __init__(self, versions: _Optional[_Iterable[_Union[BundleVersion, _Mapping]]] = ...) -> None: ...

class ReloadRequest(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...

class ReloadResponse(_message.Message):
    __slots__ = ("previous_version", "active_version", "changed")
    PREVIOUS_VERSION_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_VERSION_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    previous_version: str
    active_version: str
    changed: bool
    def __init__(self, previous_version: _Optional[str] = ..., active_version: _Optional[str] = ..., changed: _Optional[bool] = ...) -> None: ...

class RollbackRequest(_message.Message):
    __slots__ = ("to", "reason")
    TO_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    to: str
    reason: str
    def __init__(self, to: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class RollbackResponse(_message.Message):
    __slots__ = ("previous_version", "active_version")
    PREVIOUS_VERSION_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_VERSION_FIELD_NUMBER: _ClassVar[int]
    previous_version: str
    active_version: str
    def __init__(self, previous_version: _Optional[str] = ..., active_version: _Optional[str] = ...) -> None: ...

class SetTrafficSplitRequest(_message.Message):
    __slots__ = ("arms", "sticky_by", "reason")
    ARMS_FIELD_NUMBER: _ClassVar[int]
    STICKY_BY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    arms: _containers.RepeatedCompositeFieldContainer[_decision_pb2.TrafficArm]
    sticky_by: str
    reason: str
    def __init__(self, arms: _Optional[_Iterable[_Union[_decision_pb2.TrafficArm, _Mapping]]] = ..., sticky_by: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class SetTrafficSplitResponse(_message.Message):
    __slots__ = ("arms", "sticky_by")
    ARMS_FIELD_NUMBER: _ClassVar[int]
    STICKY_BY_FIELD_NUMBER: _ClassVar[int]
    arms: _containers.RepeatedCompositeFieldContainer[_decision_pb2.TrafficArm]
    sticky_by: str
    def __init__(self, arms: _Optional[_Iterable[_Union[_decision_pb2.TrafficArm, _Mapping]]] = ..., sticky_by: _Optional[str] = ...) -> None: ...
