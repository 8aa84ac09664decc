import datetime

from alice.common.v1 import taxonomy_pb2 as _taxonomy_pb2
from alice.common.v1 import types_pb2 as _types_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Degradation(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DEGRADATION_UNSPECIFIED: _ClassVar[Degradation]
    DEGRADATION_NLU_FALLBACK: _ClassVar[Degradation]
    DEGRADATION_CACHE_BYPASSED: _ClassVar[Degradation]
    DEGRADATION_MICRO_UNAVAILABLE: _ClassVar[Degradation]
    DEGRADATION_PLANNER_UNAVAILABLE: _ClassVar[Degradation]
    DEGRADATION_TOOL_UNAVAILABLE: _ClassVar[Degradation]
DEGRADATION_UNSPECIFIED: Degradation
DEGRADATION_NLU_FALLBACK: Degradation
DEGRADATION_CACHE_BYPASSED: Degradation
DEGRADATION_MICRO_UNAVAILABLE: Degradation
DEGRADATION_PLANNER_UNAVAILABLE: Degradation
DEGRADATION_TOOL_UNAVAILABLE: Degradation

class AskRequest(_message.Message):
    __slots__ = ("text", "user_id", "session_id", "reference_time", "time_zone", "timeout")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_TIME_FIELD_NUMBER: _ClassVar[int]
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    text: str
    user_id: str
    session_id: str
    reference_time: _timestamp_pb2.Timestamp
    time_zone: str
    timeout: _duration_pb2.Duration
    def __init__(self, text: _Optional[str] = ..., user_id: _Optional[str] = ..., session_id: _Optional[str] = ..., reference_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., time_zone: _Optional[str] = ..., timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class AskStreamRequest(_message.Message):
    __slots__ = ("request",)
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    request: AskRequest
    def __init__(self, request: _Optional[_Union[AskRequest, _Mapping]] = ...) -> None: ...

class LatencyBreakdown(_message.Message):
    __slots__ = ("total_ms", "nlu_ms", "cache_l1_ms", "cache_l2_ms", "route_ms", "llm_ttft_ms", "llm_total_ms", "tool_ms", "cache_store_ms")
    TOTAL_MS_FIELD_NUMBER: _ClassVar[int]
    NLU_MS_FIELD_NUMBER: _ClassVar[int]
    CACHE_L1_MS_FIELD_NUMBER: _ClassVar[int]
    CACHE_L2_MS_FIELD_NUMBER: _ClassVar[int]
    ROUTE_MS_FIELD_NUMBER: _ClassVar[int]
    LLM_TTFT_MS_FIELD_NUMBER: _ClassVar[int]
    LLM_TOTAL_MS_FIELD_NUMBER: _ClassVar[int]
    TOOL_MS_FIELD_NUMBER: _ClassVar[int]
    CACHE_STORE_MS_FIELD_NUMBER: _ClassVar[int]
    total_ms: float
    nlu_ms: float
    cache_l1_ms: float
    cache_l2_ms: float
    route_ms: float
    llm_ttft_ms: float
    llm_total_ms: float
    tool_ms: float
    cache_store_ms: float
    def __init__(self, total_ms: _Optional[float] = ..., nlu_ms: _Optional[float] = ..., cache_l1_ms: _Optional[float] = ..., cache_l2_ms: _Optional[float] = ..., route_ms: _Optional[float] = ..., llm_ttft_ms: _Optional[float] = ..., llm_total_ms: _Optional[float] = ..., tool_ms: _Optional[float] = ..., cache_store_ms: _Optional[float] = ...) -> None: ...

class AskResponse(_message.Message):
    __slots__ = ("answer", "route", "intent", "confidence", "slots", "tool_call", "cache_tier", "latency", "trace_id", "degradations")
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    ROUTE_FIELD_NUMBER: _ClassVar[int]
    INTENT_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    SLOTS_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALL_FIELD_NUMBER: _ClassVar[int]
    CACHE_TIER_FIELD_NUMBER: _ClassVar[int]
    LATENCY_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    DEGRADATIONS_FIELD_NUMBER: _ClassVar[int]
    answer: str
    route: _taxonomy_pb2.Route
    intent: _taxonomy_pb2.Intent
    confidence: float
    slots: _types_pb2.Slots
    tool_call: _types_pb2.ToolCall
    cache_tier: _types_pb2.CacheTier
    latency: LatencyBreakdown
    trace_id: str
    degradations: _containers.RepeatedScalarFieldContainer[Degradation]
    def __init__(self, answer: _Optional[str] = ..., route: _Optional[_Union[_taxonomy_pb2.Route, str]] = ..., intent: _Optional[_Union[_taxonomy_pb2.Intent, str]] = ..., confidence: _Optional[float] = ..., slots: _Optional[_Union[_types_pb2.Slots, _Mapping]] = ..., tool_call: _Optional[_Union[_types_pb2.ToolCall, _Mapping]] = ..., cache_tier: _Optional[_Union[_types_pb2.CacheTier, str]] = ..., latency: _Optional[_Union[LatencyBreakdown, _Mapping]] = ..., trace_id: _Optional[str] = ..., degradations: _Optional[_Iterable[_Union[Degradation, str]]] = ...) -> None: ...

class AskStreamResponse(_message.Message):
    __slots__ = ("delta", "final")
    DELTA_FIELD_NUMBER: _ClassVar[int]
    FINAL_FIELD_NUMBER: _ClassVar[int]
    delta: str
    final: AskResponse
    def __init__(self, delta: _Optional[str] = ..., final: _Optional[_Union[AskResponse, _Mapping]] = ...) -> None: ...

class GetStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class LatencyStats(_message.Message):
    __slots__ = ("count", "p50_ms", "p95_ms", "p99_ms")
    COUNT_FIELD_NUMBER: _ClassVar[int]
    P50_MS_FIELD_NUMBER: _ClassVar[int]
    P95_MS_FIELD_NUMBER: _ClassVar[int]
    P99_MS_FIELD_NUMBER: _ClassVar[int]
    count: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    def __init__(self, count: _Optional[int] = ..., p50_ms: _Optional[float] = ..., p95_ms: _Optional[float] = ..., p99_ms: _Optional[float] = ...) -> None: ...

class BreakerStatus(_message.Message):
    __slots__ = ("name", "state", "failure_rate", "slow_call_rate", "calls_in_window", "rejected", "transitions")
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    FAILURE_RATE_FIELD_NUMBER: _ClassVar[int]
    SLOW_CALL_RATE_FIELD_NUMBER: _ClassVar[int]
    CALLS_IN_WINDOW_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    TRANSITIONS_FIELD_NUMBER: _ClassVar[int]
    name: str
    state: str
    failure_rate: float
    slow_call_rate: float
    calls_in_window: int
    rejected: int
    transitions: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., state: _Optional[str] = ..., failure_rate: _Optional[float] = ..., slow_call_rate: _Optional[float] = ..., calls_in_window: _Optional[int] = ..., rejected: _Optional[int] = ..., transitions: _Optional[_Iterable[str]] = ...) -> None: ...

class QuotaStatus(_message.Message):
    __slots__ = ("max_share", "window", "share", "overflowed")
    MAX_SHARE_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    SHARE_FIELD_NUMBER: _ClassVar[int]
    OVERFLOWED_FIELD_NUMBER: _ClassVar[int]
    max_share: float
    window: int
    share: float
    overflowed: int
    def __init__(self, max_share: _Optional[float] = ..., window: _Optional[int] = ..., share: _Optional[float] = ..., overflowed: _Optional[int] = ...) -> None: ...

class SloStatus(_message.Message):
    __slots__ = ("name", "target", "value", "passed")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    PASSED_FIELD_NUMBER: _ClassVar[int]
    name: str
    target: float
    value: float
    passed: bool
    def __init__(self, name: _Optional[str] = ..., target: _Optional[float] = ..., value: _Optional[float] = ..., passed: _Optional[bool] = ...) -> None: ...

class GetStatusResponse(_message.Message):
    __slots__ = ("requests", "success_rate", "latency", "latency_by_route", "errors_by_code", "cache_hits_by_tier", "cache_misses", "route_shares", "quota", "breakers", "slos", "degradations")
    class LatencyByRouteEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: LatencyStats
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[LatencyStats, _Mapping]] = ...) -> None: ...
    class ErrorsByCodeEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class CacheHitsByTierEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class RouteSharesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class DegradationsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_RATE_FIELD_NUMBER: _ClassVar[int]
    LATENCY_FIELD_NUMBER: _ClassVar[int]
    LATENCY_BY_ROUTE_FIELD_NUMBER: _ClassVar[int]
    ERRORS_BY_CODE_FIELD_NUMBER: _ClassVar[int]
    CACHE_HITS_BY_TIER_FIELD_NUMBER: _ClassVar[int]
    CACHE_MISSES_FIELD_NUMBER: _ClassVar[int]
    ROUTE_SHARES_FIELD_NUMBER: _ClassVar[int]
    QUOTA_FIELD_NUMBER: _ClassVar[int]
    BREAKERS_FIELD_NUMBER: _ClassVar[int]
    SLOS_FIELD_NUMBER: _ClassVar[int]
    DEGRADATIONS_FIELD_NUMBER: _ClassVar[int]
    requests: int
    success_rate: float
    latency: LatencyStats
    latency_by_route: _containers.MessageMap[str, LatencyStats]
    errors_by_code: _containers.ScalarMap[str, int]
    cache_hits_by_tier: _containers.ScalarMap[str, int]
    cache_misses: int
    route_shares: _containers.ScalarMap[str, float]
    quota: QuotaStatus
    breakers: _containers.RepeatedCompositeFieldContainer[BreakerStatus]
    slos: _containers.RepeatedCompositeFieldContainer[SloStatus]
    degradations: _containers.ScalarMap[str, int]
    def __init__(self, requests: _Optional[int] = ..., success_rate: _Optional[float] = ..., latency: _Optional[_Union[LatencyStats, _Mapping]] = ..., latency_by_route: _Optional[_Mapping[str, LatencyStats]] = ..., errors_by_code: _Optional[_Mapping[str, int]] = ..., cache_hits_by_tier: _Optional[_Mapping[str, int]] = ..., cache_misses: _Optional[int] = ..., route_shares: _Optional[_Mapping[str, float]] = ..., quota: _Optional[_Union[QuotaStatus, _Mapping]] = ..., breakers: _Optional[_Iterable[_Union[BreakerStatus, _Mapping]]] = ..., slos: _Optional[_Iterable[_Union[SloStatus, _Mapping]]] = ..., degradations: _Optional[_Mapping[str, int]] = ...) -> None: ...

class ResetStatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ResetStatsResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
