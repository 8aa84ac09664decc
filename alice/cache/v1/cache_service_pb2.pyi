import datetime

from alice.common.v1 import taxonomy_pb2 as _taxonomy_pb2
from alice.common.v1 import types_pb2 as _types_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StoreOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STORE_OUTCOME_UNSPECIFIED: _ClassVar[StoreOutcome]
    STORE_OUTCOME_STORED: _ClassVar[StoreOutcome]
    STORE_OUTCOME_SKIPPED_POLICY: _ClassVar[StoreOutcome]
    STORE_OUTCOME_DROPPED_UNAVAILABLE: _ClassVar[StoreOutcome]
STORE_OUTCOME_UNSPECIFIED: StoreOutcome
STORE_OUTCOME_STORED: StoreOutcome
STORE_OUTCOME_SKIPPED_POLICY: StoreOutcome
STORE_OUTCOME_DROPPED_UNAVAILABLE: StoreOutcome

class CacheQuery(_message.Message):
    __slots__ = ("intent", "slots", "text", "user_id", "answer_version", "embedding", "embedding_model", "reference_date")
    INTENT_FIELD_NUMBER: _ClassVar[int]
    SLOTS_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ANSWER_VERSION_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_MODEL_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_DATE_FIELD_NUMBER: _ClassVar[int]
    intent: _taxonomy_pb2.Intent
    slots: _types_pb2.Slots
    text: str
    user_id: str
    answer_version: str
    embedding: _containers.RepeatedScalarFieldContainer[float]
    embedding_model: str
    reference_date: _types_pb2.LocalDate
    def __init__(self, intent: _Optional[_Union[_taxonomy_pb2.Intent, str]] = ..., slots: _Optional[_Union[_types_pb2.Slots, _Mapping]] = ..., text: _Optional[str] = ..., user_id: _Optional[str] = ..., answer_version: _Optional[str] = ..., embedding: _Optional[_Iterable[float]] = ..., embedding_model: _Optional[str] = ..., reference_date: _Optional[_Union[_types_pb2.LocalDate, _Mapping]] = ...) -> None: ...

class CachedAnswer(_message.Message):
    __slots__ = ("text", "tool_call", "route", "intent", "slots")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALL_FIELD_NUMBER: _ClassVar[int]
    ROUTE_FIELD_NUMBER: _ClassVar[int]
    INTENT_FIELD_NUMBER: _ClassVar[int]
    SLOTS_FIELD_NUMBER: _ClassVar[int]
    text: str
    tool_call: _types_pb2.ToolCall
    route: _taxonomy_pb2.Route
    intent: _taxonomy_pb2.Intent
    slots: _types_pb2.Slots
    def __init__(self, text: _Optional[str] = ..., tool_call: _Optional[_Union[_types_pb2.ToolCall, _Mapping]] = ..., route: _Optional[_Union[_taxonomy_pb2.Route, str]] = ..., intent: _Optional[_Union[_taxonomy_pb2.Intent, str]] = ..., slots: _Optional[_Union[_types_pb2.Slots, _Mapping]] = ...) -> None: ...

