"""Rule-based Swedish understanding, used only while the NLU service is unavailable (degraded mode).

Keyword rules on the diacritic-folded text choose the intent; the slots come from the same deterministic
extraction the NLU runs (`alice.swedish`). A request whose intent is clear and whose required slots are all
stated takes the fast route, so losing the NLU does not send every tool request to a model.

The rules are conservative, because a wrong tool call is worse than a model route:
- a cue must be a request phrase ("boka", "flytta", "vad är klockan", "kommer du ihåg"), not a topic word;
- a question about the past ("vad sa jag om vädret") is a memory question whatever it is about, and an
  e-mail request that comes first owns what follows ("mejla Anna om att boka ett möte");
- any other text with cues of two intents, a knowledge question ("varför", "skillnaden", "förklara"), a
  negation ("boka inte") or a calendar request without a calendar object ("flytta till Göteborg på fredag")
  goes to a model;
- a text with no cue is a question for the planner.
Everything the fallback answers is marked as degraded in the reply and the trace.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Final

from alice.swedish import extract_slots, fold
from alice.taxonomy import tool_for

CONFIDENCE: Final = 0.5
"""One clear rule match; below the pipeline's clarify threshold, so a missing slot still goes to a model."""
AMBIGUOUS_CONFIDENCE: Final = 0.3

FAST: Final = "fast"
MICRO: Final = "micro"
PLANNER: Final = "planner"

_WD: Final = r"(?:mandag|tisdag|onsdag|torsdag|fredag|lordag|sondag)"
_DAY: Final = rf"(?:idag|i dag|imorgon|i morgon|imorn|imorrn|overmorgon|i overmorgon|{_WD}|den \d+)"
_CAL_NOUN: Final = (
    r"(?:\w*mote[nt]?|\w*moten(?:a)?|meeting|lunch\w*|fika\w*|middag\w*|frukost\w*|traff\w*|samtal\w*|call"
    r"|event|standup|\w*tid(?:en)?|padel\w*|gym\w*|kalender\w*|calendar)"
)


def _rx(*patterns: str) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns))


