"""Swedish slot extraction against the reference Tuesday 2026-03-10 09:00 Europe/Stockholm."""

from __future__ import annotations

import datetime as dt
import random
import time
from zoneinfo import ZoneInfo

import pytest

from alice.swedish.slots import SlotCandidates, extract, required_slots, slots_for_intent

TZ = ZoneInfo("Europe/Stockholm")
NOW = dt.datetime(2026, 3, 10, 9, 0, tzinfo=TZ)


def _case(text: str, *expected: object, id: str | None = None) -> object:
    return pytest.param(text, *expected, id=id or text)


# ---------------------------------------------------------------------------------------------- days

DATES = [
    _case("idag", "2026-03-10"),
    _case("i dag", "2026-03-10"),
    _case("imorgon", "2026-03-11"),
    _case("imorn", "2026-03-11"),
    _case("i morgon", "2026-03-11"),
    _case("Imorgon", "2026-03-11", id="Imorgon-capitalised"),
    _case("imorgon bitti", "2026-03-11"),
    _case("i övermorgon", "2026-03-12"),
    _case("övermorgon", "2026-03-12"),
    _case("i overmorgon", "2026-03-12", id="i-overmorgon-no-diacritics"),
    _case("igår", "2026-03-09"),
    _case("i förrgår", "2026-03-08"),
    _case("på fredag", "2026-03-13"),
    _case("pa fredag", "2026-03-13", id="pa-fredag-no-diacritics"),
    _case("fredag", "2026-03-13"),
    _case("på måndag", "2026-03-16"),
    _case("på tisdag", "2026-03-17", id="på-tisdag-said-on-a-tuesday"),
    _case("på onsdag", "2026-03-11"),
    _case("på söndag", "2026-03-15"),
    _case("nu på lördag", "2026-03-14"),
    _case("på torsdagen", "2026-03-12"),
    _case("nästa tisdag", "2026-03-17"),
    _case("nästa fredag", "2026-03-20", id="nästa-fredag-is-next-weeks-friday"),
    _case("nästa måndag", "2026-03-16"),
    _case("fredag nästa vecka", "2026-03-20"),
    _case("nästa vecka på onsdag", "2026-03-18"),
    _case("i fredags", "2026-03-06"),
    _case("i tisdags", "2026-03-03"),
    _case("förra fredagen", "2026-03-06"),
    _case("den 24 mars", "2026-03-24"),
    _case("24 mars", "2026-03-24"),
    _case("den 24:e mars", "2026-03-24"),
    _case("24 mar", "2026-03-24"),
    _case("den 24 mars 2027", "2027-03-24"),
    _case("den tjugofjärde mars", "2026-03-24"),
    _case("den första april", "2026-04-01"),
    _case("24/3", "2026-03-24"),
    _case("1/4", "2026-04-01"),
    _case("2026-04-01", "2026-04-01", id="iso"),
    _case("den 24:e", "2026-03-24"),
    _case("den 24", "2026-03-24"),
    _case("den 2:a", "2026-04-02", id="den-2:a-passed-this-month"),
    _case("den 2 mars", "2026-03-02", id="recent-past-day-month-stays-this-year"),
    _case("den 5 januari", "2027-01-05", id="older-day-month-is-next-year"),
    _case("den 29 februari", "2028-02-29"),
    _case("om tre dagar", "2026-03-13"),
    _case("om 3 dagar", "2026-03-13"),
    _case("om en vecka", "2026-03-17"),
    _case("om två veckor", "2026-03-24"),
    _case("ikväll", "2026-03-10"),
    _case("i kväll", "2026-03-10"),
    _case("i eftermiddag", "2026-03-10"),
    _case("dagens möten", "2026-03-10"),
    _case("visa torsdagens möten", "2026-03-12"),
    _case("resten av dagen", "2026-03-10"),
    _case("today", "2026-03-10"),
    _case("tomorrow", "2026-03-11"),
    _case("the day after tomorrow", "2026-03-12"),
    _case("on friday", "2026-03-13"),
    _case("next friday", "2026-03-20"),
    _case("24 march", "2026-03-24"),
    _case("på tisdag den 24 mars", "2026-03-24", id="explicit-date-beats-weekday"),
    _case("flytta mötet från måndag till onsdag", "2026-03-11", id="move-takes-the-day-after-till"),
]