class FailureEntry(_message.Message):
    __slots__ = ("downstream", "code", "message")
    DOWNSTREAM_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    downstream: str
    code: int
    message: str
    def __init__(self, downstream: _Optional[str] = ..., code: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class LookupRequest(_message.Message):
    __slots__ = ("query", "tiers")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    TIERS_FIELD_NUMBER: _ClassVar[int]
    query: CacheQuery
    tiers: _containers.RepeatedScalarFieldContainer[_types_pb2.CacheTier]
    def __init__(self, query: _Optional[_Union[CacheQuery, _Mapping]] = ..., tiers: _Optional[_Iterable[_Union[_types_pb2.CacheTier, str]]] = ...) -> None: ...

class LookupResponse(_message.Message):
    __slots__ = ("hit", "tier", "similarity", "age", "answer", "failure", "rejected_by")
    HIT_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    SIMILARITY_FIELD_NUMBER: _ClassVar[int]
    AGE_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    REJECTED_BY_FIELD_NUMBER: _ClassVar[int]
    hit: bool
    tier: _types_pb2.CacheTier
    similarity: float
    age: _duration_pb2.Duration
    answer: CachedAnswer
    failure: FailureEntry
    rejected_by: str
    def __init__(self, hit: _Optional[bool] = ..., tier: _Optional[_Union[_types_pb2.CacheTier, str]] = ..., similarity: _Optional[float] = ..., age: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., answer: _Optional[_Union[CachedAnswer, _Mapping]] = ..., failure: _Optional[_Union[FailureEntry, _Mapping]] = ..., rejected_by: _Optional[str] = ...) -> None: ...

class StoreRequest(_message.Message):
    __slots__ = ("query", "answer")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    query: CacheQuery
    answer: CachedAnswer
    def __init__(self, query: _Optional[_Union[CacheQuery, _Mapping]] = ..., answer: _Optional[_Union[CachedAnswer, _Mapping]] = ...) -> None: ...

class StoreResponse(_message.Message):
    __slots__ = ("outcome", "ttl")
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    outcome: StoreOutcome
    ttl: _duration_pb2.Duration
    def __init__(self, outcome: _Optional[_Union[StoreOutcome, str]] = ..., ttl: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class StoreFailureRequest(_message.Message):
    __slots__ = ("query", "failure")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    query: CacheQuery
    failure: FailureEntry
    def __init__(self, query: _Optional[_Union[CacheQuery, _Mapping]] = ..., failure: _Optional[_Union[FailureEntry, _Mapping]] = ...) -> None: ...

class StoreFailureResponse(_message.Message):
    __slots__ = ("outcome", "ttl")
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    outcome: StoreOutcome
    ttl: _duration_pb2.Duration
    def __init__(self, outcome: _Optional[_Union[StoreOutcome, str]] = ..., ttl: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class ClearFailuresRequest(_message.Message):
    __slots__ = ("downstream",)
    DOWNSTREAM_FIELD_NUMBER: _ClassVar[int]
    downstream: str
    def __init__(self, downstream: _Optional[str] = ...) -> None: ...

class ClearFailuresResponse(_message.Message):
    __slots__ = ("removed",)
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    removed: int
    def __init__(self, removed: _Optional[int] = ...) -> None: ...

class InvalidateRequest(_message.Message):
    __slots__ = ("user_id", "intent")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    INTENT_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    intent: _taxonomy_pb2.Intent
    def __init__(self, user_id: _Optional[str] = ..., intent: _Optional[_Union[_taxonomy_pb2.Intent, str]] = ...) -> None: ...

class InvalidateResponse(_message.Message):
    __slots__ = ("removed",)
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    removed: int
    def __init__(self, removed: _Optional[int] = ...) -> None: ...

class StatsRequest(_message.Message):
    __slots__ = ("reset",)
    RESET_FIELD_NUMBER: _ClassVar[int]
    reset: bool
    def __init__(self, reset: _Optional[bool] = ...) -> None: ...

class LatencySummary(_message.Message):
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

class StatsResponse(_message.Message):
    __slots__ = ("hits_by_tier", "misses", "rejections_by_guard", "stores", "skipped", "dropped", "lookup_latency", "redis_up", "corrupt_entries")
    class HitsByTierEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class RejectionsByGuardEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class LookupLatencyEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: LatencySummary
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[LatencySummary, _Mapping]] = ...) -> None: ...
    HITS_BY_TIER_FIELD_NUMBER: _ClassVar[int]
    MISSES_FIELD_NUMBER: _ClassVar[int]
    REJECTIONS_BY_GUARD_FIELD_NUMBER: _ClassVar[int]
    STORES_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    LOOKUP_LATENCY_FIELD_NUMBER: _ClassVar[int]
    REDIS_UP_FIELD_NUMBER: _ClassVar[int]
    CORRUPT_ENTRIES_FIELD_NUMBER: _ClassVar[int]
    hits_by_tier: _containers.ScalarMap[str, int]
    misses: int
    rejections_by_guard: _containers.ScalarMap[str, int]
    stores: int
    skipped: int
    dropped: int
    lookup_latency: _containers.MessageMap[str, LatencySummary]
    redis_up: bool
    corrupt_entries: int
    def __init__(self, hits_by_tier: _Optional[_Mapping[str, int]] = ..., misses: _Optional[int] = ..., rejections_by_guard: _Optional[_Mapping[str, int]] = ..., stores: _Optional[int] = ..., skipped: _Optional[int] = ..., dropped: _Optional[int] = ..., lookup_latency: _Optional[_Mapping[str, LatencySummary]] = ..., redis_up: _Optional[bool] = ..., corrupt_entries: _Optional[int] = ...) -> None: ...
