import datetime

from alice.common.v1 import taxonomy_pb2 as _taxonomy_pb2
from alice.common.v1 import types_pb2 as _types_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ParseRequest(_message.Message):
    __slots__ = ("text", "reference_time", "time_zone")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_TIME_FIELD_NUMBER: _ClassVar[int]
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    text: str
    reference_time: _timestamp_pb2.Timestamp
    time_zone: str
    def __init__(self, text: _Optional[str] = ..., reference_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., time_zone: _Optional[str] = ...) -> None: ...

class IntentScore(_message.Message):
    __slots__ = ("intent", "probability")
    INTENT_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    intent: _taxonomy_pb2.Intent
    probability: float
    def __init__(self, intent: _Optional[_Union[_taxonomy_pb2.Intent, str]] = ..., probability: _Optional[float] = ...) -> None: ...

class ParseResponse(_message.Message):
    __slots__ = ("intent", "confidence", "abstained", "slots", "route_hint", "alternatives", "normalized_text", "missing_slots")
    INTENT_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    ABSTAINED_FIELD_NUMBER: _ClassVar[int]
    SLOTS_FIELD_NUMBER: _ClassVar[int]
    ROUTE_HINT_FIELD_NUMBER: _ClassVar[int]
    ALTERNATIVES_FIELD_NUMBER: _ClassVar[int]
    NORMALIZED_TEXT_FIELD_NUMBER: _ClassVar[int]
    MISSING_SLOTS_FIELD_NUMBER: _ClassVar[int]
    intent: _taxonomy_pb2.Intent
    confidence: float
    abstained: bool
    slots: _types_pb2.Slots
    route_hint: _taxonomy_pb2.Route
    alternatives: _containers.RepeatedCompositeFieldContainer[IntentScore]
    normalized_text: str
    missing_slots: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, intent: _Optional[_Union[_taxonomy_pb2.Intent, str]] = ..., confidence: _Optional[float] = ..., abstained: _Optional[bool] = ..., slots: _Optional[_Union[_types_pb2.Slots, _Mapping]] = ..., route_hint: _Optional[_Union[_taxonomy_pb2.Route, str]] = ..., alternatives: _Optional[_Iterable[_Union[IntentScore, _Mapping]]] = ..., normalized_text: _Optional[str] = ..., missing_slots: _Optional[_Iterable[str]] = ...) -> None: ...

class EmbedRequest(_message.Message):
    __slots__ = ("text",)
    TEXT_FIELD_NUMBER: _ClassVar[int]
    text: str
    def __init__(self, text: _Optional[str] = ...) -> None: ...

class EmbedResponse(_message.Message):
    __slots__ = ("embedding", "model")
    EMBEDDING_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    embedding: _containers.RepeatedScalarFieldContainer[float]
    model: str
    def __init__(self, embedding: _Optional[_Iterable[float]] = ..., model: _Optional[str] = ...) -> None: ...
