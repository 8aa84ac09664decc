from google.protobuf import descriptor_pb2 as _descriptor_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

DESCRIPTOR: _descriptor.FileDescriptor

class Intent(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INTENT_UNSPECIFIED: _ClassVar[Intent]
    INTENT_GREETING_HELLO: _ClassVar[Intent]
    INTENT_TIME_NOW: _ClassVar[Intent]
    INTENT_WEATHER_LOOKUP: _ClassVar[Intent]
    INTENT_CALENDAR_CREATE_DRAFT: _ClassVar[Intent]
    INTENT_CALENDAR_MOVE: _ClassVar[Intent]
    INTENT_CALENDAR_LIST: _ClassVar[Intent]
    INTENT_EMAIL_CREATE_DRAFT: _ClassVar[Intent]
    INTENT_TIMER_SET: _ClassVar[Intent]
    INTENT_MEMORY_QUERY: _ClassVar[Intent]
    INTENT_INFO_QUERY: _ClassVar[Intent]

class Route(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROUTE_UNSPECIFIED: _ClassVar[Route]
    ROUTE_FAST: _ClassVar[Route]
    ROUTE_MICRO: _ClassVar[Route]
    ROUTE_PLANNER: _ClassVar[Route]
    ROUTE_CACHE: _ClassVar[Route]
INTENT_UNSPECIFIED: Intent
INTENT_GREETING_HELLO: Intent
INTENT_TIME_NOW: Intent
INTENT_WEATHER_LOOKUP: Intent
INTENT_CALENDAR_CREATE_DRAFT: Intent
INTENT_CALENDAR_MOVE: Intent
INTENT_CALENDAR_LIST: Intent
INTENT_EMAIL_CREATE_DRAFT: Intent
INTENT_TIMER_SET: Intent
INTENT_MEMORY_QUERY: Intent
INTENT_INFO_QUERY: Intent
ROUTE_UNSPECIFIED: Route
ROUTE_FAST: Route
ROUTE_MICRO: Route
ROUTE_PLANNER: Route
ROUTE_CACHE: Route
CANONICAL_NAME_FIELD_NUMBER: _ClassVar[int]
canonical_name: _descriptor.FieldDescriptor
TOOL_NAME_FIELD_NUMBER: _ClassVar[int]
tool_name: _descriptor.FieldDescriptor
PERSONAL_FIELD_NUMBER: _ClassVar[int]
personal: _descriptor.FieldDescriptor
