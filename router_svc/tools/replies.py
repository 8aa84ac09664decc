"""Swedish reply templates and the Swedish formatting of times, dates, durations and temperatures."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

WEEKDAYS: tuple[str, ...] = ("måndag", "tisdag", "onsdag", "torsdag", "fredag", "lördag", "söndag")
MONTHS: tuple[str, ...] = (
    "januari",
    "februari",
    "mars",
    "april",
    "maj",
    "juni",
    "juli",
    "augusti",
    "september",
    "oktober",
    "november",
    "december",
)


def join_sv(items: Sequence[str]) -> str:
    """ "a", "a och b", "a, b och c"."""
    if not items:
        return ""
    if len(items) == 1:
        return items[0]
    return f"{', '.join(items[:-1])} och {items[-1]}"


def clock(value: dt.datetime | dt.time) -> str:
    """ "14:05" (24-hour clock, as Swedish text writes it)."""
    return f"{value.hour:02d}:{value.minute:02d}"


def day(value: dt.date, today: dt.date | None = None) -> str:
    """ "onsdag 11 mars"; the year is added when it differs from `today`'s."""
    text = f"{WEEKDAYS[value.weekday()]} {value.day} {MONTHS[value.month - 1]}"
    if today is not None and value.year != today.year:
        text += f" {value.year}"
    return text


def when(value: dt.date, at: dt.time | None, today: dt.date | None = None) -> str:
    """ "onsdag 11 mars kl 14:00", or only the day for an all-day entry."""
    text = day(value, today)
    return f"{text} kl {clock(at)}" if at is not None else text


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def duration(seconds: int) -> str:
    """ "45 minuter", "1 timme och 30 minuter", "2 timmar, 5 minuter och 10 sekunder"."""
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts: list[str] = []
    if hours:
        parts.append(_count(hours, "timme", "timmar"))
    if minutes:
        parts.append(_count(minutes, "minut", "minuter"))
    if secs or not parts:
        parts.append(_count(secs, "sekund", "sekunder"))
    return join_sv(parts)


def number(value: float, decimals: int = 1) -> str:
    """Swedish decimal comma, trailing zeros dropped: 3.0 -> "3", 2.45 -> "2,5" (one decimal)."""
    text = f"{value:.{decimals}f}".rstrip("0").rstrip(".") if decimals else f"{value:.0f}"
    if text in ("-0", ""):
        text = "0"
    return text.replace(".", ",")


def degrees(value: float) -> str:
    """Whole degrees with a spoken minus ("minus 3") so text-to-speech reads it right."""
    rounded = round(value)
    return f"minus {-rounded}" if rounded < 0 else str(rounded)


def quote(text: str) -> str:
    """Swedish typographic quotes: ”text”."""
    return f"”{text}”"


# --- templates, one group per tool -------------------------------------------------------------------------


def time_now(local: dt.datetime) -> str:
    return f"Klockan är {clock(local)}."


def timer_set(seconds: int) -> str:
    return f"Timer satt på {duration(seconds)}."


def calendar_draft_created(title: str, start: dt.date, at: dt.time | None, today: dt.date) -> str:
    return f"Jag har lagt in ett utkast: {title} {when(start, at, today)}."


def calendar_moved(subject: str, start: dt.date, at: dt.time | None, today: dt.date) -> str:
    return f"Jag har flyttat {subject} till {when(start, at, today)}."


def calendar_nothing_to_move(attendees: Sequence[str]) -> str:
    if attendees:
        return f"Jag hittar inget möte med {join_sv(attendees)} att flytta."
    return "Jag hittar inget kommande möte att flytta."


def calendar_listing(on: dt.date, today: dt.date, items: Sequence[tuple[dt.time | None, str]]) -> str:
    """items: (time or None for all day, title), already in order."""
    if not items:
        return f"Du har inget inbokat på {day(on, today)}."
    texts = [f"kl {clock(at)} {title}" if at is not None else f"{title} (hela dagen)" for at, title in items]
    return f"På {day(on, today)} har du: {join_sv(texts)}."


def email_draft_created(to: str) -> str:
    return f"Jag har skapat ett utkast till {to}."


def memory_found(notes: Sequence[str]) -> str:
    if len(notes) == 1:
        return f"Du berättade för mig: {quote(notes[0])}."
    return f"Du har berättat för mig: {join_sv([quote(n) for n in notes])}."


MEMORY_NOTHING = "Det har du inte berättat för mig."


def weather_forecast(
    city: str,
    on: dt.date,
    today: dt.date,
    description: str,
    t_min: float | None,
    t_max: float | None,
    precipitation_mm: float | None,
) -> str:
    """Names the day absolutely ("torsdag 12 mars", not "imorgon"): the answer may be served from the cache later."""
    text = f"Vädret i {city} {day(on, today)}: {description}"
    if t_min is not None and t_max is not None:
        text += f", mellan {degrees(t_min)} och {degrees(t_max)} grader"
    elif t_max is not None:
        text += f", upp till {degrees(t_max)} grader"
    if precipitation_mm is not None and precipitation_mm >= 0.1:
        text += f", {number(precipitation_mm)} mm nederbörd"
    return text + "."


WEATHER_UNAVAILABLE = "Väderuppgifter är inte tillgängliga just nu."


def weather_unknown_city(city: str) -> str:
    return f"Jag känner inte till orten {city}, så jag kan inte ta fram vädret där."


def weather_out_of_range(on: dt.date, today: dt.date) -> str:
    if on < today:
        return f"Jag har inga väderuppgifter för {day(on, today)}; jag kan bara se några månader bakåt."
    return f"Jag har ingen prognos för {day(on, today)}; prognosen räcker bara 16 dagar framåt."


# Questions asked when a required argument is missing: an honest answer, not an error status.
ASK_DURATION = "Hur länge ska timern gå?"
ASK_START = "När ska mötet vara? Säg dag och gärna tid, till exempel ”imorgon kl 14”."
ASK_NEW_START = "Till när vill du flytta mötet?"
ASK_RECIPIENT = "Vem ska mejlet gå till?"
ASK_CITY = "För vilken ort vill du veta vädret?"
