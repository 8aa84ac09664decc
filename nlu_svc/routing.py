"""Route hint: fast, micro or planner, from the classifier's decision, the slots and multi-step detection."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection

from alice import taxonomy
from alice.swedish.text import fold

FAST = "fast"
MICRO = "micro"
PLANNER = "planner"

# Phrases that join two requests ("vad är klockan och sen hur blir vädret"). A bare "och" or "sen" is not
# one: "med Erik och Sara", "tio minuter sen ska jag ..." are single requests. Both parts must also be
# confident requests for different intents (see `is_multi_step`).
_JOINERS = re.compile(
    r"\s*,?\s*\b(?:och\s+(?:sen|sedan|darefter|dessutom|aven|ocksa|efter\s+det|sa)|"
    r"samt|and\s+then|and\s+also)\b\s*|\s*,\s*(?:sen|sedan|darefter)\b\s*"
)


def split_requests(text: str) -> list[str]:
    """The folded text cut at every joining word; empty parts dropped."""
    return [part for part in _JOINERS.split(fold(text)) if part.strip()]


def is_multi_step(text: str, confident_intent: Callable[[str], str | None]) -> bool:
    """True when at least two parts of the text are each a confident request for different intents.

    `confident_intent(part)` returns the intent of a part when the classifier is confident (not
    abstaining), else None. Greetings do not count as a request.
    """
    parts = split_requests(text)
    if len(parts) < 2:
        return False
    intents = {intent for part in parts if (intent := confident_intent(part)) not in (None, "greeting.hello")}
    return len(intents) >= 2


def route_hint(intent: str, *, abstained: bool, confident: bool, missing_slots: Collection[str],
               multi_step: bool) -> str:
    """PLANNER for abstentions, info questions and multi-step requests; FAST for a confident intent with its
    required slots; MICRO for the rest (a tool intent with missing slots or middling confidence)."""
    if abstained or multi_step or intent == "info.query":
        return PLANNER
    if missing_slots or not confident:
        return MICRO
    return FAST


def route_value(route: str) -> int:
    """The proto enum value of a route hint."""
    return taxonomy.route_value(route)