@pytest.mark.parametrize(("text", "expected"), DATES)
def test_dates(text: str, expected: str) -> None:
    found = extract(text, NOW).date
    assert found is not None
    assert found.isoformat() == expected


@pytest.mark.parametrize(
    "text",
    [
        "31/2",
        "den andra",
        "boka möte",
        "mötet med Anna",
        "en dag",
        "hej",
        "3 dagar",
        "i dagarna",
        "i helgen",
        "nästa vecka",
        "just nu",
        "flytta fredagsmötet",
    ],
)
def test_no_date(text: str) -> None:
    assert extract(text, NOW).date is None


# -------------------------------------------------------------------------------------- clock times

TIMES = [
    # text, time as said (no afternoon rule), bare hour, start of a meeting "imorgon"
    _case("kl 14", "14:00", False, "14:00"),
    _case("kl. 14", "14:00", False, "14:00"),
    _case("klockan 14", "14:00", False, "14:00"),
    _case("kl 8.30", "08:30", False, "08:30"),
    _case("kl 08:30", "08:30", False, "08:30"),
    _case("kl 14:45", "14:45", False, "14:45"),
    _case("14.15", "14:15", False, "14:15"),
    _case("8:30", "08:30", False, "08:30"),
    _case("halv tre", "02:30", True, "14:30"),
    _case("klockan halv tre", "02:30", True, "14:30"),
    _case("halv ett", "00:30", True, "12:30"),
    _case("halv tolv", "11:30", False, "11:30"),
    _case("kvart i fyra", "03:45", True, "15:45"),
    _case("kvart över tio", "10:15", False, "10:15"),
    _case("kvart over tio", "10:15", False, "10:15", id="kvart-over-tio-no-diacritics"),
    _case("fem i halv tre", "02:25", True, "14:25"),
    _case("fem över halv tre", "02:35", True, "14:35"),
    _case("tjugo över nio", "09:20", False, "09:20"),
    _case("tio i tolv", "11:50", False, "11:50"),
    _case("klockan två", "02:00", True, "14:00"),
    _case("kl 3", "03:00", True, "15:00"),
    _case("kl 03:00", "03:00", False, "03:00", id="zero-padded-is-not-bare"),
    _case("klockan sju", "07:00", True, "19:00"),
    _case("klockan åtta", "08:00", False, "08:00"),
    _case("klockan fjorton trettio", "14:30", False, "14:30"),
    _case("kl 9 på morgonen", "09:00", False, "09:00"),
    _case("klockan sju på kvällen", "19:00", False, "19:00"),
    _case("kl 3 på eftermiddagen", "15:00", False, "15:00"),
    _case("ikväll kl 8", "20:00", False, "20:00", id="ikväll-kl-8"),
    _case("bitti kl 7", "07:00", False, "07:00"),
    _case("vid tretiden", "03:00", True, "15:00"),
    _case("vid 15-tiden", "15:00", False, "15:00"),
    _case("at 3", "03:00", True, "15:00"),
    _case("at 10.30", "10:30", False, "10:30"),
    _case("3pm", "15:00", False, "15:00"),
    _case("at 9 am", "09:00", False, "09:00"),
    _case("kl 14-15", "14:00", False, "14:00", id="range-starts-at-first"),
    _case("kl 14 till 15", "14:00", False, "14:00", id="range-with-till-starts-at-first"),
]


@pytest.mark.parametrize(("text", "said", "bare", "meeting"), TIMES)
def test_clock_times(text: str, said: str, bare: bool, meeting: str) -> None:
    candidates = extract(text, NOW)
    assert candidates.time is not None
    assert candidates.time.strftime("%H:%M") == said
    assert candidates.time_is_bare_hour is bare
    slots = slots_for_intent("calendar.create_draft", extract(f"boka möte imorgon {text}", NOW))
    assert slots["start"] == f"2026-03-11T{meeting}"


@pytest.mark.parametrize(
    "text",
    [
        "vad är klockan",
        "vad är klockan i London",
        "tre i rad",
        "lunch med Anna",
        "imorgon eftermiddag",
        "måndag morgon",
        "version 1.2.3",
        "mejla till 3 personer",
    ],
)
def test_no_clock_time(text: str) -> None:
    assert extract(text, NOW).time is None


