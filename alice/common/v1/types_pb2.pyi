from alice.common.v1 import taxonomy_pb2 as _taxonomy_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CacheTier(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CACHE_TIER_UNSPECIFIED: _ClassVar[CacheTier]
    CACHE_TIER_L1_EXACT: _ClassVar[CacheTier]
    CACHE_TIER_L2_SEMANTIC: _ClassVar[CacheTier]
    CACHE_TIER_L3_NEGATIVE: _ClassVar[CacheTier]
CACHE_TIER_UNSPECIFIED: CacheTier
CACHE_TIER_L1_EXACT: CacheTier
CACHE_TIER_L2_SEMANTIC: CacheTier
CACHE_TIER_L3_NEGATIVE: CacheTier

class LocalDate(_message.Message):
    __slots__ = ("year", "month", "day")
    YEAR_FIELD_NUMBER: _ClassVar[int]
    MONTH_FIELD_NUMBER: _ClassVar[int]
    DAY_FIELD_NUMBER: _ClassVar[int]
    year: int
    month: int
    day: int
    def __init__(self, year: _Optional[int] = ..., month: _Optional[int] = ..., day: _Optional[int] = ...) -> None: ...

class TimeOfDay(_message.Message):
    __slots__ = ("hours", "minutes")
    HOURS_FIELD_NUMBER: _ClassVar[int]
    MINUTES_FIELD_NUMBER: _ClassVar[int]
    hours: int
    minutes: int
    def __init__(self, hours: _Optional[int] = ..., minutes: _Optional[int] = ...) -> None: ...

class CalendarTime(_message.Message):
    __slots__ = ("date", "time")
    DATE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    date: LocalDate
    time: TimeOfDay
    def __init__(self, date: _Optional[_Union[LocalDate, _Mapping]] = ..., time: _Optional[_Union[TimeOfDay, _Mapping]] = ...) -> None: ...

class Slots(_message.Message):
    __slots__ = ("city", "date", "start", "new_start", "attendees", "title", "to", "duration_s")
    CITY_FIELD_NUMBER: _ClassVar[int]
    DATE_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    NEW_START_FIELD_NUMBER: _ClassVar[int]
    ATTENDEES_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    DURATION_S_FIELD_NUMBER: _ClassVar[int]
    city: str
    date: LocalDate
    start: CalendarTime
    new_start: CalendarTime
    attendees: _containers.RepeatedScalarFieldContainer[str]
    title: str
    to: str
    duration_s: int
    def __init__(self, city: _Optional[str] = ..., date: _Optional[_Union[LocalDate, _Mapping]] = ..., start: _Optional[_Union[CalendarTime, _Mapping]] = ..., new_start: _Optional[_Union[CalendarTime, _Mapping]] = ..., attendees: _Optional[_Iterable[str]] = ..., title: _Optional[str] = ..., to: _Optional[str] = ..., duration_s: _Optional[int] = ...) -> None: ...

class ToolCall(_message.Message):
    __slots__ = ("intent", "arguments")
    INTENT_FIELD_NUMBER: _ClassVar[int]
    ARGUMENTS_FIELD_NUMBER: _ClassVar[int]
    intent: _taxonomy_pb2.Intent
    arguments: Slots
    def __init__(self, intent: _Optional[_Union[_taxonomy_pb2.Intent, str]] = ..., arguments: _Optional[_Union[Slots, _Mapping]] = ...) -> None: ...
