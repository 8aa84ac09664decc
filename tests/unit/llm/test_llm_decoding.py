"""The token trie behind choice decoding: forced tokens skip the model, branches ask it (no model needed)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from llm_svc.backends import Choice
from llm_svc.backends.decoding import TokenTrie
from llm_svc.toolcall import NO_TOOL_INTENTS, parse_tool_call, tool_call_choices


class RecordingPick:
    """Answers each branch from a script and records what the model would have had to evaluate."""

    def __init__(self, answers: Sequence[int]) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[list[int], list[int]]] = []

    def __call__(self, pending: list[int], candidates: Sequence[int]) -> int:
        self.calls.append((list(pending), sorted(candidates)))
        return self.answers.pop(0)


def test_forced_tokens_need_no_model_step_and_branches_get_the_tokens_since_the_last_one() -> None:
    trie = TokenTrie([[1, 2, 3, 10, 11], [1, 2, 3, 20], [1, 2, 3, 10, 12, 13]])
    pick = RecordingPick([10, 12])
    index, tokens, tail = trie.walk(pick)
    assert (index, tokens, tail) == (2, [1, 2, 3, 10, 12, 13], [12, 13])
    assert pick.calls == [([1, 2, 3], [10, 20]), ([10], [11, 12])]


def test_a_single_choice_is_decided_without_the_model() -> None:
    pick = RecordingPick([])
    assert TokenTrie([[5, 6, 7]]).walk(pick) == (0, [5, 6, 7], [5, 6, 7])
    assert pick.calls == []


@pytest.mark.parametrize("sequences", [[[1, 2], [1, 2, 3]], [[1, 2, 3], [1, 2]], [[1, 2], [1, 2]], [[]], []])
def test_choices_must_be_prefix_free_and_non_empty(sequences: list[list[int]]) -> None:
    with pytest.raises(ValueError):
        TokenTrie(sequences)


def test_tool_call_choices_spell_every_tool_and_complete_calls_validate() -> None:
    for arguments in (True, False):
        choices = tool_call_choices(arguments=arguments)
        prefixes = [choice.prefix for choice in choices]
        assert len(set(prefixes)) == len(prefixes)
        for choice in choices:
            if choice.schema is None:  # a whole call: it must validate as it stands
                parse_tool_call(choice.prefix + choice.suffix)
        nones = [c for c in choices if c.prefix.startswith('{"tool":"none"')]
        assert [parse_tool_call(c.prefix).intent for c in nones] == list(NO_TOOL_INTENTS)


def test_a_choice_with_arguments_continues_with_an_object_and_closes() -> None:
    weather = next(c for c in tool_call_choices() if '"weather.lookup"' in c.prefix)
    assert weather == Choice('{"tool":"weather.lookup","arguments', weather.schema, "}", lead='":')
    assert weather.schema is not None and set(weather.schema["properties"]) == {"city", "date"}
    call = parse_tool_call(weather.prefix + weather.lead + '{"city":"Luleå","date":"2026-03-12"}' + weather.suffix)
    assert call.arguments == {"city": "Luleå", "date": "2026-03-12"}
