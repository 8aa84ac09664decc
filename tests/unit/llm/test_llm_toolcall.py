"""The tool-call contract: schema built from the taxonomy, validation into typed protos."""

from __future__ import annotations

import json

import pytest

from alice import taxonomy
from llm_svc.toolcall import NO_TOOL, NO_TOOL_INTENTS, TOOL_ARGUMENTS, ToolCallError, parse_tool_call, tool_call_schema


def test_schema_offers_every_taxonomy_tool_and_none() -> None:
    tools = [branch["properties"]["tool"]["const"] for branch in tool_call_schema()["anyOf"]]
    assert sorted(tools) == sorted([*taxonomy.TOOLS, NO_TOOL])
    assert set(TOOL_ARGUMENTS) == set(taxonomy.TOOLS)
    assert set(NO_TOOL_INTENTS) == {"greeting.hello", "info.query"}


def test_schema_compiles_to_a_llama_cpp_grammar() -> None:
    llama_grammar = pytest.importorskip("llama_cpp.llama_grammar")
    gbnf = llama_grammar.json_schema_to_gbnf(json.dumps(tool_call_schema()))
    assert "calendar.create_draft" in gbnf


@pytest.mark.parametrize(
    ("text", "intent", "arguments"),
    [
        ('{"tool":"weather.lookup","arguments":{"city":"Luleå","date":"2026-03-12"}}', "weather.lookup",
         {"city": "Luleå", "date": "2026-03-12"}),
        ('{"tool":"calendar.create_draft","arguments":{"start":"2026-03-11T14:30","attendees":["Maria"]}}',
         "calendar.create_draft", {"start": "2026-03-11T14:30", "attendees": ["Maria"]}),
        ('{"tool":"calendar.move","arguments":{"new_start":"2026-03-13"}}', "calendar.move",
         {"new_start": "2026-03-13"}),
        ('{"tool":"timer.set","arguments":{"duration_s":2700}}', "timer.set", {"duration_s": 2700}),
        ('{"tool":"time.now","arguments":{}}', "time.now", {}),
        ('{"tool":"none","intent":"info.query"}', "info.query", {}),
        ('{"tool": "email.create_draft", "arguments": {"to": "per@bücher.de"}}', "email.create_draft",
         {"to": "per@bücher.de"}),
    ],
    ids=["weather", "create", "move-date-only", "timer", "no-arguments", "none", "idn-email"],
)
def test_valid_calls_become_typed_tool_calls(text: str, intent: str, arguments: dict[str, object]) -> None:
    call = parse_tool_call(text)
    assert call.intent == intent
    assert call.arguments == arguments
    assert taxonomy.tool_call_from_proto(call.proto) == (intent, arguments)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"tool":"weather.lookup","arguments":{"city":"Luleå"', "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ('{"tool":"email.send","arguments":{"to":"x"}}', "unknown tool"),
        ('{"tool":"weather.lookup","arguments":{"to":"Anna"}}', "takes no argument"),
        ('{"tool":"weather.lookup","arguments":{"date":"2026-02-30"}}', "day is out of range"),
        ('{"tool":"calendar.create_draft","arguments":{"start":"imorgon"}}', "YYYY-MM-DD"),
        ('{"tool":"timer.set","arguments":{"duration_s":0}}', "between 1 and"),
        ('{"tool":"timer.set","arguments":{"duration_s":"300"}}', "integer"),
        ('{"tool":"none","intent":"weather.lookup"}', "tool none needs"),
        ('{"tool":"email.create_draft","arguments":{"to":"  "}}', "must not be empty"),
    ],
    ids=["truncated", "not-object", "unknown-tool", "foreign-slot", "bad-day", "bad-start", "zero-timer",
         "string-timer", "none-with-tool-intent", "blank-recipient"],
)
def test_invalid_output_is_rejected_with_a_reason(text: str, problem: str) -> None:
    with pytest.raises(ToolCallError, match=problem):
        parse_tool_call(text)


def test_tool_only_schema_and_calls() -> None:
    branches = tool_call_schema(arguments=False)["anyOf"]
    assert branches[0]["properties"]["tool"]["enum"] == list(taxonomy.TOOLS)
    assert parse_tool_call('{"tool":"weather.lookup"}').arguments == {}