@pytest.mark.parametrize(
    ("text", "start"),
    [
        _case("boka möte kl 8", "2026-03-11T08:00", id="time-passed-today-means-tomorrow"),
        _case("boka möte kl 9", "2026-03-10T09:00", id="time-now-is-today"),
        _case("boka möte klockan två", "2026-03-10T14:00"),
        _case("boka möte på fredag", "2026-03-13", id="day-only"),
        _case("boka möte om en timme", "2026-03-10T10:00", id="relative"),
        _case("flytta mötet från kl 10 till kl 14", "2026-03-10T14:00"),
        _case("flytta mötet på fredag kl 10 till måndag kl 14", "2026-03-16T14:00"),
        _case("flytta mötet med Anna till 15", "2026-03-10T15:00"),
        _case("flytta mötet till fyra", "2026-03-10T16:00"),
    ],
)
def test_meeting_starts(text: str, start: str) -> None:
    intent = "calendar.move" if text.startswith("flytta") else "calendar.create_draft"
    key = "new_start" if intent == "calendar.move" else "start"
    assert slots_for_intent(intent, extract(text, NOW))[key] == start


# ---------------------------------------------------------------------------------------- durations

DURATIONS = [
    _case("tre kvart", 2700),
    _case("en kvart", 900),
    _case("en halvtimme", 1800),
    _case("en halv timme", 1800),
    _case("halvtimme", 1800),
    _case("en och en halv timme", 5400),
    _case("två och en halv timme", 9000),
    _case("en och en halv minut", 90),
    _case("en halv minut", 30),
    _case("90 sekunder", 90),
    _case("5 min", 300),
    _case("5min", 300),
    _case("fem minuter", 300),
    _case("en minut", 60),
    _case("en timme", 3600),
    _case("en timme och tio minuter", 4200),
    _case("en timme och en kvart", 4500),
    _case("en timme och en halv", 5400),
    _case("2 timmar", 7200),
    _case("2 timmar 15 minuter", 8100),
    _case("1h 30min", 5400),
    _case("1,5 timmar", 5400),
    _case("10 min och 30 sek", 630),
    _case("tjugo sekunder", 20),
    _case("halvannan timme", 5400),
    _case("2,5 timmar", 9000),
    _case("1h 20 min", 4800),
    _case("starta en tjugominuterstimer", 1200),
    _case("en 5-minutersnedräkning", 300),
    _case("en kvarts nedräkning", 900),
    _case("timer for 10 minutes", 600),
    _case("tjugofem minuter", 1500),
    _case("trettio sekunder", 30),
    _case("fyrtiofem sekunder", 45),
    _case("femti minuter", 3000, id="spoken-femti"),
    _case("sextio sekunder", 60),
    _case("starta en timer på tjugo minuter", 1200),
    _case("sätt en timer på fem minuter", 300),
]


@pytest.mark.parametrize(("text", "seconds"), DURATIONS)
def test_durations(text: str, seconds: int) -> None:
    assert extract(text, NOW).duration_s == seconds


@pytest.mark.parametrize(
    ("word", "value"),
    [
        ("en", 1), ("ett", 1), ("två", 2), ("tre", 3), ("fyra", 4), ("fem", 5), ("sex", 6), ("sju", 7),
        ("åtta", 8), ("nio", 9), ("tio", 10), ("elva", 11), ("tolv", 12), ("tretton", 13), ("fjorton", 14),
        ("femton", 15), ("sexton", 16), ("sjutton", 17), ("arton", 18), ("nitton", 19), ("tjugo", 20),
        ("tjugoett", 21), ("tjugotvå", 22), ("tjugofem", 25), ("trettio", 30), ("trettiosju", 37),
        ("fyrtio", 40), ("fyrtiotvå", 42), ("femtio", 50), ("femtionio", 59), ("sextio", 60), ("sjuttio", 70),
        ("åttio", 80), ("nittionio", 99),
    ],
)  # fmt: skip
def test_number_words(word: str, value: int) -> None:
    assert extract(f"{word} sekunder", NOW).duration_s == value


def test_om_gives_duration_and_relative_time() -> None:
    candidates = extract("påminn mig om 20 minuter", NOW)
    assert candidates.duration_s == 1200
    assert candidates.time == dt.time(9, 20)


# ------------------------------------------------------------------------------------------- people

