"""Swedish formatting of durations, dates, numbers and the reply templates."""

from __future__ import annotations

import datetime as dt

import pytest

from router_svc.tools import replies

TODAY = dt.date(2026, 3, 10)


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        pytest.param(1, "1 sekund", id="one-second"),
        pytest.param(30, "30 sekunder", id="seconds"),
        pytest.param(60, "1 minut", id="one-minute"),
        pytest.param(2700, "45 minuter", id="tre-kvart"),
        pytest.param(3600, "1 timme", id="one-hour"),
        pytest.param(5400, "1 timme och 30 minuter", id="en-och-en-halv-timme"),
        pytest.param(7200, "2 timmar", id="two-hours"),
        pytest.param(7510, "2 timmar, 5 minuter och 10 sekunder", id="all-three"),
        pytest.param(3601, "1 timme och 1 sekund", id="hour-and-second"),
        pytest.param(86400, "24 timmar", id="max"),
        pytest.param(0, "0 sekunder", id="zero"),
    ],
)
def test_duration_in_swedish(seconds: int, expected: str) -> None:
    assert replies.duration(seconds) == expected


def test_negative_duration_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        replies.duration(-1)


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        pytest.param(dt.date(2026, 3, 11), "onsdag 11 mars", id="wednesday"),
        pytest.param(dt.date(2026, 3, 16), "måndag 16 mars", id="monday"),
        pytest.param(dt.date(2026, 12, 31), "torsdag 31 december", id="december"),
        pytest.param(dt.date(2026, 1, 4), "söndag 4 januari", id="sunday-january"),
        pytest.param(dt.date(2026, 5, 30), "lördag 30 maj", id="saturday-may"),
        pytest.param(dt.date(2027, 1, 1), "fredag 1 januari 2027", id="other-year-shows-year"),
    ],
)
def test_day_in_swedish(day: dt.date, expected: str) -> None:
    assert replies.day(day, TODAY) == expected


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        pytest.param(dt.time(14, 0), "onsdag 11 mars kl 14:00", id="afternoon"),
        pytest.param(dt.time(8, 5), "onsdag 11 mars kl 08:05", id="leading-zeros"),
        pytest.param(None, "onsdag 11 mars", id="all-day"),
    ],
)
def test_when(at: dt.time | None, expected: str) -> None:
    assert replies.when(dt.date(2026, 3, 11), at, TODAY) == expected


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        pytest.param([], "", id="none"),
        pytest.param(["Anna"], "Anna", id="one"),
        pytest.param(["Anna", "Karin"], "Anna och Karin", id="two"),
        pytest.param(["Anna", "Karin", "Bo"], "Anna, Karin och Bo", id="three"),
    ],
)
def test_join_sv(items: list[str], expected: str) -> None:
    assert replies.join_sv(items) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(3.0, "3", id="whole"),
        pytest.param(3.4, "3,4", id="decimal-comma"),
        pytest.param(0.04, "0", id="rounds-to-zero"),
        pytest.param(10.0, "10", id="ten"),
        pytest.param(-0.04, "0", id="negative-zero"),
    ],
)
def test_number_uses_decimal_comma(value: float, expected: str) -> None:
    assert replies.number(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(4.6, "5", id="rounds"),
        pytest.param(-3.2, "minus 3", id="spoken-minus"),
        pytest.param(-0.4, "0", id="no-minus-zero"),
    ],
)
def test_degrees(value: float, expected: str) -> None:
    assert replies.degrees(value) == expected


def test_time_now_reply() -> None:
    assert replies.time_now(dt.datetime(2026, 3, 10, 14, 5)) == "Klockan är 14:05."


def test_timer_reply() -> None:
    assert replies.timer_set(2700) == "Timer satt på 45 minuter."


def test_calendar_replies() -> None:
    assert (
        replies.calendar_draft_created("möte med Anna", dt.date(2026, 3, 11), dt.time(14, 0), TODAY)
        == "Jag har lagt in ett utkast: möte med Anna onsdag 11 mars kl 14:00."
    )
    assert replies.calendar_nothing_to_move(["Anna"]) == "Jag hittar inget möte med Anna att flytta."
    assert replies.calendar_nothing_to_move([]) == "Jag hittar inget kommande möte att flytta."
    assert replies.calendar_listing(dt.date(2026, 3, 11), TODAY, []) == "Du har inget inbokat på onsdag 11 mars."
    items = [(None, "konferens"), (dt.time(9, 0), "frukost"), (dt.time(14, 0), "möte med Anna")]
    assert (
        replies.calendar_listing(dt.date(2026, 3, 11), TODAY, items)
        == "På onsdag 11 mars har du: konferens (hela dagen), kl 09:00 frukost och kl 14:00 möte med Anna."
    )


def test_weather_reply_names_the_day_absolutely() -> None:
    text = replies.weather_forecast("Luleå", dt.date(2026, 3, 11), TODAY, "lätt snöfall", -9.2, -3.1, 1.2)
    assert text == "Vädret i Luleå onsdag 11 mars: lätt snöfall, mellan minus 9 och minus 3 grader, 1,2 mm nederbörd."


def test_weather_reply_without_precipitation_or_minimum() -> None:
    text = replies.weather_forecast("Malmö", dt.date(2026, 3, 10), TODAY, "klart", None, 8.0, 0.0)
    assert text == "Vädret i Malmö tisdag 10 mars: klart, upp till 8 grader."