# Cues per intent, on the folded text (lowercase, å/ä→a, ö→o). Each cue is a way to ask for the intent.
_CUES: Final[dict[str, re.Pattern[str]]] = {
    "memory.query": _rx(
        r"\b(?:vad|va) (?:sa|sade|namnde|berattade) jag\b",
        r"\b(?:har jag|vad har jag) (?:sagt|berattat|namnt|natt)\b",
        r"\b(?:kommer|kmr) du ihag\b", r"\bminns du\b", r"\bdo you remember\b",
        r"\bvad var det (?:jag|for \w+ jag)\b", r"\bjag (?:namnde|berattade om|tipsade dig)\b",
        r"\b(?:sa|sade) jag (?:att|om)\b", r"\bbad dig komma ihag\b", r"\bsom jag sa till dig\b",
        r"\bjag sa\W*$",
    ),
    "email.create_draft": _rx(
        r"\b(?:mejla|maila|emaila)\b",
        r"\b(?:mejl|mejlet|mail|mailet|email|e-mail|e-post\w*|epost\w*|mejlutkast|mailutkast)\b",
        r"\bpa mejlen\b",
    ),
    "calendar.move": _rx(
        r"\b(?:flytt?a|flyttas|flytta fram|boka om|omboka\w*|skjuta?(?: upp| fram)?|senarelagg\w*|tidigarelagg\w*"
        r"|lagga? om|byta? (?:tid|dag|datum)|move|reschedule|postpone)\b",
        rf"\bandra (?:tiden|datum|dag|mitt {_CAL_NOUN}|{_CAL_NOUN})\b",
    ),
    "calendar.create_draft": _rx(
        r"\b(?:boka|booka|book)\b(?! om\b)",
        r"\b(?:lagg|lagga|satt|satta) (?:in|till|upp) (?:ett|en|mig|mote)\b",
        r"\b(?:lagg|lagga) in\b",
        r"\bskapa (?:ett |en )?(?:nytt )?(?:mote|utkast till (?:ett )?mote|kalender\w*|event)\b",
        r"\b(?:satt|satta) (?:ett|in ett) mote\b",
        r"\bplanera (?:in )?(?:ett|en)\b", r"\bnytt mote\b", r"^ett mote med\b",
        r"\b(?:schedule|set up) a (?:meeting|call)\b",
        r"\bfixa ett mote\b", r"\bjag (?:behover|vill ha) ett (?:nytt )?mote\b",
    ),
    "calendar.list": _rx(
        rf"\bvad (?:har|ha) (?:jag|ja) (?:for (?:moten|mote|planer|tider)|inbokat|bokat|planerat|pa schemat"
        rf"|i kalendern|{_DAY})\b",
        r"\bvilka moten har jag\b", r"\b(?:ar|finns) det (?:nagot|nat) i kalendern\b",
        r"\bhar jag (?:nagot|nat|nagra|nagon)? ?(?:mote|moten|inbokat|bokat|planerat)\b",
        r"\bhar jag (?:nat|nagot) (?:pa|i|idag|imorgon)\b",
        r"\b(?:visa|kolla|lista|las upp) (?:hela )?(?:min |mina |dagens )?(?:kalender\w*|moten|schema\w*)\b",
        r"\bvad (?:star|gor jag) .*(?:kalendern|agendan)\b", r"\bvad star (?:det )?(?:i kalendern|pa agendan)\b",
        r"^kalender(?:n)? (?:idag|imorgon|for)\b",
        r"\bhur ser (?:min dag|veckan|imorgon|det) ut\b",
        r"\bar jag (?:ledig|upptagen)\b", r"\bhar jag tid for\b",
        r"\bnar (?:ar|borjar) mitt (?:nasta |forsta )?mote\b", r"\bvad ar mitt (?:nasta |forsta )?mote\b",
        r"\bhur manga moten har jag\b", r"\bvisa vad jag har bokat\b",
        r"\bwhats on my calendar\b", r"\bshow my meetings\b", r"\bwhat do i have\b",
    ),
    "timer.set": _rx(
        r"\w*(?:timer|timern|tajmer|tiemr)\b", r"\b(?:nedrakning\w*|aggklocka\w*|rakna ner)\b",
        r"\bvack mig om\b", r"\bsag till (?:om|nar det har gatt)\b",
    ),
    "weather.lookup": _rx(
        r"\b(?:vader|vadret|varet|vaderprognos\w*|prognos\w*|weather|forecast|smhi)\b",
        r"\b(?:regnar|snoar|regna|snoa|blaser|blasa) det\b", r"\bdet (?:regnar|snoar|blaser)\b",
        r"\b(?:kommer|ska) (?:det )?(?:regna|snoa|blasa)\b", r"\bis it going to rain\b",
        r"\bar det (?:soligt|molnigt|blasigt|halt|kallt|varmt)\b", r"\brisk for (?:storm|regn|sno|aska)\b",
        r"\bhur mycket (?:sno|regn)\b",
        r"\bhur (?:varmt|kallt|blasigt) (?:blir|ar) det\b", r"\bhur manga grader\b", r"\btemperatur\w*\b",
        r"\bblir det (?:sol|regn|sno|aska|dimma|minusgrader|plusgrader|uppehall|varmare|kallare|fint)\b",
        r"\b(?:paraply|regnstall)\b",
    ),
    "time.now": _rx(
        r"\b(?:vad|va|hur mycket|hur mkt) (?:ar|a|e) klockan\b", r"\bvad klockan ar\b",
        r"\bvad (?:visar|sager) klockan\b", r"\b(?:kolla|kollar du) klockan\b", r"^klockan(?: nu| please| tack)?\W*$",
        r"\bvilken tid (?:ar det|har vi)\b", r"\bhur dags ar det\b", r"\bvad ar tiden\b",
        r"^tid(?:en)?(?: tack)?\W*$", r"\bkoll pa tiden\b", r"\bsaga tiden\b", r"\bexakt tid\b",
        r"\bvad (?:ar det|har vi) for datum\b", r"\bvilket datum ar det\b",
        r"\bvilken (?:vecko)?dag ar det(?: idag)?\W*$", r"\bvilken vecka ar det\W*$", r"\bdagens datum\b",
        r"\bwhat time (?:is it|it is)\b", r"\b(?:whats|what is) the time\b", r"\bcurrent time\b",
    ),
}