PEOPLE = [
    _case("boka möte med Anna", ("Anna",)),
    _case("lägg in möte med Sara och Johan på fredag kl 10", ("Sara", "Johan")),
    _case("möte med Erik, Lisa och Omar", ("Erik", "Lisa", "Omar")),
    _case("skicka ett mejl till Per", ("Per",)),
    _case("mejla Karin", ("Karin",)),
    _case("Mejla Karin om fakturan", ("Karin",)),
    _case("flytta mötet med Anna", ("Anna",)),
    _case("bjud in Karin och Omar", ("Karin", "Omar")),
    _case("boka möte med Anna Svensson och Per", ("Anna Svensson", "Per")),
    _case("möte med Zlatan imorgon", ("Zlatan",), id="unknown-capitalised-name-after-med"),
    _case("mejla per", ("per",), id="lowercase-ambiguous-name-after-cue"),
    _case("book a meeting with Martin", ("Martin",)),
    _case("med Klara och Per", ("Klara", "Per")),
    _case("möte med anna och johan", ("anna", "johan"), id="lowercase-known-names-as-written"),
    _case("BOKA MÖTE MED ANNA IMORGON", ("ANNA",)),
    _case("Boka Möte Med Anna Och Johan Imorgon", ("Anna", "Johan"), id="title-case"),
    _case("Anna och jag behöver ett möte på fredag", ("Anna",)),
    _case("Hej Alice, boka möte med Lisa", ("Lisa",)),
    _case("möte med Åsa och Björn", ("Åsa", "Björn")),
    _case("möte med Anna-Karin", ("Anna-Karin",)),
    _case("möte med teamet imorgon", ()),
    _case("möte på Fredag med Stockholm", (), id="weekday-and-city-are-not-people"),
    _case("Möte i Göteborg i Mars", ()),
    _case("Vad är huvudstaden i Peru?", ()),
    _case("Hur högt är Mount Everest?", ()),
    _case("en gång per dag", ()),
    _case("Inga möten idag", ()),
    _case("jag klarar det inte", ()),
    _case("med max fem personer", ()),
    _case("Imorgon vill jag ha ett möte", ()),
]


@pytest.mark.parametrize(("text", "people"), PEOPLE)
def test_people(text: str, people: tuple[str, ...]) -> None:
    assert extract(text, NOW).people == people


# ------------------------------------------------------------------------------------------- emails

EMAILS = [
    _case("mejla anna@firma.se", ("anna@firma.se",)),
    _case("skicka till åsa@exempel.se", ("åsa@exempel.se",)),
    _case("mejla per@bücher.de.", ("per@bücher.de",), id="idn-domain-and-full-stop"),
    _case("mejla Anna.Berg+jobb@sub.firma.co.uk", ("Anna.Berg+jobb@sub.firma.co.uk",)),
    _case("mejla xn--80ak6aa92e@xn--e1afmkfd.xn--p1ai", ("xn--80ak6aa92e@xn--e1afmkfd.xn--p1ai",)),
    _case("mejla пример@пример.рф", ("пример@пример.рф",)),
    _case("mejla a@b.se och c@d.se", ("a@b.se", "c@d.se")),
    _case("mejla @ nån", ()),
    _case("a@b", ()),
]


@pytest.mark.parametrize(("text", "emails"), EMAILS)
def test_emails(text: str, emails: tuple[str, ...]) -> None:
    candidates = extract(text, NOW)
    assert candidates.emails == emails
    assert not set(candidates.people) & {e.split("@")[0] for e in emails}


# ------------------------------------------------------------------------------------------- cities

