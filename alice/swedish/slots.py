"""Deterministic Swedish slot extraction: days, clock times, durations, people, e-mails, cities and titles.

Decisions where the intent spec leaves room (reference Tuesday 2026-03-10 09:00 in the examples):

- "på fredag", "fredag", "kommande fredag": the next such weekday strictly after the reference day, so
  "på tisdag" said on a Tuesday is 2026-03-17.
- "nästa fredag", "fredag nästa vecka": that weekday in the next calendar week (Monday to Sunday), as
  Swedish speakers commonly mean it: "nästa fredag" = 2026-03-20, "nästa tisdag" = 2026-03-17 (the spec's
  example). "i fredags" is the last Friday strictly before today; "förra fredagen" the Friday of last week.
- A day and month without a year ("den 24 mars", "24/3") is in the reference year unless it lies more than
  31 days back, then next year: "den 2 mars" = 2026-03-02 (a question about last week), "den 5 januari" =
  2027-01-05. "den 24:e" is the 24th of this month, or of the next month that has that day once it has
  passed ("den 2:a" = 2026-04-02). "ikväll", "i eftermiddag", "i natt", "i morse" and "dagens" name today;
  "torsdagens möten" is the coming Thursday. "i helgen" and "nästa vecka" name no single day, so no date.
- An explicit date beats a weekday in the same text ("på tisdag den 24 mars" = 2026-03-24).
- When the text reads like a move ("flytta", "skjut", "boka om", "ändra", ...), the day and time after "till"
  win over those after "från"; otherwise the first one wins, so a range "kl 14 till 15" starts at 14:00.
- Clock times are stored as said, without the meeting afternoon rule. `time_is_bare_hour` is set when the
  named hour (the numeral said, not the resolved hour) is 1..7 with no am/pm word and no leading zero:
  "kl 3", "klockan två", "halv tre" (02:30), "kvart i fyra" (03:45), "halv ett" (00:30, so 12:30 in a
  meeting); "kvart i åtta" names 8 and stays 07:45. "på morgonen"/"på förmiddagen"/"i morse"/"bitti" keep
  the hour; "på kvällen"/"ikväll"/"i eftermiddag"/"em" add twelve to hours before noon; "på natten" adds
  twelve to 8..11 only. The nearest such word to the clock time decides.
- Only a stated clock time gives a time: meals and parts of the day ("lunch", "imorgon eftermiddag") give
  none, as in the data label conventions (data/README.md).
- Swedish-English mixing is understood for days and times ("tomorrow", "on friday", "at 3", "3pm").
- "om en timme", "om 20 minuter" give both a duration and a clock time relative to the reference (under
  twelve hours only); an explicit clock time wins.
- People: capitalised words after a cue ("med", "till", "mejla", "maila", "bjud in", "hos", ...), joined
  by ",", "och", "&", "samt"; a following capitalised word that is not a known first name is taken as a
  surname ("Anna Svensson"). After a cue a lowercase word counts only when it is a known first name. A known
  first name (gazetteer) counts anywhere, in any case, unless it is also an everyday word ("inga", "per",
  "max"), which needs a cue. Weekdays, months, cities, date words, pronouns and "Alice" never count.
- Attendees are the people followed by the e-mail addresses. `to` is the first e-mail address, else the
  first person. E-mail addresses are returned as written, after NFC and control-character removal.
- A city is matched with or without diacritics and with a genitive "s" ("Göteborgs väder"); "gött" only
  as written after a preposition, since "gott" (good) is everyday Swedish. The first city wins.
- Only the first 4096 characters are read, which bounds the work for any input.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, TypeVar

from alice.swedish import gazetteer
from alice.swedish.text import fold, surface_forms

MAX_TEXT_CHARS: Final = 4096
_RECENT_PAST_DAYS: Final = 31


@dataclass(frozen=True)
class SlotCandidates:
    """Everything found in one text, independent of the intent."""

    date: dt.date | None = None
    time: dt.time | None = None
    time_is_bare_hour: bool = False
    duration_s: int | None = None
    people: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    city: str | None = None
    title: str | None = None
    reference: dt.datetime | None = None
    """The reference time the text was resolved against; a start given only as a clock time needs it."""


# ---------------------------------------------------------------------------------------------- numbers

_UNIT_WORDS: Final = {
    "en": 1,
    "ett": 1,
    "tva": 2,
    "tre": 3,
    "fyra": 4,
    "fem": 5,
    "sex": 6,
    "sju": 7,
    "atta": 8,
    "nio": 9,
}
_OTHER_NUMBER_WORDS: Final = {
    "noll": 0,
    "tio": 10,
    "elva": 11,
    "tolv": 12,
    "tretton": 13,
    "fjorton": 14,
    "femton": 15,
    "sexton": 16,
    "sjutton": 17,
    "arton": 18,
    "aderton": 18,
    "nitton": 19,
    "hundra": 100,
    "etthundra": 100,
}
# Spoken forms without the final "o" ("femti") are common in speech-to-text output.
_TENS_WORDS: Final = {
    "tjugo": 20,
    "tjugu": 20,
    "trettio": 30,
    "tretti": 30,
    "fyrtio": 40,
    "fyrti": 40,
    "forti": 40,
    "femtio": 50,
    "femti": 50,
    "sextio": 60,
    "sexti": 60,
    "sjuttio": 70,
    "sjutti": 70,
    "attio": 80,
    "atti": 80,
    "nittio": 90,
    "nitti": 90,
}


def _number_words() -> dict[str, int]:
    words = {**_UNIT_WORDS, **_OTHER_NUMBER_WORDS, **_TENS_WORDS}
    for tens, tens_value in _TENS_WORDS.items():
        for unit, unit_value in _UNIT_WORDS.items():
            words[tens + unit] = tens_value + unit_value
    return words


_NUMBER_WORDS: Final = _number_words()


def _alt(words: Iterable[str]) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=lambda w: (-len(w), w)))


# Built from the same word lists as _NUMBER_WORDS, so every match has a value.
_NUMWORD: Final = (
    rf"(?:(?:{_alt(_TENS_WORDS)})(?:{_alt(_UNIT_WORDS)})?|{_alt(_OTHER_NUMBER_WORDS)}|{_alt(_UNIT_WORDS)})"
)
_NUM: Final = rf"(?:[0-9]{{1,5}}|{_NUMWORD})"


def _number(word: str) -> int | None:
    if word.isascii() and word.isdigit():
        return int(word)
    return _NUMBER_WORDS.get(word)


# ------------------------------------------------------------------------------------------ vocabulary

_WEEKDAYS: Final = {
    "mandag": 0,
    "tisdag": 1,
    "onsdag": 2,
    "torsdag": 3,
    "fredag": 4,
    "lordag": 5,
    "sondag": 6,
    # Swedish-English mixing ("weather stockholm on friday") is common in chat and speech-to-text.
    "monday": 0,
    "tuesday": 1,
    "wednesday": 2,
    "thursday": 3,
    "friday": 4,
    "saturday": 5,
    "sunday": 6,
}
_MONTHS: Final = {
    "januari": 1,
    "jan": 1,
    "februari": 2,
    "feb": 2,
    "mars": 3,
    "mar": 3,
    "april": 4,
    "apr": 4,
    "maj": 5,
    "juni": 6,
    "jun": 6,
    "juli": 7,
    "jul": 7,
    "augusti": 8,
    "aug": 8,
    "september": 9,
    "sept": 9,
    "sep": 9,
    "oktober": 10,
    "okt": 10,
    "november": 11,
    "nov": 11,
    "december": 12,
    "dec": 12,
    "january": 1,
    "february": 2,
    "march": 3,
    "may": 5,
    "june": 6,
    "july": 7,
    "august": 8,
    "october": 10,
    "oct": 10,
}


def _ordinal_words() -> dict[str, int]:
    simple = {
        "forsta": 1,
        "forste": 1,
        "andra": 2,
        "andre": 2,
        "tredje": 3,
        "fjarde": 4,
        "femte": 5,
        "sjatte": 6,
        "sjunde": 7,
        "attonde": 8,
        "nionde": 9,
    }
    words = {
        **simple,
        "tionde": 10,
        "elfte": 11,
        "tolfte": 12,
        "trettonde": 13,
        "fjortonde": 14,
        "femtonde": 15,
        "sextonde": 16,
        "sjuttonde": 17,
        "artonde": 18,
        "nittonde": 19,
        "tjugonde": 20,
        "trettionde": 30,
    }
    for prefix, value in (("tjugo", 20), ("trettio", 30)):
        for word, unit in simple.items():
            if value + unit <= 31:
                words[prefix + word] = value + unit
    return words


_ORDINALS: Final = _ordinal_words()

_H_UNITS: Final = ("timmar", "timmars", "timme", "timmes", "timmen", "tim", "h", "hours", "hour", "hrs")
_M_UNITS: Final = ("minuter", "minuters", "minut", "minuten", "min", "mins", "minutes", "minute")
_S_UNITS: Final = ("sekunder", "sekunders", "sekund", "sekunden", "sek", "s", "seconds", "second", "secs")
_UNIT_SECONDS: Final = {**dict.fromkeys(_H_UNITS, 3600), **dict.fromkeys(_M_UNITS, 60), **dict.fromkeys(_S_UNITS, 1)}
_UNIT: Final = rf"(?:{_alt(_UNIT_SECONDS)})"
_NO_LETTER: Final = r"(?![^\W\d_])"

# Words after a number that show it is a quantity, not a day or an hour.
_QUANTITY_AFTER: Final = re.compile(
    rf"\s*(?:{_UNIT}{_NO_LETTER}|%|procent\b|kr\b|kronor\b|dagar\b|veckor\b|personer\b|st\b|gånger\b|ganger\b)"
)

_PREPOSITION_WORDS: Final = frozenset(
    "i pa om med till fran for hos vid at av efter innan fore under mellan utan kl klockan och eller samt "
    "plus den det de en ett denna detta nasta forra kommande nu sen da har dar som att ar var kan ska vill "
    "mig dig oss er dem honom henne hen sig jag du han hon vi ni min mitt mina din ditt dina var vart vara "
    "hej hejsan tja tjena tack snalla boka mote motet moten lunch fika middag frukost alla hela teamet gruppen "
    "chefen kollegorna teams zoom meet skype outlook google alice idag imorgon imorn igar ikvall inatt "
    "overmorgon forrgar morgon kvall eftermiddag formiddag helgen vecka veckan ok okej".split()
)


def _excluded_name_words() -> frozenset[str]:
    words = set(_PREPOSITION_WORDS)
    for day in _WEEKDAYS:
        words.update({day, day + "en", day + "s", day + "ar"})
    words.update(_MONTHS)
    for canonical, aliases in gazetteer.CITY_ALIASES.items():
        words.update(fold(alias) for alias in (canonical, *aliases))
    return frozenset(words)


_EXCLUDED_NAME_WORDS: Final = _excluded_name_words()
_FIRST_NAMES: Final = frozenset(fold(n) for n in gazetteer.FIRST_NAMES)
_AMBIGUOUS_NAMES: Final = frozenset(fold(n) for n in gazetteer.AMBIGUOUS_FIRST_NAMES)
_WORDLIKE_NAMES: Final = _AMBIGUOUS_NAMES - frozenset(fold(n) for n in gazetteer.LOWERCASE_CUE_NAMES)

# ------------------------------------------------------------------------------------------- patterns

_EMAIL_RE: Final = re.compile(
    r"(?<![\w.!#$%&'*+/=?^`{|}~-])[\w.!#$%&'*+/=?^`{|}~-]{1,64}"
    r"@(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+(?:xn--[\w-]{1,59}|[^\W\d_]{2,63})(?![\w-])"
)

_WD: Final = rf"(?:{_alt(_WEEKDAYS)})"
_WD_WORD: Final = re.compile(_WD)
_MON: Final = rf"(?P<mon>{_alt(_MONTHS)})"

_DATE_ISO: Final = re.compile(r"\b(?P<y>[0-9]{4})-(?P<m>[0-9]{1,2})-(?P<d>[0-9]{1,2})\b")
_DATE_DAY_MONTH: Final = re.compile(
    rf"\b(?:den\s+)?(?:(?P<d>[0-9]{{1,2}})(?::?[ea])?\s*|(?P<ord>{_alt(_ORDINALS)})\s+){_MON}\b\.?"
    rf"(?:\s*(?P<y>[0-9]{{4}})\b)?"
)
_DATE_SLASH: Final = re.compile(
    r"(?<![0-9./-])\b(?P<d>[0-9]{1,2})/(?P<m>[0-9]{1,2})(?:[-/ ](?P<y>[0-9]{4}))?\b(?![/.][0-9])"
)
_DATE_DEN: Final = re.compile(
    rf"\bden\s+(?:(?P<d>[0-9]{{1,2}})(?::?[ea])?|(?P<ord>{_alt(_ORDINALS)}))\b(?![.:/,][0-9])"
)
_DATE_RELATIVE: Final = re.compile(
    r"\b(?:(?P<p2>(?:i\s?)?overmorgon|(?:the\s+)?day\s+after\s+tomorrow)"
    r"|(?P<p1>i\s?(?:morgon|morn|morrn|morron)|tomorrow|tmrw)|(?P<m2>(?:i\s?)?forrgar)|(?P<m1>i\s?gar|yesterday)"
    r"|(?P<p0>i\s?(?:dag|kvall|afton|eftermiddag|formiddag|morse|natt)|dagens|resten\s+av\s+dagen|today|tonight))\b"
)
_DATE_IN_DAYS: Final = re.compile(rf"\bom\s+(?P<n>{_NUM})\s+(?P<u>dagar|dag|veckor|vecka)\b")
_DATE_NEXT_WEEK: Final = re.compile(
    rf"\bnasta\s+vecka\s+(?:pa\s+)?{_WD}(?:ens?)?\b|\b(?:pa\s+)?{_WD}(?:ens?)?\s+nasta\s+vecka\b"
    rf"|\b(?:nasta|next)\s+{_WD}(?:ens?)?\b"
)
_DATE_LAST_WEEK: Final = re.compile(
    rf"\bforra\s+veckan\s+(?:pa\s+)?{_WD}(?:ens?)?\b|\b(?:pa\s+)?{_WD}(?:ens?)?\s+forra\s+veckan\b"
    rf"|\bforra\s+{_WD}(?:ens?)?\b"
)
_DATE_LAST_WEEKDAY: Final = re.compile(rf"\bi\s+{_WD}s\b")
_DATE_WEEKDAY: Final = re.compile(
    rf"\b(?:(?:nu\s+)?pa\s+|on\s+)?(?:(?:kommande|denna|den\s+har|this)\s+)?{_WD}(?:ens?)?\b"
)

_CLOCK_PREFIX: Final = r"(?:\b(?:kl|klockan)\b\.?\s*)?"
_TIME_RELATIVE: Final = re.compile(
    rf"{_CLOCK_PREFIX}\b(?P<m>{_NUM}|kvart)\s+(?P<dir>i|over)\s+(?P<halv>halv\s+)?(?P<h>{_NUM})\b"
)
_TIME_HALF: Final = re.compile(rf"{_CLOCK_PREFIX}\bhalv\s+(?P<h>{_NUM})\b")
_TIME_CLOCK: Final = re.compile(
    rf"\b(?:kl|klockan)\b[.:]?\s*(?P<h>[0-9]{{1,2}}|{_NUMWORD})\b"
    rf"(?:[.:](?P<mm>[0-9]{{2}})\b|\s+(?P<mw>{_NUMWORD})\b)?"
)
_TIME_ABOUT: Final = re.compile(rf"\b(?:(?P<hd>[0-9]{{1,2}})-?|(?P<hw>{_NUMWORD}))tiden\b")
_TIME_AFTER_WORD: Final = re.compile(
    rf"\b(?:till|vid|runt|omkring|cirka|ca)\s+(?P<h>[0-9]{{1,2}}|{_NUMWORD})(?:[.:](?P<mm>[0-5][0-9]))?\b"
    r"(?=\s*$|\s*[,.!?;]|\s+(?:pa|i|idag|imorgon|imorn|overmorgon|iovermorgon|nasta|den|om|med|istallet)\b)"
)
_TIME_DIGITS: Final = re.compile(r"(?<![0-9.,:/-])\b(?P<h>[01]?[0-9]|2[0-3])[.:](?P<mm>[0-5][0-9])\b(?![.,:/]?[0-9])")
_TIME_ENGLISH: Final = re.compile(
    r"\b(?:at\s+(?P<h>[0-9]{1,2})(?:[.:](?P<mm>[0-5][0-9]))?(?:\s*(?P<ap>am|pm))?"
    r"|(?P<h2>[0-9]{1,2})(?:[.:](?P<mm2>[0-5][0-9]))?\s*(?P<ap2>am|pm))\b"
)

_PM_WORDS: Final = re.compile(
    r"\b(?:kvallen|kvall|ikvall|afton|eftermiddagen|eftermiddag|em|e\.m|evening|afternoon|tonight)\b"
)
_AM_WORDS: Final = re.compile(r"\b(?:morgonen|formiddagen|formiddag|fm|f\.m|bitti|morse|morning)\b")
_NIGHT_WORDS: Final = re.compile(r"\b(?:natten|inatt|natt)\b")

_DURATION_PART: Final = re.compile(
    rf"\b(?:(?P<kn>{_NUM})\s+)?kvart(?:ar|s)?{_NO_LETTER}(?!\s+(?:i|over)\s)"
    rf"|\b(?:(?:en|ett|1)\s+)?halvtim(?:me|mar|men|mes){_NO_LETTER}"
    rf"|\b(?:(?P<half>(?:en\s+|ett\s+)?halv)\s+|(?P<nhalf>{_NUM})\s+och\s+en\s+halv\s+|(?P<halvannan>halvannan)\s+"
    rf"|(?P<dec>[0-9]{{1,5}}[.,][0-9]{{1,3}})\s*|(?P<dn>[0-9]{{1,5}})\s*|(?P<wn>{_NUMWORD})\s+)"
    rf"(?P<unit>{_UNIT}){_NO_LETTER}"
    # Compounds such as "tjugominuterstimer" and "5-minutersnedräkning".
    rf"|\b(?:(?P<cw>{_NUMWORD})|(?P<cd>[0-9]{{1,5}})-?)(?P<cu>minuters|sekunders|timmars|timmes)"
)
_DURATION_JOIN: Final = re.compile(r"\s*(?:,|\+|\boch\b)?\s*")
_DURATION_HALF_TAIL: Final = re.compile(rf"\s+och\s+en\s+halv\b(?!\s+{_UNIT}{_NO_LETTER})")
_OM_BEFORE: Final = re.compile(r"\bom\s+$")

_MOVE_RE: Final = re.compile(
    r"\b(?:flytt?a\w*|skjut\w*|ändra\w*|byt\w*|boka\s+om|omboka\w*|senarelägg\w*|tidigarelägg\w*"
    r"|senarelagg\w*|tidigarelagg\w*|move\w*|reschedul\w*|postpone\w*|push\w*)"
)
_LEAD_RE: Final = re.compile(r"([^\W\d_]+)\s*$")
_TO_WORDS: Final = frozenset({"till", "to"})
_FROM_WORDS: Final = frozenset({"fran", "from"})
_WORDS_RE: Final = re.compile(r"\w+")
_DIGIT_RE: Final = re.compile(r"[0-9]")
_DIGIT_THEN_LETTER: Final = re.compile(r"[0-9][a-z]")

# Words one of which must occur before a family of patterns is worth running.
_WEEKDAY_FORMS: Final = frozenset(f"{d}{e}" for d in _WEEKDAYS for e in ("", "en", "ens", "s"))
_RELATIVE_DAY_WORDS: Final = frozenset(
    "idag dag imorgon morgon imorn morn imorrn morrn imorron morron overmorgon iovermorgon forrgar iforrgar "
    "igar gar ikvall kvall iafton afton ieftermiddag eftermiddag iformiddag formiddag imorse morse inatt "
    "natt dagens dagen today tonight tomorrow tmrw yesterday".split()
)
_DAY_COUNT_WORDS: Final = frozenset({"dag", "dagar", "vecka", "veckor"})
_CLOCK_WORDS: Final = frozenset({"kl", "klockan"})
_AT_WORDS: Final = frozenset({"till", "vid", "runt", "omkring", "cirka", "ca"})
_TITLE_INTRO_WORDS: Final = frozenset(
    "om angaende ang gallande rorande betraffande rubrik rubriken titel titeln amne amnet".split()
)
_MOVE_STEMS: Final = (
    "flyt",
    "skjut",
    "ändra",
    "byt",
    "boka om",
    "omboka",
    "senarel",
    "tidigarel",
    "move",
    "reschedul",
    "postpone",
    "push",
)


def _city_patterns() -> tuple[re.Pattern[str], dict[str, str], re.Pattern[str]]:
    by_alias: dict[str, str] = {}
    for canonical, aliases in gazetteer.CITY_ALIASES.items():
        for alias in (canonical, *aliases):
            by_alias[fold(alias)] = canonical
    folded = re.compile(rf"\b(?P<c>{_alt(by_alias)})s?\b")
    exact = re.compile(
        rf"\b(?:i|till|från|fran|för|for|in|om|runt)\s+(?P<c>{_alt(gazetteer.DIACRITIC_ONLY_CITY_ALIASES)})\b"
    )
    return folded, by_alias, exact


_CITY_RE, _CITY_BY_ALIAS, _CITY_EXACT_RE = _city_patterns()
_CITY_WORDS: Final = frozenset(word for alias in _CITY_BY_ALIAS for word in _WORDS_RE.findall(alias))

_NAME_TOKEN: Final = re.compile(r"[^\W\d_]+(?:[-'’][^\W\d_]+)*|[^\w\s]|\w+")
_NAME_CUES: Final = frozenset(
    "med till mejla maila mejl mail mejlet mailet emaila e-posta ringa ring hos kontakta svara paminn bjud "
    "with email".split()
)
_NAME_JOINERS: Final = frozenset({",", "&", "+", "och", "samt", "plus"})

_QUOTES: Final = '"“”„«»'
_TITLE_QUOTED: Final = re.compile(rf"[{_QUOTES}]([^{_QUOTES}]{{1,80}})[{_QUOTES}]")
_TITLE_INTRO: Final = re.compile(
    r"\b(?:om|angaende|ang\.|gallande|rorande|betraffande)\s+"
    r"|\b(?:rubrik(?:en)?|titel(?:n)?|amne(?:t)?)\s*:?\s+"
)
_TITLE_WORD: Final = re.compile(r"\S+")
_TITLE_STOP: Final = frozenset(
    "med pa kl klockan till hos i den nasta fran vid under mellan efter innan fore idag imorgon imorn "
    "ikvall overmorgon och".split()
)
_TITLE_NOT_FIRST: Final = frozenset(
    "det den detta att mig dig oss er hur vad du jag ni vi han hon de sig en ett mote motet".split()
)
_TITLE_MAX_WORDS: Final = 8


# ----------------------------------------------------------------------------------------- the search


@dataclass(frozen=True)
class _DateHit:
    start: int
    end: int
    day: dt.date
    rank: int
    lead: str


@dataclass(frozen=True)
class _TimeHit:
    start: int
    end: int
    clock: dt.time
    bare: bool
    rank: int
    lead: str


class _Claims:
    """Character spans already explained by an earlier, more specific pattern."""

    def __init__(self, spans: Iterable[tuple[int, int]] = ()) -> None:
        self.spans: list[tuple[int, int]] = list(spans)

    def free(self, start: int, end: int) -> bool:
        for claimed_start, claimed_end in self.spans:
            if start < claimed_end and end > claimed_start:
                return False
        return True

    def take(self, start: int, end: int) -> bool:
        if not self.free(start, end):
            return False
        self.spans.append((start, end))
        return True


@dataclass(frozen=True)
class _Text:
    """The masked, folded text with cheap facts that let most patterns skip a sentence without scanning it."""

    folded: str
    words: frozenset[str]
    digits: bool
    numbers: bool

    @classmethod
    def of(cls, folded: str) -> _Text:
        words = frozenset(_WORDS_RE.findall(folded))
        digits = _DIGIT_RE.search(folded) is not None
        return cls(folded, words, digits, digits or not words.isdisjoint(_NUMBER_WORDS))


def _each(pattern: re.Pattern[str], text: str, gate: object) -> Iterable[re.Match[str]]:
    return pattern.finditer(text) if gate else ()


def _mask(text: str, spans: Iterable[tuple[int, int]]) -> str:
    for start, end in spans:
        text = text[:start] + " " * (end - start) + text[end:]
    return text


def _lead(folded: str, start: int) -> str:
    if folded.startswith("till ", start):
        return "till"
    match = _LEAD_RE.search(folded, max(0, start - 12), start)
    return match.group(1) if match else ""


def _is_quantity(folded: str, end: int) -> bool:
    return _QUANTITY_AFTER.match(folded, end) is not None


def _safe_date(year: int, month: int, day: int) -> dt.date | None:
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def _add_days(day: dt.date, days: int) -> dt.date | None:
    try:
        return day + dt.timedelta(days=days)
    except OverflowError:
        return None


def _day_month(today: dt.date, day: int, month: int, year: int | None) -> dt.date | None:
    if year is not None:
        return _safe_date(year, month, day)
    # "Vad hade jag den 2 mars" asked on 10 March means this year, "boka den 5 januari" next year.
    earliest = _add_days(today, -_RECENT_PAST_DAYS) or today
    for offset in range(9):  # 29 February comes back within eight years
        candidate = _safe_date(today.year + offset, month, day)
        if candidate is not None and candidate >= earliest:
            return candidate
    return None


def _day_of_month(today: dt.date, day: int) -> dt.date | None:
    year, month = today.year, today.month
    for _ in range(13):
        candidate = _safe_date(year, month, day)
        if candidate is not None and candidate >= today:
            return candidate
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return None


def _year(text: str | None) -> int | None:
    if text is None:
        return None
    year = int(text)
    return year if 1900 <= year <= 2200 else None


def _weekday_in_text(text: str) -> int:
    match = _WD_WORD.search(text)
    return _WEEKDAYS[match.group()] if match else 0


def _find_dates(t: _Text, today: dt.date, claims: _Claims) -> list[_DateHit]:
    hits: list[_DateHit] = []
    folded, words = t.folded, t.words
    weekday = not words.isdisjoint(_WEEKDAY_FORMS)

    def add(match: re.Match[str], day: dt.date | None, rank: int, end: int | None = None) -> None:
        stop = match.end() if end is None else end
        if day is not None and claims.take(match.start(), stop):
            hits.append(_DateHit(match.start(), stop, day, rank, _lead(folded, match.start())))

    for m in _each(_DATE_ISO, folded, t.digits and "-" in folded):
        add(m, _safe_date(int(m["y"]), int(m["m"]), int(m["d"])), 3)
    for m in _each(_DATE_DAY_MONTH, folded, not words.isdisjoint(_MONTHS)):
        day_number = int(m["d"]) if m["d"] else _ORDINALS[m["ord"]]
        year = _year(m["y"])
        add(m, _day_month(today, day_number, _MONTHS[m["mon"]], year), 3, None if year else m.end("mon"))
    for m in _each(_DATE_SLASH, folded, t.digits and "/" in folded):
        if not _is_quantity(folded, m.end()):
            year = _year(m["y"])
            add(m, _day_month(today, int(m["d"]), int(m["m"]), year), 3, None if year else m.end("m"))
    for m in _each(_DATE_DEN, folded, "den" in words):
        if m["d"]:
            if not _is_quantity(folded, m.end()):
                add(m, _day_of_month(today, int(m["d"])), 2)
        elif _ORDINALS[m["ord"]] >= 3:  # "den andra"/"den första" usually mean "the other"/"the first one"
            add(m, _day_of_month(today, _ORDINALS[m["ord"]]), 2)
    for m in _each(_DATE_RELATIVE, folded, not words.isdisjoint(_RELATIVE_DAY_WORDS)):
        offsets = {"p2": 2, "p1": 1, "m2": -2, "m1": -1, "p0": 0}
        add(m, _add_days(today, offsets[m.lastgroup or "p0"]), 1)
    for m in _each(_DATE_IN_DAYS, folded, "om" in words and not words.isdisjoint(_DAY_COUNT_WORDS)):
        count = _number(m["n"])
        if count is not None and count <= 3660:
            add(m, _add_days(today, count * (7 if m["u"].startswith("veck") else 1)), 1)
    monday = today - dt.timedelta(days=today.weekday())
    for m in _each(_DATE_NEXT_WEEK, folded, weekday and ("nasta" in words or "next" in words)):
        add(m, _add_days(monday, 7 + _weekday_in_text(m.group())), 1)
    for m in _each(_DATE_LAST_WEEK, folded, weekday and "forra" in words):
        add(m, _add_days(monday, -7 + _weekday_in_text(m.group())), 1)
    for m in _each(_DATE_LAST_WEEKDAY, folded, weekday):
        back = (today.weekday() - _weekday_in_text(m.group())) % 7 or 7
        add(m, _add_days(today, -back), 1)
    for m in _each(_DATE_WEEKDAY, folded, weekday):
        ahead = (_weekday_in_text(m.group()) - today.weekday()) % 7 or 7
        add(m, _add_days(today, ahead), 1)
    return hits


def _clock(hour: int, minute: int) -> dt.time | None:
    if 0 <= hour <= 23 and 0 <= minute <= 59:
        return dt.time(hour, minute)
    return None


def _find_times(t: _Text, claims: _Claims) -> list[_TimeHit]:
    hits: list[_TimeHit] = []
    folded, words = t.folded, t.words

    def add(start: int, end: int, clock: dt.time | None, bare: bool, rank: int = 2) -> None:
        if clock is not None and claims.take(start, end):
            hits.append(_TimeHit(start, end, clock, bare, rank, _lead(folded, start)))

    relative_gate = t.numbers and ("i" in words or "over" in words)
    for m in _each(_TIME_RELATIVE, folded, relative_gate):
        hour = _number(m["h"])
        if m["m"] == "kvart":
            minutes: int | None = 15
        elif m["m"].isdigit() and m.start() == m.start("m"):
            minutes = None  # "2 i 3" without "kl" is not a clock time
        else:
            minutes = _number(m["m"])
        if hour is None or minutes is None or not 1 <= hour <= 12 or not 1 <= minutes <= 29:
            continue
        base = (hour - 1) * 60 + 30 if m["halv"] else hour * 60
        total = (base + (minutes if m["dir"] == "over" else -minutes)) % (24 * 60)
        add(m.start(), m.end(), _clock(total // 60, total % 60), hour <= 7)
    for m in _each(_TIME_HALF, folded, t.numbers and "halv" in words):
        hour = _number(m["h"])
        if hour is not None and 1 <= hour <= 12 and not _is_quantity(folded, m.end()):
            add(m.start(), m.end(), _clock(hour - 1, 30), hour <= 7)
    for m in _each(_TIME_CLOCK, folded, t.numbers and not words.isdisjoint(_CLOCK_WORDS)):
        hour = _number(m["h"])
        if hour is None:
            continue
        minute, end = 0, m.end("h")
        if m["mm"]:
            minute, end = int(m["mm"]), m.end()
        elif m["mw"]:
            spoken = _number(m["mw"])
            if spoken is not None and 10 <= spoken <= 59 and not _is_quantity(folded, m.end()):
                minute, end = spoken, m.end()
        if _is_quantity(folded, end):
            continue
        zero_padded = m["h"].startswith("0") and len(m["h"]) == 2
        add(m.start(), end, _clock(hour, minute), 1 <= hour <= 7 and not zero_padded)
    for m in _each(_TIME_ABOUT, folded, "tiden" in folded):
        hour = _number(m["hd"] or m["hw"])
        if hour is not None:
            add(m.start(), m.end(), _clock(hour, 0), 1 <= hour <= 7 and not (m["hd"] or "").startswith("0"))
    for m in _each(_TIME_AFTER_WORD, folded, t.numbers and not words.isdisjoint(_AT_WORDS)):
        hour = _number(m["h"])
        if hour is not None:
            minute = int(m["mm"]) if m["mm"] else 0
            add(m.start(), m.end(), _clock(hour, minute), 1 <= hour <= 7 and not m["h"].startswith("0"))
    english_gate = t.digits and ("at" in words or "am" in folded or "pm" in folded)
    for m in _each(_TIME_ENGLISH, folded, english_gate):
        hour_text, minute_text, half = (m["h"], m["mm"], m["ap"]) if m["h"] else (m["h2"], m["mm2"], m["ap2"])
        hour = int(hour_text)
        if _is_quantity(folded, m.end()) or (half and not 1 <= hour <= 12):
            continue
        if half:
            hour = hour % 12 + (12 if half == "pm" else 0)
        clock = _clock(hour, int(minute_text) if minute_text else 0)
        add(m.start(), m.end(), clock, not half and 1 <= hour <= 7 and not hour_text.startswith("0"))
    for m in _each(_TIME_DIGITS, folded, t.digits and ("." in folded or ":" in folded)):
        if not _is_quantity(folded, m.end()):
            hour = int(m["h"])
            add(m.start(), m.end(), _clock(hour, int(m["mm"])), 1 <= hour <= 7 and not m["h"].startswith("0"))
    return hits


def _find_duration(t: _Text, claims: _Claims) -> tuple[int, int, int] | None:
    """(seconds, start, end) of the first duration: a chain like "en timme och tio minuter"."""
    folded = t.folded
    gate = (
        not t.words.isdisjoint(_UNIT_SECONDS)
        or "kvart" in folded
        or "halvtim" in folded
        or "minut" in folded
        or "sekund" in folded
        or "timm" in folded
        or (t.digits and _DIGIT_THEN_LETTER.search(folded) is not None)
    )
    for first in _each(_DURATION_PART, folded, gate):
        if not claims.free(first.start(), first.end()):
            continue
        total, last_unit, end = _duration_part(first)
        while True:
            joined = _DURATION_JOIN.match(folded, end)
            position = joined.end() if joined else end
            part = _DURATION_PART.match(folded, position)
            if part is not None and part.end() > position and claims.free(part.start(), part.end()):
                seconds, last_unit, end = _duration_part(part)
                total += seconds
                continue
            tail = _DURATION_HALF_TAIL.match(folded, end)
            if tail is not None:
                total += last_unit // 2
                end = tail.end()
            break
        if total > 0 and claims.take(first.start(), end):
            return total, first.start(), end
    return None


def _duration_part(m: re.Match[str]) -> tuple[int, int, int]:
    """(seconds, seconds of its unit, end) of one duration part."""
    text = m.group()
    if m["cu"] is not None:
        unit = _UNIT_SECONDS[m["cu"]]
        return (_number(m["cw"] or m["cd"]) or 0) * unit, unit, m.end()
    if m["unit"] is None:
        if "kvart" in text:
            count = _number(m["kn"]) if m["kn"] else 1
            return (count or 0) * 900, 900, m.end()
        return 1800, 1800, m.end()
    unit = _UNIT_SECONDS[m["unit"]]
    if m["half"] is not None:
        return unit // 2, unit, m.end()
    if m["halvannan"] is not None:
        return unit * 3 // 2, unit, m.end()
    if m["nhalf"] is not None:
        return ((_number(m["nhalf"]) or 0) * 2 + 1) * unit // 2, unit, m.end()
    if m["dec"] is not None:
        return round(float(m["dec"].replace(",", ".")) * unit), unit, m.end()
    return (_number(m["dn"] or m["wn"]) or 0) * unit, unit, m.end()


def _apply_day_part(folded: str, hit: _TimeHit) -> tuple[dt.time, bool]:
    """The clock time after "på morgonen"/"på kvällen"/"på natten" words, and whether it is still bare."""
    nearest: tuple[int, str] | None = None
    for kind, pattern in (("pm", _PM_WORDS), ("am", _AM_WORDS), ("night", _NIGHT_WORDS)):
        for m in pattern.finditer(folded):
            distance = hit.start - m.end() if m.end() <= hit.start else m.start() - hit.end
            if nearest is None or abs(distance) < nearest[0]:
                nearest = (abs(distance), kind)
    if nearest is None:
        return hit.clock, hit.bare
    hour = hit.clock.hour
    if (nearest[1] == "pm" and hour < 12) or (nearest[1] == "night" and 8 <= hour <= 11):
        hour += 12
    return hit.clock.replace(hour=hour), False


_Hit = TypeVar("_Hit", _DateHit, _TimeHit)


def _pick(hits: list[_Hit], move_like: bool, till_start: int | None) -> _Hit | None:
    if not hits:
        return None
    pool = hits
    if move_like:
        if till_start is not None:
            pool = [h for h in hits if h.start >= till_start] or hits
        else:
            pool = [h for h in hits if h.lead not in _FROM_WORDS] or hits
    return min(pool, key=lambda h: (-h.rank, h.start))


def _find_emails(cased: str) -> tuple[tuple[str, ...], list[tuple[int, int]]]:
    if "@" not in cased:
        return (), []
    matches = list(_EMAIL_RE.finditer(cased))
    return tuple(m.group() for m in matches), [m.span() for m in matches]


def _city_gate(words: frozenset[str]) -> bool:
    return not words.isdisjoint(_CITY_WORDS) or any(w[:-1] in _CITY_WORDS for w in words if w.endswith("s"))


def _find_city(t: _Text, lower: str, claims: _Claims) -> str | None:
    found: list[tuple[int, int, str]] = []
    for m in _each(_CITY_RE, t.folded, _city_gate(t.words)):
        if claims.free(m.start(), m.end()):
            found.append((m.start(), m.end(), _CITY_BY_ALIAS[m["c"]]))
            break
    for m in _each(_CITY_EXACT_RE, lower, "gött" in lower):
        if claims.free(m.start("c"), m.end("c")):
            found.append((m.start("c"), m.end("c"), gazetteer.DIACRITIC_ONLY_CITY_ALIASES[m["c"]]))
            break
    if not found:
        return None
    start, end, city = min(found)
    claims.take(start, end)
    return city


def _name_candidate(first_char: str, key: str) -> bool:
    """Could this word be (part of) a name, judging by the word alone?"""
    return (
        first_char.isalpha()
        and key not in _EXCLUDED_NAME_WORDS
        and not (key.endswith("s") and key[:-1] in _EXCLUDED_NAME_WORDS)
    )


def _find_people(cased: str, t: _Text, claims: _Claims) -> list[tuple[int, int, str]]:
    folded = t.folded
    if cased == folded and t.words.isdisjoint(_NAME_CUES) and t.words.isdisjoint(_FIRST_NAMES):
        return []
    spans = [m.span() for m in _NAME_TOKEN.finditer(cased)]
    spans = [span for span in spans if claims.free(*span)]
    keys = [folded[start:end] for start, end in spans]
    count = len(spans)
    people: dict[int, tuple[int, str]] = {}

    def name_at(i: int, after_cue: bool) -> int:
        """Record a name starting at token i; returns the index after it, or i when there is none."""
        start, key = spans[i][0], keys[i]
        capitalised = cased[start].isupper()
        if not _name_candidate(cased[start], key):
            return i
        if after_cue:
            if not capitalised and (key not in _FIRST_NAMES or key in _WORDLIKE_NAMES):
                return i
        elif key not in _FIRST_NAMES or key in _AMBIGUOUS_NAMES:
            return i
        j = i + 1
        # A capitalised word right after the first name is a surname unless it is a first name itself.
        while (
            capitalised
            and j < count
            and spans[j][0] == spans[j - 1][1] + 1
            and cased[spans[j][0]].isupper()
            and _name_candidate(cased[spans[j][0]], keys[j])
            and keys[j] not in _FIRST_NAMES
        ):
            j += 1
        end = spans[j - 1][1]
        people.setdefault(start, (end, cased[start:end]))
        return j

    i = 0
    while i < count:
        if keys[i] in _NAME_CUES:
            j = i + 1
            if j < count and keys[i] == "bjud" and keys[j] == "in":
                j += 1
            while j < count:
                after = name_at(j, after_cue=True)
                if after == j:
                    break
                j = after
                while j < count and keys[j] in _NAME_JOINERS:
                    j += 1
            i = max(j, i + 1)
        else:
            i = max(name_at(i, after_cue=False), i + 1)
    return [(start, end, name) for start, (end, name) in sorted(people.items())]


def _find_title(cased: str, t: _Text, claims: _Claims) -> str | None:
    if any(q in cased for q in _QUOTES):
        quoted = _TITLE_QUOTED.search(cased)
        if quoted and quoted.group(1).strip():
            return quoted.group(1).strip()
    folded = t.folded
    for intro in _each(_TITLE_INTRO, folded, not t.words.isdisjoint(_TITLE_INTRO_WORDS)):
        if not claims.free(intro.start(), intro.end()):
            continue
        words: list[tuple[int, int]] = []
        for m in _TITLE_WORD.finditer(cased, intro.end()):
            raw = m.group()
            core = raw.rstrip(",.!?;:")
            key = folded[m.start() : m.start() + len(core)]
            if not core or not claims.free(m.start(), m.start() + len(core)) or key in _TITLE_STOP:
                break
            if not words and key in _TITLE_NOT_FIRST:
                break
            words.append((m.start(), m.start() + len(core)))
            if len(core) < len(raw) or len(words) == _TITLE_MAX_WORDS:
                break
        if words:
            return cased[words[0][0] : words[-1][1]]
    return None


def extract(text: str, now: dt.datetime) -> SlotCandidates:
    """Every slot value stated in `text`, resolved against `now` (timezone-aware, in the user's zone).

    Never reads the wall clock and never raises for any string; only the first 4096 characters are read.
    """
    forms = surface_forms(text[:MAX_TEXT_CHARS])
    emails, email_spans = _find_emails(forms.cased)
    t = _Text.of(_mask(forms.folded, email_spans))
    lower = _mask(forms.lower, email_spans)
    claims = _Claims(email_spans)
    today = now.date()
    move_like = any(stem in lower for stem in _MOVE_STEMS) and _MOVE_RE.search(lower) is not None

    date_hits = _find_dates(t, today, claims)
    time_hits = _find_times(t, claims)
    # In "flytta mötet på fredag kl 10 till måndag kl 14" everything after the first "till" is the target.
    till_starts = [h.start for h in date_hits if h.lead in _TO_WORDS]
    till_starts += [h.start for h in time_hits if h.lead in _TO_WORDS]
    till_start = min(till_starts, default=None)
    date_hit = _pick(date_hits, move_like, till_start)
    time_hit = _pick(time_hits, move_like, till_start)
    clock: dt.time | None = None
    bare = False
    if time_hit is not None:
        clock, bare = _apply_day_part(t.folded, time_hit)
    duration = _find_duration(t, claims)
    if duration is not None and clock is None and duration[0] < 12 * 3600:
        if _OM_BEFORE.search(t.folded, max(0, duration[1] - 4), duration[1]):
            # Time-of-day arithmetic, so that a reference at the end of the calendar cannot overflow.
            second_of_day = (now.hour * 3600 + now.minute * 60 + now.second + duration[0]) % 86400
            clock = dt.time(second_of_day // 3600, second_of_day % 3600 // 60)
    city = _find_city(t, lower, claims)
    people = _find_people(forms.cased, t, claims)
    for start, end, _ in people:
        claims.take(start, end)
    return SlotCandidates(
        date=date_hit.day if date_hit else None,
        time=clock,
        time_is_bare_hour=bare,
        duration_s=duration[0] if duration else None,
        people=_unique(name for _, _, name in people),
        emails=_unique(emails),
        city=city,
        title=_find_title(forms.cased, t, claims),
        reference=now,
    )


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    seen: set[str] = set()
    result: list[str] = []
    for value in values:
        if value.casefold() not in seen:
            seen.add(value.casefold())
            result.append(value)
    return tuple(result)


# ------------------------------------------------------------------------------------ intent slots

_REQUIRED: Final[Mapping[str, frozenset[str]]] = {
    "weather.lookup": frozenset({"city"}),
    "calendar.create_draft": frozenset({"start"}),
    "calendar.move": frozenset({"new_start"}),
    "calendar.list": frozenset(),
    "email.create_draft": frozenset({"to"}),
    "timer.set": frozenset({"duration_s"}),
}


def required_slots(intent: str) -> frozenset[str]:
    """Slots that must be present before the intent's tool can run on the fast route."""
    return _REQUIRED.get(intent, frozenset())


def _meeting_time(c: SlotCandidates) -> dt.time | None:
    if c.time is not None and c.time_is_bare_hour and c.time.hour < 12:
        return c.time.replace(hour=c.time.hour + 12)
    return c.time


def _start(c: SlotCandidates) -> str | None:
    clock = _meeting_time(c)
    day = c.date
    if clock is None:
        return day.isoformat() if day else None
    if day is None:
        if c.reference is None:
            return None
        day = c.reference.date()
        if clock < c.reference.time().replace(second=0, microsecond=0, tzinfo=None):
            day = _add_days(day, 1)
            if day is None:
                return None
    return f"{day.isoformat()}T{clock:%H:%M}"


def slots_for_intent(intent: str, c: SlotCandidates) -> dict[str, object]:
    """Canonical JSON slots for `intent` (spec/intents.md), holding only what the text stated."""
    slots: dict[str, object] = {}
    if intent == "weather.lookup":
        if c.city:
            slots["city"] = c.city
        if c.date:
            slots["date"] = c.date.isoformat()
    elif intent in ("calendar.create_draft", "calendar.move"):
        start = _start(c)
        if start:
            slots["start" if intent == "calendar.create_draft" else "new_start"] = start
        if c.people or c.emails:
            slots["attendees"] = [*c.people, *c.emails]
        if intent == "calendar.create_draft" and c.title:
            slots["title"] = c.title
    elif intent == "calendar.list":
        if c.date:
            slots["date"] = c.date.isoformat()
    elif intent == "email.create_draft":
        if c.emails or c.people:
            slots["to"] = (c.emails or c.people)[0]
    elif intent == "timer.set" and c.duration_s:
        slots["duration_s"] = c.duration_s
    return slots


@dataclass(frozen=True)
class IntentSlots:
    """The slots of one intent stated in a text, and the required ones it lacks."""

    slots: dict[str, object]
    missing: tuple[str, ...]
    """Required slots (`required_slots`) the text does not state, sorted."""


def extract_slots(intent: str, text: str, reference_time: dt.datetime, tz: dt.tzinfo | None = None) -> IntentSlots:
    """Canonical slots of `intent` in `text`, resolved against `reference_time` in the user's zone.

    `reference_time` must be timezone-aware; with `tz` it is first converted to that zone (relative days
    such as "imorgon" are the user's days). Deterministic: never reads the wall clock, never raises for any
    text.
    """
    if reference_time.tzinfo is None or reference_time.utcoffset() is None:
        raise ValueError("reference_time must be timezone-aware")
    now = reference_time.astimezone(tz) if tz is not None else reference_time
    found = slots_for_intent(intent, extract(text, now))
    return IntentSlots(found, tuple(sorted(required_slots(intent) - found.keys())))
