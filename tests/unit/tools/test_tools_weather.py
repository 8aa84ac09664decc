"""Weather: WMO codes, the offline geocoder, parsing recorded Open-Meteo responses, honest degradation."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from tool_helpers import FIXTURES, make_ctx, recorded

from alice.local import weather_replay
from router_svc.tools import OfflineGeocoder, OpenMeteoProvider, WeatherTool, build_registry
from router_svc.tools.open_meteo import DAILY_VARIABLES, REPLAY_HEADER, parse_daily
from router_svc.tools.weather import CITIES, WMO_CODES_SV, Place, WeatherUnavailable, wmo_description

STOCKHOLM = Place("Stockholm", 59.3293, 18.0686, "Europe/Stockholm")
Handler = Callable[[httpx.Request], httpx.Response]


@pytest.mark.parametrize(
    ("code", "words"),
    [
        pytest.param(0, "klart", id="0-clear"),
        pytest.param(2, "växlande molnighet", id="2-partly-cloudy"),
        pytest.param(3, "mulet", id="3-overcast"),
        pytest.param(45, "dimma", id="45-fog"),
        pytest.param(53, "duggregn", id="53-drizzle"),
        pytest.param(61, "lätt regn", id="61-slight-rain"),
        pytest.param(65, "kraftigt regn", id="65-heavy-rain"),
        pytest.param(71, "lätt snöfall", id="71-slight-snow"),
        pytest.param(80, "lätta regnskurar", id="80-showers"),
        pytest.param(95, "åska", id="95-thunderstorm"),
        pytest.param(99, "åska med kraftigt hagel", id="99-hail"),
        pytest.param(4, "okänt väder", id="undefined-code"),
        pytest.param(None, "okänt väder", id="missing"),
    ],
)
def test_wmo_codes_in_swedish(code: int | None, words: str) -> None:
    assert wmo_description(code) == words


def test_every_wmo_code_open_meteo_documents_is_mapped() -> None:
    documented = {
        0,
        1,
        2,
        3,
        45,
        48,
        51,
        53,
        55,
        56,
        57,
        61,
        63,
        65,
        66,
        67,
        71,
        73,
        75,
        77,
        80,
        81,
        82,
        85,
        86,
        95,
        96,
        99,
    }
    assert set(WMO_CODES_SV) == documented


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        pytest.param("Göteborg", "Göteborg", id="canonical"),
        pytest.param("goteborg", "Göteborg", id="no-diacritics"),
        pytest.param("GBG", "Göteborg", id="alias-upper"),
        pytest.param("sthlm", "Stockholm", id="sthlm"),
        pytest.param("lulea", "Luleå", id="lulea"),
        pytest.param("  Umeå ", "Umeå", id="spaces"),
        pytest.param("København", "Köpenhamn", id="danish"),
        pytest.param("new  york", "New York", id="two-words"),
    ],
)
def test_geocoder_lookup(written: str, canonical: str) -> None:
    place = OfflineGeocoder().locate(written)
    assert place is not None and place.name == canonical


def test_geocoder_table_is_plausible() -> None:
    assert len(CITIES) >= 40
    assert len({c.name for c in CITIES}) == len(CITIES)
    assert all(55 <= c.latitude <= 69 and 10 <= c.longitude <= 25 for c in CITIES if c.time_zone == "Europe/Stockholm")
    assert OfflineGeocoder().locate("Atlantis") is None


@pytest.mark.parametrize(
    ("fixture", "day", "code", "t_max", "t_min", "precipitation"),
    [
        pytest.param("forecast_stockholm.json", "2026-03-10", 61, 5.3, 1.2, 3.4, id="stockholm-rain"),
        pytest.param("forecast_goteborg.json", "2026-03-13", 45, 5.1, -0.8, 0.0, id="goteborg-fog"),
        pytest.param("forecast_malmo.json", "2026-03-09", 61, 7.4, 2.6, 2.4, id="malmo-first-day"),
        pytest.param("forecast_lulea.json", "2026-03-15", 85, -1.0, -6.4, 2.2, id="lulea-last-day"),
    ],
)
def test_parse_recorded_responses(
    fixture: str, day: str, code: int, t_max: float, t_min: float, precipitation: float
) -> None:
    forecast = parse_daily(recorded(fixture), STOCKHOLM, dt.date.fromisoformat(day))
    assert (
        forecast.weather_code,
        forecast.temperature_max_c,
        forecast.temperature_min_c,
        forecast.precipitation_mm,
    ) == (code, t_max, t_min, precipitation)
    assert forecast.source == "open-meteo" and not forecast.replayed


def test_parse_keeps_a_null_as_unknown() -> None:
    forecast = parse_daily(recorded("forecast_goteborg.json"), STOCKHOLM, dt.date(2026, 3, 15))
    assert forecast.precipitation_probability_pct is None
    assert forecast.weather_code == 81


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        pytest.param(lambda b: b.pop("daily"), "no daily section", id="no-daily"),
        pytest.param(lambda b: b["daily"].pop("time"), "no daily.time", id="no-time"),
        pytest.param(lambda b: b["daily"].update(time=["2027-01-01"]), "no data for 2026-03-10", id="other-days"),
        pytest.param(lambda b: b["daily"].update(temperature_2m_max=[1.0]), "not an array covering", id="short"),
        pytest.param(lambda b: b["daily"]["weather_code"].__setitem__(1, "rain"), "non-number", id="string-code"),
        pytest.param(lambda b: b["daily_units"].update(temperature_2m_max="°F"), "not '°C'", id="fahrenheit"),
    ],
)
def test_parse_refuses_malformed_bodies(mutate: Callable[[dict[str, object]], object], message: str) -> None:
    body = recorded("forecast_stockholm.json")
    mutate(body)
    with pytest.raises(WeatherUnavailable, match=message):
        parse_daily(body, STOCKHOLM, dt.date(2026, 3, 10))


def test_parse_refuses_an_error_body() -> None:
    with pytest.raises(WeatherUnavailable, match="out of allowed range"):
        parse_daily(recorded("error_out_of_range.json"), STOCKHOLM, dt.date(2026, 3, 10))


def serve_fixture(
    name: str, status: int = 200, headers: dict[str, str] | None = None, seen: list[httpx.Request] | None = None
) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        return httpx.Response(
            status,
            content=(FIXTURES / name).read_bytes(),
            headers={"content-type": "application/json; charset=utf-8", **(headers or {})},
        )

    return handler


@pytest.fixture
async def make_tool() -> AsyncIterator[Callable[[Handler], WeatherTool]]:
    clients: list[httpx.AsyncClient] = []

    def make(handler: Handler) -> WeatherTool:
        client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        clients.append(client)
        return WeatherTool(OpenMeteoProvider(client, "https://api.open-meteo.com", OfflineGeocoder()))

    yield make
    for client in clients:
        await client.aclose()


async def test_lookup_sends_the_real_request_and_answers_in_swedish(
    make_tool: Callable[[Handler], WeatherTool],
) -> None:
    seen: list[httpx.Request] = []
    tool = make_tool(serve_fixture("forecast_stockholm.json", seen=seen))
    result = await tool.run({"city": "Stockholm", "date": "2026-03-11"}, make_ctx())
    assert result.reply == (
        "Vädret i Stockholm onsdag 11 mars: lätt snöfall, mellan minus 1 och 2 grader, 2,1 mm nederbörd."
    )
    assert result.cacheable and not result.degraded and not result.mutated
    assert result.data["replayed"] is False and result.data["weather_code"] == 71
    (request,) = seen
    assert request.url.path == "/v1/forecast"
    params = request.url.params
    assert (params["latitude"], params["longitude"]) == ("59.3293", "18.0686")
    assert params["daily"].split(",") == list(DAILY_VARIABLES)
    assert (params["timezone"], params["start_date"], params["end_date"]) == (
        "Europe/Stockholm",
        "2026-03-11",
        "2026-03-11",
    )


async def test_date_defaults_to_the_users_today(make_tool: Callable[[Handler], WeatherTool]) -> None:
    seen: list[httpx.Request] = []
    tool = make_tool(serve_fixture("forecast_lulea.json", seen=seen))
    result = await tool.run({"city": "Luleå"}, make_ctx())
    assert seen[0].url.params["start_date"] == "2026-03-10"
    assert result.reply.startswith("Vädret i Luleå tisdag 10 mars: lätt snöfall")


async def test_replayed_answers_are_marked(make_tool: Callable[[Handler], WeatherTool]) -> None:
    tool = make_tool(serve_fixture("forecast_malmo.json", headers={REPLAY_HEADER: "recorded forecast_malmo.json"}))
    result = await tool.run({"city": "Malmö", "date": "2026-03-10"}, make_ctx())
    assert result.data["replayed"] is True


def test_replay_header_name_matches_the_replay_server() -> None:
    assert REPLAY_HEADER == weather_replay.REPLAY_HEADER


def raising(exc: Exception) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return handler


@pytest.mark.parametrize(
    "handler",
    [
        pytest.param(raising(httpx.ConnectError("offline")), id="connect-error"),
        pytest.param(raising(httpx.ReadTimeout("slow")), id="read-timeout"),
        pytest.param(serve_fixture("error_out_of_range.json", status=400), id="http-400"),
        pytest.param(lambda r: httpx.Response(503, text="Service Unavailable"), id="http-503-text"),
        pytest.param(lambda r: httpx.Response(200, text="<html>captive portal</html>"), id="not-json"),
        pytest.param(lambda r: httpx.Response(200, json=[1, 2, 3]), id="json-array"),
    ],
)
async def test_unavailable_provider_gives_an_honest_degraded_answer(
    make_tool: Callable[[Handler], WeatherTool], handler: Handler
) -> None:
    result = await make_tool(handler).run({"city": "Göteborg", "date": "2026-03-12"}, make_ctx())
    assert result.reply == "Väderuppgifter är inte tillgängliga just nu."
    assert result.degraded and not result.cacheable and not result.mutated
    assert result.data["available"] is False


async def test_through_the_registry_offline_is_degraded_not_an_error() -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(raising(httpx.ConnectError("offline")))) as client:
        registry = build_registry(OpenMeteoProvider(client))
        result = await registry.run("weather.lookup", {"city": "Göteborg", "date": "2026-03-12"}, make_ctx())
    assert result.degraded and "inte tillgängliga" in result.reply


async def test_unknown_city_is_an_honest_answer_without_a_request(make_tool: Callable[[Handler], WeatherTool]) -> None:
    result = await make_tool(raising(AssertionError("no request expected"))).run({"city": "Atlantis"}, make_ctx())
    assert result.reply == "Jag känner inte till orten Atlantis, så jag kan inte ta fram vädret där."
    assert not result.degraded and result.data["known_city"] is False


@pytest.mark.parametrize(
    ("day", "words"),
    [
        pytest.param("2026-03-26", "prognosen räcker bara 16 dagar", id="day-16-ahead"),
        pytest.param("2025-12-01", "bara se några månader bakåt", id="long-ago"),
    ],
)
async def test_days_outside_the_forecast_window(
    make_tool: Callable[[Handler], WeatherTool], day: str, words: str
) -> None:
    result = await make_tool(raising(AssertionError("no request expected"))).run(
        {"city": "Visby", "date": day}, make_ctx()
    )
    assert words in result.reply and not result.degraded


async def test_last_forecast_day_is_still_asked(make_tool: Callable[[Handler], WeatherTool]) -> None:
    seen: list[httpx.Request] = []
    body = recorded("forecast_stockholm.json")
    body["daily"]["time"] = ["2026-03-25", *body["daily"]["time"][1:]]

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=json.dumps(body).encode())

    result = await make_tool(handler).run({"city": "Stockholm", "date": "2026-03-25"}, make_ctx())
    assert seen and result.data["available"] is True


async def test_base_url_is_checked() -> None:
    async with httpx.AsyncClient() as client:
        with pytest.raises(ValueError, match="http:// or https://"):
            OpenMeteoProvider(client, "api.open-meteo.com")
