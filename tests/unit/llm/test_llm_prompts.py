"""Prompts: the reference-date table follows spec/intents.md; examples resolve against the reference day."""

from __future__ import annotations

import datetime as dt
import json

from llm_svc.prompts import answer_messages, chatml, date_table, repair_messages, tool_messages
from llm_svc.toolcall import parse_tool_call

REFERENCE = dt.datetime(2026, 3, 10, 9, 0)  # a Tuesday


def test_date_table_matches_the_spec_examples() -> None:
    table = {word: day.isoformat() for word, day in date_table(REFERENCE.date()).items()}
    assert table["idag"] == "2026-03-10"
    assert table["imorgon"] == "2026-03-11"
    assert table["i övermorgon"] == "2026-03-12"
    assert table["fredag"] == "2026-03-13"
    assert table["måndag"] == "2026-03-16"
    assert table["nästa tisdag"] == "2026-03-17"


def test_few_shot_examples_are_valid_calls_resolved_to_the_reference_day() -> None:
    messages = tool_messages("väder i Kiruna", REFERENCE)
    assert messages[0].role == "system" and "2026-03-10" in messages[0].content
    assert messages[-1].content == "väder i Kiruna"
    answers = [m.content for m in messages if m.role == "assistant"]
    assert len(answers) >= 10
    for answer in answers:
        parse_tool_call(answer)
    assert any("2026-03-11" in a for a in answers)
    assert "{" not in "".join(json.loads(a).get("arguments", {}).get("date", "") for a in answers)


def test_prefix_is_shared_between_texts_of_the_same_day() -> None:
    first = chatml(tool_messages("hej", REFERENCE))
    second = chatml(tool_messages("boka möte med Anna", REFERENCE.replace(hour=17, minute=42)))
    prefix = first[: first.rindex("<|im_start|>user")]
    assert second.startswith(prefix)
    assert chatml(answer_messages("x")).endswith("<|im_start|>assistant\n")


def test_repair_messages_quote_the_bad_output_and_the_problem() -> None:
    messages = repair_messages(tool_messages("x", REFERENCE), '{"tool":', "not valid JSON")
    assert messages[-2].content == '{"tool":'
    assert "not valid JSON" in messages[-1].content
