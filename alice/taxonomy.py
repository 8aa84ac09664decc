"""The one bridge between the proto taxonomy and the canonical strings used in JSON, data and domain code."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from google.protobuf.descriptor import EnumDescriptor

from alice.common.v1 import taxonomy_pb2, types_pb2

Intent = taxonomy_pb2.Intent
Route = taxonomy_pb2.Route
CacheTier = types_pb2.CacheTier


class TaxonomyError(ValueError):
    """A canonical name or slot value that the taxonomy does not know."""


def _options(descriptor: EnumDescriptor, extension: Any) -> dict[int, Any]:
    return {v.number: v.GetOptions().Extensions[extension] for v in descriptor.values if v.number != 0}


_INTENT_NAMES: dict[int, str] = _options(Intent.DESCRIPTOR, taxonomy_pb2.canonical_name)
_INTENT_BY_NAME: dict[str, Intent.ValueType] = {name: Intent.ValueType(n) for n, name in _INTENT_NAMES.items()}
_TOOLS: dict[int, str] = {k: v for k, v in _options(Intent.DESCRIPTOR, taxonomy_pb2.tool_name).items() if v}
_PERSONAL: frozenset[int] = frozenset(k for k, v in _options(Intent.DESCRIPTOR, taxonomy_pb2.personal).items() if v)
_ROUTE_NAMES: dict[int, str] = _options(Route.DESCRIPTOR, taxonomy_pb2.canonical_name)
_ROUTE_BY_NAME: dict[str, Route.ValueType] = {name: Route.ValueType(n) for n, name in _ROUTE_NAMES.items()}
_TIER_NAMES: dict[int, str] = _options(CacheTier.DESCRIPTOR, taxonomy_pb2.canonical_name)

INTENTS: tuple[str, ...] = tuple(_INTENT_NAMES.values())
"""Every canonical intent name, in enum order."""
TOOLS: tuple[str, ...] = tuple(_TOOLS.values())
"""Every canonical tool name."""
ROUTES: tuple[str, ...] = tuple(_ROUTE_NAMES.values())
NEVER_CACHE: frozenset[str] = frozenset(
    {"time.now", "timer.set", "calendar.create_draft", "calendar.move", "email.create_draft"}
)
"""Answers that change every second (time.now) or come from tools with side effects (drafts, timers): the cache
never stores them (cache_svc.policy), so the router does not offer them (no Store call)."""


def intent_name(intent: int) -> str:
    """Canonical name of an intent enum value ("weather.lookup")."""
    try:
        return _INTENT_NAMES[intent]
    except KeyError:
        raise TaxonomyError(f"unknown intent enum value {intent}") from None


def intent_value(name: str) -> Intent.ValueType:
    """Enum value of a canonical intent name."""
    try:
        return _INTENT_BY_NAME[name]
    except KeyError:
        raise TaxonomyError(f"unknown intent {name!r}; known: {', '.join(INTENTS)}") from None


def tool_for(intent: str) -> str | None:
    """The tool an intent maps to, or None for intents without a tool."""
    return _TOOLS.get(intent_value(intent))


def is_personal(intent: str) -> bool:
    """True when answers to this intent depend on one user's personal data."""
    return intent_value(intent) in _PERSONAL


def route_name(route: int) -> str:
    try:
        return _ROUTE_NAMES[route]
    except KeyError:
        raise TaxonomyError(f"unknown route enum value {route}") from None


def route_value(name: str) -> Route.ValueType:
    try:
        return _ROUTE_BY_NAME[name]
    except KeyError:
        raise TaxonomyError(f"unknown route {name!r}; known: {', '.join(ROUTES)}") from None


def tier_name(tier: int) -> str:
    """Canonical tier name ("l1", "l2", "l3"), or "" for a miss."""
    return _TIER_NAMES.get(tier, "")


