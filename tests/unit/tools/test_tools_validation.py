"""Argument validation happens before any storage call and fails with clear InvalidArgument messages."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from tool_helpers import REFERENCE, NeverCalledProvider, UntouchableRedis, make_ctx

from alice.runtime.errors import InvalidArgument
from router_svc.tools import (
    ClockTool,
    OfflineGeocoder,
    ToolContext,
    ToolRegistry,
    ToolResult,
    build_registry,
    fixed_clock,
    user_key,
    user_tag,
)
from router_svc.tools.email import parse_recipient

REGISTRY = build_registry(NeverCalledProvider())


async def run(intent: str, args: dict[str, object], ctx: ToolContext | None = None) -> None:
    await REGISTRY.run(intent, args, ctx or make_ctx())


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param(0, "between 1 s and 24 h", id="zero"),
        pytest.param(-5, "between 1 s and 24 h", id="negative"),
        pytest.param(86401, "between 1 s and 24 h", id="over-24h"),
        pytest.param(10**12, "between 1 s and 24 h", id="huge"),
        pytest.param("600", "integer number of seconds", id="string"),
        pytest.param(60.5, "integer number of seconds", id="float"),
        pytest.param(True, "integer number of seconds", id="bool"),
        pytest.param([60], "integer number of seconds", id="list"),
    ],
)
async def test_timer_duration_is_checked(value: object, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        await run("timer.set", {"duration_s": value})


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param("imorgon kl 14", "must be YYYY-MM-DD or YYYY-MM-DDTHH:MM", id="words"),
        pytest.param("2026-03-11 14:00", "must be YYYY-MM-DD or YYYY-MM-DDTHH:MM", id="space-separator"),
        pytest.param("2026-03-11T14:00:00", "must be YYYY-MM-DD or YYYY-MM-DDTHH:MM", id="seconds"),
        pytest.param("2026-02-30", "not a real calendar date", id="february-30"),
        pytest.param("2026-03-11T25:00", "not a real calendar date", id="hour-25"),
        pytest.param("2099-03-11T10:00", "too far from today", id="far-future"),
        pytest.param("1999-03-11", "too far from today", id="far-past"),
        pytest.param(20260311, "must be YYYY-MM-DD", id="number"),
        pytest.param("x" * 10_000, "must be YYYY-MM-DD", id="huge-string"),
    ],
)
async def test_calendar_start_must_be_parseable(value: object, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        await run("calendar.create_draft", {"start": value, "attendees": ["Anna"]})
    with pytest.raises(InvalidArgument, match=message):
        await run("calendar.move", {"new_start": value})


async def test_error_message_does_not_echo_huge_values() -> None:
    with pytest.raises(InvalidArgument) as caught:
        await run("calendar.create_draft", {"start": "x" * 10_000})
    assert len(caught.value.message) < 200


@pytest.mark.parametrize(
    ("attendees", "message"),
    [
        pytest.param("Anna", "must be a list of names", id="not-a-list"),
        pytest.param(["Anna", ""], "empty name", id="empty-name"),
        pytest.param(["  "], "empty name", id="blank-name"),
        pytest.param(["Anna", 7], "must be names", id="number"),
        pytest.param([f"Person{i}" for i in range(21)], "at most 20 attendees", id="21-attendees"),
        pytest.param(["A" * 101], "not a plausible name", id="long-name"),
        pytest.param(["Anna\x00"], "not a plausible name", id="control-character"),
    ],
)
async def test_attendees_are_checked(attendees: object, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        await run("calendar.create_draft", {"start": "2026-03-11T14:00", "attendees": attendees})


@pytest.mark.parametrize(
    ("title", "message"),
    [
        pytest.param("x" * 201, "201 characters long; the limit is 200", id="201-chars"),
        pytest.param(42, "title must be a string", id="number"),
        pytest.param("möte\x1b[31m", "control characters", id="escape-sequence"),
    ],
)
async def test_title_is_checked(title: object, message: str) -> None:
    with pytest.raises(InvalidArgument, match=re.escape(message)):
        await run("calendar.create_draft", {"start": "2026-03-11T14:00", "title": title})


@pytest.mark.parametrize(
    ("to", "kind"),
    [
        pytest.param("Karin", "name", id="first-name"),
        pytest.param("Anna-Lena Öberg", "name", id="full-name"),
        pytest.param("O'Brien", "name", id="apostrophe"),
        pytest.param("karin@exempel.se", "address", id="address"),
        pytest.param("karin.berg+alice@mail.exempel.se", "address", id="plus-and-subdomain"),
        pytest.param("info@räksmörgås.se", "address", id="idn-domain"),
        pytest.param("info@xn--rksmrgs-5wao1o.se", "address", id="punycode-domain"),
        pytest.param("åsa@exempel.se", "address", id="utf8-local-part"),
        pytest.param("user@例え.jp", "address", id="idn-japanese"),
    ],
)
def test_valid_recipients(to: str, kind: str) -> None:
    assert parse_recipient(to).kind == kind


def test_idn_domain_gets_its_ascii_form() -> None:
    assert parse_recipient("info@räksmörgås.se").ascii_address == "info@xn--rksmrgs-5wao1o.se"


@pytest.mark.parametrize(
    "to",
    [
        pytest.param("karin@", id="no-domain"),
        pytest.param("@exempel.se", id="no-local-part"),
        pytest.param("karin@exempel", id="single-label-domain"),
        pytest.param("karin@@exempel.se", id="double-at"),
        pytest.param("kar in@exempel.se", id="space"),
        pytest.param("karin..berg@exempel.se", id="double-dot"),
        pytest.param(".karin@exempel.se", id="leading-dot"),
        pytest.param("karin@exempel..se", id="empty-label"),
        pytest.param("karin@-exempel.se", id="leading-hyphen"),
        pytest.param("karin@exempel_x.se", id="underscore-domain"),
        pytest.param("karin@1.2.3.4", id="numeric-tld"),
        pytest.param("karin@[127.0.0.1]", id="ip-literal"),
        pytest.param("<script>@exempel.se", id="angle-brackets"),
        pytest.param("a" * 65 + "@exempel.se", id="local-part-65"),
        pytest.param("karin@" + "a" * 64 + ".se", id="label-64"),
        pytest.param("Karin; DROP TABLE", id="name-with-semicolon"),
        pytest.param("R2D2", id="name-with-digits"),
        pytest.param("", id="empty"),
        pytest.param("K" * 101, id="long-name"),
    ],
)
def test_invalid_recipients(to: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_recipient(to)


async def test_email_to_must_be_a_string() -> None:
    with pytest.raises(InvalidArgument, match="to must be a string"):
        await run("email.create_draft", {"to": ["karin@exempel.se"]})


@pytest.mark.parametrize(
    ("intent", "args", "message"),
    [
        pytest.param("greeting.hello", {}, "has no tool", id="intent-without-tool"),
        pytest.param("info.query", {}, "has no tool", id="info-query"),
        pytest.param("weather.forecast", {}, "unknown intent", id="unknown-intent"),
        pytest.param("calendar.list", {"user_id": "bob"}, "unknown argument", id="user-id-argument"),
        pytest.param("timer.set", {"duration_s": 60, "sound": "ring"}, "unknown argument", id="unknown-argument"),
    ],
)
async def test_registry_refuses_bad_calls(intent: str, args: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        await run(intent, args)


async def test_slots_of_other_tools_are_ignored_and_reported() -> None:
    result = await run_result("time.now", {"city": "Göteborg"})
    assert result.data["ignored_args"] == ["city"]


async def run_result(intent: str, args: dict[str, object]) -> ToolResult:
    return await REGISTRY.run(intent, args, make_ctx())


@pytest.mark.parametrize(
    ("intent", "reply"),
    [
        pytest.param("timer.set", "Hur länge ska timern gå?", id="timer"),
        pytest.param("calendar.create_draft", "När ska mötet vara?", id="calendar-create"),
        pytest.param("calendar.move", "Till när vill du flytta mötet?", id="calendar-move"),
        pytest.param("email.create_draft", "Vem ska mejlet gå till?", id="email"),
        pytest.param("weather.lookup", "För vilken ort vill du veta vädret?", id="weather"),
    ],
)
async def test_missing_required_argument_gets_a_question_not_an_error(intent: str, reply: str) -> None:
    result = await run_result(intent, {})
    assert result.reply.startswith(reply)
    assert not result.mutated and not result.cacheable
    assert result.data["missing"]


def test_registry_knows_every_taxonomy_tool() -> None:
    from alice.taxonomy import TOOLS

    assert sorted(REGISTRY.names) == sorted(TOOLS)


def test_registry_refuses_duplicates_and_strangers() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        ToolRegistry([ClockTool(), ClockTool()])

    class Stranger(ClockTool):
        name = "shell.exec"

    with pytest.raises(ValueError, match="not in the taxonomy"):
        ToolRegistry([Stranger()])


@pytest.mark.parametrize(
    ("user_id", "message"),
    [
        pytest.param("", "empty", id="empty"),
        pytest.param("   ", "empty", id="blank"),
        pytest.param("u" * 257, "longer than 256", id="too-long"),
        pytest.param("u1\nu2", "control characters", id="newline"),
    ],
)
def test_context_refuses_bad_user_ids(user_id: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        make_ctx(user_id=user_id)


def test_context_needs_an_aware_reference_time() -> None:
    with pytest.raises(InvalidArgument, match="time-zone aware"):
        ToolContext(user_id="u1", now=dt.datetime(2026, 3, 10, 9, 0), redis=UntouchableRedis())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("user_id", "tag"),
    [
        pytest.param("u1", "{u:u1}", id="plain"),
        pytest.param("anna@exempel.se", "{u:anna%40exempel.se}", id="email-like"),
        pytest.param("a}b{c", "{u:a%7Db%7Bc}", id="braces-cannot-close-the-tag"),
        pytest.param("*", "{u:%2A}", id="glob-star"),
        pytest.param("u1?[x]\\", "{u:u1%3F%5Bx%5D%5C}", id="glob-characters"),
        pytest.param("a:b", "{u:a%3Ab}", id="colon"),
        pytest.param("Åsa", "{u:%C3%85sa}", id="non-ascii"),
    ],
)
def test_user_tag_is_injective_and_glob_free(user_id: str, tag: str) -> None:
    assert user_tag(user_id) == tag
    assert not set("*?[]\\") & set(user_tag(user_id))


def test_user_keys_share_one_hash_tag() -> None:
    keys = [user_key("u1", kind) for kind in ("cal", "cal:start", "email", "timers", "mem")]
    assert all(k.startswith("alice:t:{u:u1}:") for k in keys)
    with pytest.raises(ValueError, match="unknown per-user key kind"):
        user_key("u1", "secrets")


async def test_clock_reads_the_injected_clock_in_the_users_zone() -> None:
    utc_moment = dt.datetime(2026, 3, 10, 13, 5, 30, tzinfo=dt.UTC)
    ctx = ToolContext(
        user_id="u1",
        now=REFERENCE,
        redis=UntouchableRedis(),  # type: ignore[arg-type]
        clock=fixed_clock(utc_moment),
    )
    result = await ClockTool().run({}, ctx)
    assert result.reply == "Klockan är 14:05."
    assert result.data["time_zone"] == "Europe/Stockholm"
    assert not result.cacheable and not result.mutated


def test_geocoder_is_offline_and_has_the_nlu_cities() -> None:
    geocoder = OfflineGeocoder()
    for city in ("Göteborg", "Stockholm", "Malmö", "Uppsala", "Luleå", "Umeå", "Kiruna", "Visby", "Köpenhamn"):
        place = geocoder.locate(city)
        assert place is not None and place.name == city
