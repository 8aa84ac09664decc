import datetime

from alice.common.v1 import types_pb2 as _types_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ModelRole(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODEL_ROLE_UNSPECIFIED: _ClassVar[ModelRole]
    MODEL_ROLE_MICRO: _ClassVar[ModelRole]
    MODEL_ROLE_PLANNER: _ClassVar[ModelRole]

class GenerationTask(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    GENERATION_TASK_UNSPECIFIED: _ClassVar[GenerationTask]
    GENERATION_TASK_ANSWER_QUESTION: _ClassVar[GenerationTask]
MODEL_ROLE_UNSPECIFIED: ModelRole
MODEL_ROLE_MICRO: ModelRole
MODEL_ROLE_PLANNER: ModelRole
GENERATION_TASK_UNSPECIFIED: GenerationTask
GENERATION_TASK_ANSWER_QUESTION: GenerationTask

class GenerationStats(_message.Message):
    __slots__ = ("model", "input_tokens", "output_tokens", "queue_ms", "ttft_ms", "total_ms")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    QUEUE_MS_FIELD_NUMBER: _ClassVar[int]
    TTFT_MS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_MS_FIELD_NUMBER: _ClassVar[int]
    model: str
    input_tokens: int
    output_tokens: int
    queue_ms: float
    ttft_ms: float
    total_ms: float
    def __init__(self, model: _Optional[str] = ..., input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., queue_ms: _Optional[float] = ..., ttft_ms: _Optional[float] = ..., total_ms: _Optional[float] = ...) -> None: ...

class SelectToolRequest(_message.Message):
    __slots__ = ("text", "role", "reference_time", "time_zone", "hint", "max_tokens", "temperature")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_TIME_FIELD_NUMBER: _ClassVar[int]
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    HINT_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    text: str
    role: ModelRole
    reference_time: _timestamp_pb2.Timestamp
    time_zone: str
    hint: _types_pb2.ToolCall
    max_tokens: int
    temperature: float
    def __init__(self, text: _Optional[str] = ..., role: _Optional[_Union[ModelRole, str]] = ..., reference_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., time_zone: _Optional[str] = ..., hint: _Optional[_Union[_types_pb2.ToolCall, _Mapping]] = ..., max_tokens: _Optional[int] = ..., temperature: _Optional[float] = ...) -> None: ...

class SelectToolResponse(_message.Message):
    __slots__ = ("tool_call", "repaired", "stats")
    TOOL_CALL_FIELD_NUMBER: _ClassVar[int]
    REPAIRED_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    tool_call: _types_pb2.ToolCall
    repaired: bool
    stats: GenerationStats
    def __init__(self, tool_call: _Optional[_Union[_types_pb2.ToolCall, _Mapping]] = ..., repaired: _Optional[bool] = ..., stats: _Optional[_Union[GenerationStats, _Mapping]] = ...) -> None: ...

class GenerateRequest(_message.Message):
    __slots__ = ("task", "text", "role", "max_tokens", "temperature")
    TASK_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    task: GenerationTask
    text: str
    role: ModelRole
    max_tokens: int
    temperature: float
    def __init__(self, task: _Optional[_Union[GenerationTask, str]] = ..., text: _Optional[str] = ..., role: _Optional[_Union[ModelRole, str]] = ..., max_tokens: _Optional[int] = ..., temperature: _Optional[float] = ...) -> None: ...

class GenerateStreamRequest(_message.Message):
    __slots__ = ("request",)
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    request: GenerateRequest
    def __init__(self, request: _Optional[_Union[GenerateRequest, _Mapping]] = ...) -> None: ...

class GenerateResponse(_message.Message):
    __slots__ = ("text", "stats")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    text: str
    stats: GenerationStats
    def __init__(self, text: _Optional[str] = ..., stats: _Optional[_Union[GenerationStats, _Mapping]] = ...) -> None: ...

class GenerateStreamResponse(_message.Message):
    __slots__ = ("delta", "stats")
    DELTA_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    delta: str
    stats: GenerationStats
    def __init__(self, delta: _Optional[str] = ..., stats: _Optional[_Union[GenerationStats, _Mapping]] = ...) -> None: ...