# Canonical slot values (spec/intents.md): dates "YYYY-MM-DD", starts "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM".
_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_DATETIME = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})$")
SLOT_KEYS: tuple[str, ...] = ("city", "date", "start", "new_start", "attendees", "title", "to", "duration_s")


def _date_to_proto(value: str, target: types_pb2.LocalDate) -> None:
    match = _DATE.match(value)
    if not match:
        raise TaxonomyError(f"date {value!r} is not YYYY-MM-DD")
    year, month, day = (int(g) for g in match.groups())
    try:
        dt.date(year, month, day)
    except ValueError as error:
        raise TaxonomyError(f"date {value!r}: {error}") from None
    target.year, target.month, target.day = year, month, day


def _calendar_time_to_proto(value: str, target: types_pb2.CalendarTime) -> None:
    match = _DATETIME.match(value)
    if match:
        year, month, day, hours, minutes = (int(g) for g in match.groups())
        try:
            dt.datetime(year, month, day, hours, minutes)
        except ValueError as error:
            raise TaxonomyError(f"time {value!r}: {error}") from None
        target.date.year, target.date.month, target.date.day = year, month, day
        target.time.hours, target.time.minutes = hours, minutes
    else:
        _date_to_proto(value, target.date)


def _date_from_proto(value: types_pb2.LocalDate) -> str:
    return f"{value.year:04d}-{value.month:02d}-{value.day:02d}"


def _calendar_time_from_proto(value: types_pb2.CalendarTime) -> str:
    day = _date_from_proto(value.date)
    if value.HasField("time"):
        return f"{day}T{value.time.hours:02d}:{value.time.minutes:02d}"
    return day


def slots_to_proto(slots: Mapping[str, object]) -> types_pb2.Slots:
    """Canonical JSON slots -> typed proto slots; raises TaxonomyError on unknown keys or bad values."""
    message = types_pb2.Slots()
    for key, value in slots.items():
        if key in ("city", "title", "to"):
            if not isinstance(value, str):
                raise TaxonomyError(f"slot {key} must be a string")
            setattr(message, key, value)
        elif key == "date":
            _date_to_proto(str(value), message.date)
        elif key in ("start", "new_start"):
            _calendar_time_to_proto(str(value), getattr(message, key))
        elif key == "attendees":
            if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
                raise TaxonomyError("slot attendees must be a list of names")
            message.attendees.extend(value)
        elif key == "duration_s":
            if isinstance(value, bool) or not isinstance(value, int):
                raise TaxonomyError("slot duration_s must be an integer")
            message.duration_s = value
        else:
            raise TaxonomyError(f"unknown slot {key!r}; known: {', '.join(SLOT_KEYS)}")
    return message


def slots_from_proto(message: types_pb2.Slots) -> dict[str, object]:
    """Typed proto slots -> canonical JSON slots (only the fields that are set)."""
    slots: dict[str, object] = {}
    if message.HasField("city"):
        slots["city"] = message.city
    if message.HasField("title"):
        slots["title"] = message.title
    if message.HasField("to"):
        slots["to"] = message.to
    if message.HasField("date"):
        slots["date"] = _date_from_proto(message.date)
    if message.HasField("start"):
        slots["start"] = _calendar_time_from_proto(message.start)
    if message.HasField("new_start"):
        slots["new_start"] = _calendar_time_from_proto(message.new_start)
    if message.attendees:
        slots["attendees"] = list(message.attendees)
    if message.HasField("duration_s"):
        slots["duration_s"] = message.duration_s
    return {key: slots[key] for key in SLOT_KEYS if key in slots}


def tool_call_to_proto(intent: str, arguments: Mapping[str, object]) -> types_pb2.ToolCall:
    return types_pb2.ToolCall(intent=intent_value(intent), arguments=slots_to_proto(arguments))


def tool_call_from_proto(call: types_pb2.ToolCall) -> tuple[str, dict[str, object]]:
    return intent_name(call.intent), slots_from_proto(call.arguments)