CITIES = [
    _case("vädret i Göteborg", "Göteborg"),
    _case("vädret i Gbg", "Göteborg"),
    _case("vädret i gbg", "Göteborg"),
    _case("vädret i goteborg", "Göteborg"),
    _case("vädret i gött", "Göteborg"),
    _case("Göteborgs väder", "Göteborg", id="genitive"),
    _case("vädret i sthlm", "Stockholm"),
    _case("vädret i Stockholm", "Stockholm"),
    _case("vädret i stockholm", "Stockholm"),
    _case("väder malmo", "Malmö"),
    _case("väder norrkoping", "Norrköping"),
    _case("väder linkoping", "Linköping"),
    _case("väder vasteras", "Västerås"),
    _case("väder orebro", "Örebro"),
    _case("väder jonkoping", "Jönköping"),
    _case("väder umea", "Umeå"),
    _case("väder lulea", "Luleå"),
    _case("väder gavle", "Gävle"),
    _case("väder sundsvall", "Sundsvall"),
    _case("väder uppsala", "Uppsala"),
    _case("väder kiruna", "Kiruna"),
    _case("väder visby", "Visby"),
    _case("väder helsingborg", "Helsingborg"),
    _case("väder lund", "Lund"),
    _case("väder karlstad", "Karlstad"),
    _case("väder vaxjo", "Växjö"),
    _case("väder växjö", "Växjö"),
    _case("väder halmstad", "Halmstad"),
    _case("väder ostersund", "Östersund"),
    _case("väder boras", "Borås"),
    _case("väder kalmar", "Kalmar"),
    _case("väder falun", "Falun"),
    _case("väder skelleftea", "Skellefteå"),
    _case("väder trollhattan", "Trollhättan"),
    _case("väder eskilstuna", "Eskilstuna"),
    _case("väder sodertalje", "Södertälje"),
    _case("väder i Oslo", "Oslo"),
    _case("väder i Köpenhamn", "Köpenhamn"),
    _case("väder i Helsingfors", "Helsingfors"),
    _case("väder i London", "London"),
    _case("väder i Paris", "Paris"),
    _case("väder i Berlin", "Berlin"),
    _case("väder i ö-vik", "Örnsköldsvik"),
    _case("weather in gothenburg", "Göteborg"),
    _case("hur blir vädret i Luleå på torsdag", "Luleå"),
]


@pytest.mark.parametrize(("text", "city"), CITIES)
def test_cities(text: str, city: str) -> None:
    assert extract(text, NOW).city == city


@pytest.mark.parametrize("text", ["det smakar gott", "gött väder idag", "lundaluft", "hej", "mejla anna@goteborg.se"])
def test_no_city(text: str) -> None:
    assert extract(text, NOW).city is None


# ------------------------------------------------------------------------------------------- titles


@pytest.mark.parametrize(
    ("text", "title"),
    [
        _case("boka möte om budgeten imorgon kl 14", "budgeten"),
        _case("möte angående Q2-budgeten med Sara på torsdag", "Q2-budgeten"),
        _case('boka "Planering inför våren" på fredag', "Planering inför våren"),
        _case("boka möte med Anna imorgon", None),
        _case("boka möte om tre dagar", None),
    ],
)
def test_titles(text: str, title: str | None) -> None:
    assert extract(text, NOW).title == title


# ------------------------------------------------------------------------------------ intent slots

INTENT_SLOTS = [
    _case("blir det regn i Uppsala på torsdag?", "weather.lookup", {"city": "Uppsala", "date": "2026-03-12"}),
    _case("väder i sthlm imorgon", "weather.lookup", {"city": "Stockholm", "date": "2026-03-11"}),
    _case("hur blir vädret imorgon kl 14", "weather.lookup", {"date": "2026-03-11"}, id="weather-ignores-time"),
    _case(
        "lägg in möte med Sara och Johan på fredag kl 10",
        "calendar.create_draft",
        {"start": "2026-03-13T10:00", "attendees": ["Sara", "Johan"]},
    ),
    _case(
        "Boka möte med Anna imorgon kl 14 om budgeten",
        "calendar.create_draft",
        {"start": "2026-03-11T14:00", "attendees": ["Anna"], "title": "budgeten"},
    ),
    _case(
        "boka möte med anna@firma.se på fredag halv tre",
        "calendar.create_draft",
        {"start": "2026-03-13T14:30", "attendees": ["anna@firma.se"]},
    ),
    _case(
        "flytta mötet med Anna till nästa fredag kvart i fyra",
        "calendar.move",
        {"new_start": "2026-03-20T15:45", "attendees": ["Anna"]},
    ),
    _case("vad har jag i kalendern på måndag", "calendar.list", {"date": "2026-03-16"}),
    _case("vad har jag i kalendern", "calendar.list", {}),
    _case("mejla Karin om mötet", "email.create_draft", {"to": "Karin"}),
    _case("skicka ett mejl till per@bücher.de", "email.create_draft", {"to": "per@bücher.de"}),
    _case("starta en timer på tjugo minuter", "timer.set", {"duration_s": 1200}),
    _case("timer tre kvart", "timer.set", {"duration_s": 2700}),
    _case(
        "skjut upp lunchen med Nils till onsdag",
        "calendar.move",
        {"new_start": "2026-03-11", "attendees": ["Nils"]},
    ),
    _case(
        "reschedule the meeting with Magnus to tuesday at 1",
        "calendar.move",
        {"new_start": "2026-03-17T13:00", "attendees": ["Magnus"]},
    ),
    _case("hej! vad är klockan nu", "time.now", {}),
    _case("Hur högt är Kebnekaise i Kiruna?", "info.query", {}),
    _case("tjena", "greeting.hello", {}),
    _case("vad sa jag om Anna igår", "memory.query", {}),
]


