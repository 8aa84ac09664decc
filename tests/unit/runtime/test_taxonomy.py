"""The taxonomy bridge: canonical names and slots round-trip through the protos."""

from __future__ import annotations

import pytest

from alice import taxonomy
from alice.taxonomy import TaxonomyError


def test_every_intent_round_trips() -> None:
    assert len(taxonomy.INTENTS) == 10
    for name in taxonomy.INTENTS:
        assert taxonomy.intent_name(taxonomy.intent_value(name)) == name


def test_tools_match_the_spec_table() -> None:
    assert taxonomy.tool_for("weather.lookup") == "weather.lookup"
    assert taxonomy.tool_for("info.query") is None and taxonomy.tool_for("greeting.hello") is None
    assert set(taxonomy.TOOLS) == set(taxonomy.INTENTS) - {"info.query", "greeting.hello"}


def test_personal_intents() -> None:
    assert taxonomy.is_personal("calendar.list") and not taxonomy.is_personal("weather.lookup")


@pytest.mark.parametrize(
    "slots",
    [
        {"city": "Göteborg", "date": "2026-03-13"},
        {"start": "2026-03-11T14:00", "attendees": ["Anna", "Johan"], "title": "budgeten"},
        {"start": "2026-03-11"},
        {"new_start": "2026-03-12T09:30", "attendees": ["Omar"]},
        {"to": "åsa@exempel.se"},
        {"duration_s": 2700},
        {},
    ],
    ids=["weather", "meeting-with-time", "meeting-day-only", "move", "email-idn", "timer", "none"],
)
def test_slots_round_trip(slots: dict[str, object]) -> None:
    assert taxonomy.slots_from_proto(taxonomy.slots_to_proto(slots)) == slots


@pytest.mark.parametrize(
    ("slots", "message"),
    [({"date": "13/3"}, "not YYYY-MM-DD"), ({"date": "2026-02-30"}, "day is out of range"),
     ({"duration_s": "90"}, "must be an integer"), ({"colour": "red"}, "unknown slot")],
    ids=["date-format", "impossible-day", "duration-string", "unknown-key"],
)
def test_bad_slots_are_rejected(slots: dict[str, object], message: str) -> None:
    with pytest.raises(TaxonomyError, match=message):
        taxonomy.slots_to_proto(slots)


def test_unknown_intent_name() -> None:
    with pytest.raises(TaxonomyError, match="unknown intent 'weather'"):
        taxonomy.intent_value("weather")
