"""The JSON tool-call contract: a JSON schema built from the taxonomy, and validation into a typed ToolCall."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from alice import taxonomy
from alice.common.v1 import types_pb2
from llm_svc.backends import Choice

NO_TOOL = "none"
NO_TOOL_INTENTS: tuple[str, ...] = tuple(i for i in taxonomy.INTENTS if taxonomy.tool_for(i) is None)

_DATE = {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}
_START = {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2})?$"}
_NAME = {"type": "string", "minLength": 1, "maxLength": 40}
_SLOT_SCHEMAS: dict[str, dict[str, Any]] = {
    "city": _NAME,
    "date": _DATE,
    "start": _START,
    "new_start": _START,
    "attendees": {"type": "array", "items": _NAME, "minItems": 1, "maxItems": 8},
    "title": {"type": "string", "minLength": 1, "maxLength": 60},
    "to": {"type": "string", "minLength": 1, "maxLength": 80},
    "duration_s": {"type": "integer"},
}

TOOL_ARGUMENTS: dict[str, tuple[str, ...]] = {
    "time.now": (),
    "weather.lookup": ("city", "date"),
    "calendar.create_draft": ("start", "attendees", "title"),
    "calendar.move": ("new_start", "attendees"),
    "calendar.list": ("date",),
    "email.create_draft": ("to",),
    "timer.set": ("duration_s",),
    "memory.query": (),
}
"""Which slots each tool takes (spec/intents.md), in the order the model writes them."""

if set(TOOL_ARGUMENTS) != set(taxonomy.TOOLS):  # the taxonomy is the source of truth; fail at import on drift
    raise RuntimeError(f"TOOL_ARGUMENTS {sorted(TOOL_ARGUMENTS)} != taxonomy tools {sorted(taxonomy.TOOLS)}")

_INTENT_BY_TOOL = {taxonomy.tool_for(i): i for i in taxonomy.INTENTS if taxonomy.tool_for(i)}
MAX_TIMER_S = 7 * 24 * 3600


def _arguments_schema(tool: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {slot: _SLOT_SCHEMAS[slot] for slot in TOOL_ARGUMENTS[tool]},
        "additionalProperties": False,
    }


def _compact(value: object) -> str:
    """JSON as the few-shot examples write it (llm_svc/prompts.py): no spaces, UTF-8 kept."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def tool_call_choices(*, arguments: bool = True) -> tuple[Choice, ...]:
    """The language of `tool_call_schema` as literal prefixes, for back ends that decode themselves.

    Each tool call starts `{"tool":"<tool>"`; with arguments it continues `,"arguments` and, under the
    grammar, `":` and an object under that tool's argument schema (tools without arguments are spelled out).
    """
    choices: list[Choice] = []
    for tool in taxonomy.TOOLS:
        head = '{"tool":' + _compact(tool)
        if not arguments:
            choices.append(Choice(head, suffix="}"))
        elif TOOL_ARGUMENTS[tool]:
            choices.append(Choice(head + ',"arguments', _arguments_schema(tool), "}", lead='":'))
        else:
            choices.append(Choice(_compact({"tool": tool, "arguments": {}})))
    choices += [Choice(_compact({"tool": NO_TOOL, "intent": intent})) for intent in NO_TOOL_INTENTS]
    return tuple(choices)


def tool_call_schema(*, arguments: bool = True) -> dict[str, Any]:
    """JSON schema of one tool call: `{"tool": <canonical tool>, "arguments": {...}}` or `{"tool": "none", ...}`.

    With `arguments=False` only the tool is chosen (`{"tool": "weather.lookup"}`): a few output tokens instead
    of ~35, for callers that take the arguments from the deterministic NLU slots.
    """
    branches: list[dict[str, Any]] = []
    if not arguments:
        branches.append({
            "type": "object",
            "properties": {"tool": {"enum": list(taxonomy.TOOLS)}},
            "required": ["tool"],
            "additionalProperties": False,
        })
    for tool in taxonomy.TOOLS if arguments else ():
        branches.append({
            "type": "object",
            "properties": {"tool": {"const": tool}, "arguments": _arguments_schema(tool)},
            "required": ["tool", "arguments"],
            "additionalProperties": False,
        })
    branches.append({
        "type": "object",
        "properties": {"tool": {"const": NO_TOOL}, "intent": {"enum": list(NO_TOOL_INTENTS)}},
        "required": ["tool", "intent"],
        "additionalProperties": False,
    })
    return {"anyOf": branches}


class ToolCallError(ValueError):
    """Model output that is not a valid tool call; the message says what is wrong (in Swedish-neutral terms)."""


@dataclass(frozen=True)
class ParsedCall:
    intent: str
    arguments: dict[str, object]
    proto: types_pb2.ToolCall


def parse_tool_call(text: str) -> ParsedCall:
    """Validate model output against the contract and the taxonomy; raises ToolCallError."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ToolCallError(f"not valid JSON ({error.msg} at position {error.pos})") from None
    if not isinstance(data, dict):
        raise ToolCallError("expected a JSON object")
    tool = data.get("tool")
    if tool == NO_TOOL:
        intent = data.get("intent")
        if intent not in NO_TOOL_INTENTS or set(data) - {"tool", "intent"}:
            raise ToolCallError(f"tool none needs intent one of {', '.join(NO_TOOL_INTENTS)} and nothing else")
        return ParsedCall(str(intent), {}, taxonomy.tool_call_to_proto(str(intent), {}))
    if not isinstance(tool, str) or tool not in TOOL_ARGUMENTS:
        raise ToolCallError(f"unknown tool {tool!r}; known: {', '.join(TOOL_ARGUMENTS)}, none")
    arguments = data.get("arguments", {})
    if not isinstance(arguments, dict) or set(data) - {"tool", "arguments"}:
        raise ToolCallError("expected {\"tool\": ..., \"arguments\": {...}}")
    extra = set(arguments) - set(TOOL_ARGUMENTS[tool])
    if extra:
        raise ToolCallError(f"tool {tool} takes no argument(s) {', '.join(sorted(extra))}")
    _check_values(arguments)
    intent = _INTENT_BY_TOOL[tool]
    try:
        proto = taxonomy.tool_call_to_proto(intent, arguments)
    except ValueError as error:  # TaxonomyError, or the calendar's own check of a day such as 2026-02-30
        raise ToolCallError(str(error)) from None
    return ParsedCall(intent, taxonomy.slots_from_proto(proto.arguments), proto)


def _check_values(arguments: Mapping[str, object]) -> None:
    for key in ("city", "title", "to"):
        value = arguments.get(key)
        if isinstance(value, str) and not value.strip():
            raise ToolCallError(f"{key} must not be empty")
    attendees = arguments.get("attendees")
    if isinstance(attendees, list) and any(isinstance(a, str) and not a.strip() for a in attendees):
        raise ToolCallError("attendees must not contain empty names")
    duration = arguments.get("duration_s")
    if isinstance(duration, int) and not isinstance(duration, bool) and not 0 < duration <= MAX_TIMER_S:
        raise ToolCallError(f"duration_s must be between 1 and {MAX_TIMER_S}")
