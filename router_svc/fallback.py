"""Rule-based Swedish intent fallback, used only while the NLU service is unavailable (degraded mode).

It is deliberately simple: keyword rules on diacritic-folded text, no slots. Tool intents then go to an
LLM route that fills the arguments, slotless intents take the fast route, and everything is marked as
degraded in the reply and the trace.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_RULES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (intent, re.compile(pattern))
    for intent, pattern in (
        ("calendar.move", r"\b(flytta|skjut upp|andra tiden|byt tid)"),
        ("calendar.list", r"\b(vad har jag|vilka moten|mitt schema|min kalender|kalendern idag|inbokat)"),
        ("calendar.create_draft", r"\b(boka|lagg in|skapa (ett )?mote|mote med|planera ett)"),
        ("email.create_draft", r"\b(mejl|mail|e-post|epost|skriv till|maila|mejla)"),
        ("timer.set", r"\b(timer|timern|nedrakning|vacka mig om|paminn mig om \d+)"),
        ("memory.query", r"\b(vad sa jag|kommer du ihag|minns du|vad berattade jag|sa jag)"),
        ("weather.lookup", r"\b(vader|vadret|regn|snö|sno|prognos|grader ute|blir det sol)"),
        ("time.now", r"\b(vad (ar|e) klockan|hur (mycket|mkt) (ar|e) klockan|klockan nu|vilken tid|^klocka?n?\W*$"
                     r"|what time|the time|dagens datum)"),
        ("greeting.hello", r"^(hej|hallå|halla|tjena|hejsan|god morgon|god kvall)\W*(alice)?\W*$"),
    )
)


@dataclass(frozen=True)
class FallbackResult:
    intent: str
    confidence: float


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).split())


def classify(text: str) -> FallbackResult:
    """First matching rule wins; anything else is a question for the planner."""
    folded = _fold(text)
    for intent, pattern in _RULES:
        if pattern.search(folded):
            return FallbackResult(intent, 0.5)
    return FallbackResult("info.query", 0.3)