_GREETING_FIRST: Final = frozenset(
    "hej hejsan hejhej halla hallaj tja tjena tjenare tjenixen tjabba morrn morsning hello hi hey "
    "godmorgon goddag goddagens god good".split()
)
_GREETING_WORDS: Final = _GREETING_FIRST | frozenset(
    "morgon dag kvall formiddag eftermiddag morning evening afternoon alice pa dig dar there svejsan i stugan "
    "hur mar du laget ar trevligt att horas".split()
)

# Knowledge questions that may mention a tool's topic ("varför regnar det", "skillnaden mellan väder och klimat").
_KNOWLEDGE: Final = re.compile(
    r"\b(?:varfor|skillnaden|forklara|vad betyder|vad innebar|hur bildas|hur funkar|hur fungerar|why|explain)\b"
)
# "boka inte", "jag vet inte vad klockan är": a model reads negations.
_NEGATION: Final = re.compile(r"\b(?:inte|ej|icke|aldrig|not|don't|dont)\b")
_CAL_OBJECT: Final = re.compile(rf"\b{_CAL_NOUN}\b")
_PUT_IN: Final = re.compile(r"\b(?:lagg|lagga|satt|satta) (?:in|till)\b")


@dataclass(frozen=True)
class FallbackResult:
    """What the rules understood: the fields the pipeline takes from an NLU reply."""

    intent: str
    confidence: float
    slots: dict[str, object]
    missing: tuple[str, ...]
    """Required slots the text does not state."""
    route_hint: str
    """fast (no model), micro (a model picks the tool) or planner (a model answers)."""


def _is_greeting(folded: str) -> bool:
    words = re.findall(r"[^\W\d_]+", folded)
    return bool(words) and words[0] in _GREETING_FIRST and all(w in _GREETING_WORDS for w in words)


def _matching_intents(text: str) -> dict[str, int]:
    """Each intent with a cue in `text`, and where its first cue starts (greetings only as the whole text)."""
    folded = fold(text)
    found = {intent: m.start() for intent, pattern in _CUES.items() if (m := pattern.search(folded))}
    if not found and _is_greeting(folded):
        found["greeting.hello"] = 0
    return found


def _choose(found: dict[str, int]) -> tuple[str, bool]:
    """The intent and whether the choice is clear."""
    if "memory.query" in found:
        return "memory.query", True
    first = min(found, key=found.__getitem__)
    if len(found) == 1 or first == "email.create_draft":
        return first, True
    return first, False


def understand(text: str, now: dt.datetime) -> FallbackResult:
    """Intent, slots and route hint for `text`, relative days resolved against `now` (timezone-aware)."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware (in the user's zone)")
    found = _matching_intents(text)
    if not found:
        return FallbackResult("info.query", AMBIGUOUS_CONFIDENCE, {}, (), PLANNER)
    intent, clear = _choose(found)
    stated = extract_slots(intent, text, now)
    folded = fold(text)
    if clear and intent in ("calendar.create_draft", "calendar.move") and not _CAL_OBJECT.search(folded):
        # "lägg in tandläkaren på torsdag kl 8.30" is a booking; "lägg in pengar imorgon" is not.
        put_in_at = _PUT_IN.search(folded) is not None and "T" in str(stated.slots.get("start", ""))
        clear = intent == "calendar.create_draft" and ("attendees" in stated.slots or put_in_at)
    if clear and intent == "time.now":
        # "vad är klockan i New York": the time tool answers for the user's own zone only.
        clear = "city" not in extract_slots("weather.lookup", text, now).slots
    if clear and tool_for(intent) is not None and (_KNOWLEDGE.search(folded) or _NEGATION.search(folded)):
        clear = False
    if not clear:
        return FallbackResult(intent, AMBIGUOUS_CONFIDENCE, stated.slots, stated.missing, MICRO)
    if stated.missing:
        return FallbackResult(intent, CONFIDENCE, stated.slots, stated.missing, MICRO)
    return FallbackResult(intent, CONFIDENCE, stated.slots, (), FAST)
