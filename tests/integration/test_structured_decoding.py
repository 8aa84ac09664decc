"""Greedy structured decoding on the real 0.5B model: choices by token trie, lazily checked JSON grammar.

Short prompts keep this fast; the few-shot tool prompt is covered through the service in test_llm_service.py.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from llm_svc.backends import ChatRequest, Choice, Completion, complete
from llm_svc.backends.embedded import EmbeddedLlama, EmbeddedSettings
from llm_svc.config import Config
from llm_svc.models import MODELS, require_model
from llm_svc.prompts import Message
from llm_svc.scheduler import Scheduler


@pytest.fixture(scope="module")
async def micro() -> AsyncIterator[EmbeddedLlama]:
    config = Config.from_env({})
    path = require_model(MODELS["micro"], config.model_dir)
    backend = EmbeddedLlama(path, name=path.stem, settings=EmbeddedSettings(), scheduler=Scheduler("micro"),
                            prefix_keys=("test",))
    await backend.start()
    yield backend
    await backend.aclose()


def ask(text: str) -> list[Message]:
    return [Message("system", "Du svarar alltid med JSON."), Message("user", text)]


async def test_output_is_exactly_one_of_the_choices(micro: EmbeddedLlama) -> None:
    choices = (Choice('{"svar":"ja"}'), Choice('{"svar":"nej"}'), Choice('{"svar":"kanske"}'))
    for question in ("Är Stockholm Sveriges huvudstad?", "Är Oslo i Sverige?"):
        result = await complete(micro, ChatRequest(ask(question), max_tokens=16, choices=choices,
                                                   prefix_key="test"))
        assert result.text in {c.prefix for c in choices}
        assert result.extra["model_steps"] <= 2  # the shared '{"svar":"' is forced: one step for the branch


async def test_the_grammar_wins_when_the_greedy_token_breaks_it(micro: EmbeddedLlama) -> None:
    """The model wants to answer in words; the schema demands an integer, so full grammar passes must happen."""
    choice = Choice('{"antal":', {"enum": [1, 2, 3]}, "}")
    result = await complete(micro, ChatRequest(ask("Vilken är Sveriges huvudstad? Svara med namnet."),
                                               max_tokens=12, choices=(choice,), prefix_key="test"))
    assert result.finish_reason == "stop", result
    data = json.loads(result.text)
    assert isinstance(data["antal"], int) and data["antal"] in (1, 2, 3)
    assert result.extra["grammar_full_passes"] >= 1


async def test_a_schema_alone_gives_valid_json(micro: EmbeddedLlama) -> None:
    schema = {"type": "object", "properties": {"stad": {"type": "string", "maxLength": 20}},
              "required": ["stad"], "additionalProperties": False}
    result = await complete(micro, ChatRequest(ask("Vilken är Sveriges huvudstad? Svara {\"stad\": ...}"),
                                               max_tokens=24, json_schema=schema, prefix_key="test"))
    assert set(json.loads(result.text)) == {"stad"}
    assert isinstance(result, Completion) and result.finish_reason == "stop"


async def test_the_token_limit_counts_forced_tokens(micro: EmbeddedLlama) -> None:
    choices = (Choice('{"verktyg":"kalender.skapa_utkast"}'), Choice('{"verktyg":"väder"}'))
    result = await complete(micro, ChatRequest(ask("Boka ett möte"), max_tokens=3, choices=choices,
                                               prefix_key="test"))
    assert result.finish_reason == "length" and result.output_tokens == 3
    with pytest.raises(json.JSONDecodeError):
        json.loads(result.text)