@pytest.mark.parametrize(("text", "intent", "slots"), INTENT_SLOTS)
def test_slots_for_intent(text: str, intent: str, slots: dict[str, object]) -> None:
    assert slots_for_intent(intent, extract(text, NOW)) == slots


def test_time_only_start_needs_a_reference() -> None:
    assert slots_for_intent("calendar.create_draft", SlotCandidates(time=dt.time(14, 0))) == {}


@pytest.mark.parametrize(
    ("intent", "required"),
    [
        ("weather.lookup", {"city"}),
        ("calendar.create_draft", {"start"}),
        ("calendar.move", {"new_start"}),
        ("calendar.list", set()),
        ("email.create_draft", {"to"}),
        ("timer.set", {"duration_s"}),
        ("time.now", set()),
        ("info.query", set()),
        ("no.such.intent", set()),
    ],
)
def test_required_slots(intent: str, required: set[str]) -> None:
    assert required_slots(intent) == required


# ----------------------------------------------------------------------------- reference and safety


def test_resolves_against_the_given_reference_not_the_wall_clock() -> None:
    new_year = dt.datetime(2030, 12, 31, 23, 30, tzinfo=ZoneInfo("America/New_York"))
    candidates = extract("imorgon på fredag", new_year)
    assert candidates.date == dt.date(2031, 1, 1)
    assert extract("nästa fredag", new_year).date == dt.date(2031, 1, 10)
    assert candidates.reference == new_year


def test_reference_at_the_end_of_the_calendar() -> None:
    end = dt.datetime(9999, 12, 31, 23, 30, tzinfo=dt.UTC)
    candidates = extract("imorgon om en timme, nästa fredag den 24 mars om 5 dagar", end)
    assert candidates.time == dt.time(0, 30)
    assert slots_for_intent("calendar.create_draft", extract("boka möte kl 8", end)) == {}


def _adversarial() -> list[object]:
    rnd = random.Random(20260310)
    alphabet = "aåäöAÅÄÖé@.:/-,;0123456789 \t\n\u0000\u200b\u0301\ud800ЖΩ漢🙂kltimedn"
    inputs = {
        "empty": "",
        "spaces": "   ",
        "control": "\u0000\u0007 vad är klockan",
        "emoji": "🙂🙃👨‍👩‍👧" * 10,
        "mixed-scripts": "Встреча 会议 اجتماع möte med Анна kl ١٤",
        "lone-surrogate": "kl 14 \ud800 med Anna",
        "letters": "a" * 2000,
        "digits": "1" * 2000,
        "ats": "@" * 2000,
        "a-at": "a@" * 1000,
        "dotted-local-part": "a." * 1000 + "@",
        "long-domain": "x@" + "a." * 999,
        "hyphen-labels": "a" * 64 + "@" + "b-" * 967 + ".se",
        "kl": "kl 1 " * 400,
        "om-och": "om en timme och " * 125,
        "names": "med Anna, " * 200,
        "dates": "den 24 mars " * 166,
        "halv": "halv " * 400,
        "och-en-halv": "en och en halv " * 133,
        "kvart-i": "kvart i " * 250,
        "capitals": "Anna " * 400,
        "quotes": '"' * 2000,
        "dots-and-digits": "9." * 1000,
        "over-limit": "hej " * 50000,
    }
    for n in range(10):
        inputs[f"random-{n}"] = "".join(rnd.choice(alphabet) for _ in range(2000))
    return [pytest.param(text, id=name) for name, text in inputs.items()]


@pytest.mark.parametrize("text", _adversarial())
def test_any_input_returns_quickly(text: str) -> None:
    started = time.process_time()
    candidates = extract(text, NOW)
    # A generous bound: it only catches catastrophic regex backtracking, which takes seconds to minutes.
    assert time.process_time() - started < 2.0
    for intent in ("weather.lookup", "calendar.create_draft", "calendar.move", "email.create_draft", "timer.set"):
        slots_for_intent(intent, candidates)
