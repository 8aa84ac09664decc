"""The weather replay server: recorded responses at Open-Meteo's path, any city and date, labelled as replay."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import httpx
import pytest
from tool_helpers import FIXTURES, make_ctx, recorded

from alice.local.weather_replay import REPLAY_HEADER, ReplayForecasts, WeatherReplayServer, load_recordings
from router_svc.tools import OpenMeteoProvider, WeatherTool
from router_svc.tools.open_meteo import forecast_params
from router_svc.tools.weather import OfflineGeocoder


@pytest.fixture(scope="module")
def replay_server() -> Iterator[WeatherReplayServer]:
    with WeatherReplayServer(FIXTURES, today=lambda tz: dt.date(2026, 3, 10)) as server:
        yield server


def replay() -> ReplayForecasts:
    return ReplayForecasts(load_recordings(FIXTURES), today=lambda tz: dt.date(2026, 3, 10))


def query(city: str, day: str, end: str | None = None) -> dict[str, list[str]]:
    place = OfflineGeocoder().locate(city)
    assert place is not None
    params = forecast_params(place, dt.date.fromisoformat(day))
    if end is not None:
        params["end_date"] = end
    return {k: [v] for k, v in params.items()}


def test_recorded_dates_replay_their_own_values() -> None:
    status, body, recording = replay().answer(query("Stockholm", "2026-03-12"))
    original = recorded("forecast_stockholm.json")["daily"]
    assert status == 200 and recording is not None and recording.name == "forecast_stockholm.json"
    assert body["daily"]["time"] == ["2026-03-12"]
    assert body["daily"]["weather_code"] == [original["weather_code"][3]]
    assert body["daily"]["temperature_2m_max"] == [original["temperature_2m_max"][3]]


def test_any_city_gets_the_nearest_recording() -> None:
    cases = {
        "Uppsala": "forecast_stockholm.json",
        "Kiruna": "forecast_lulea.json",
        "Lund": "forecast_malmo.json",
        "Borås": "forecast_goteborg.json",
        "Madrid": "forecast_malmo.json",
    }
    for city, name in cases.items():
        _, _, recording = replay().answer(query(city, "2026-03-12"))
        assert recording is not None and recording.name == name, city


def test_any_dates_are_served_with_the_requested_dates() -> None:
    status, body, _ = replay().answer(query("Göteborg", "2027-07-30", end="2027-08-02"))
    assert status == 200
    assert body["daily"]["time"] == ["2027-07-30", "2027-07-31", "2027-08-01", "2027-08-02"]
    assert all(len(v) == 4 for v in body["daily"].values())
    # Summer time in the requested zone: the offset follows the dates asked for.
    assert (body["utc_offset_seconds"], body["timezone_abbreviation"]) == (7200, "GMT+2")


def test_forecast_days_default_counts_from_today() -> None:
    status, body, _ = replay().answer(
        {"latitude": ["59.33"], "longitude": ["18.07"], "daily": ["weather_code"], "timezone": ["auto"]}
    )
    assert status == 200 and body["timezone"] == "Europe/Stockholm"
    assert body["daily"]["time"][0] == "2026-03-10" and len(body["daily"]["time"]) == 7


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        pytest.param({"longitude": ["18.0"]}, "'latitude' is required", id="no-latitude"),
        pytest.param({"latitude": ["91"], "longitude": ["18"]}, "Latitude must be in range", id="latitude-range"),
        pytest.param({"latitude": ["x"], "longitude": ["18"]}, "floating point", id="latitude-text"),
        pytest.param(
            {"latitude": ["59"], "longitude": ["18"], "daily": ["snow_depth_max"]},
            "invalid String value snow_depth_max",
            id="unrecorded-variable",
        ),
        pytest.param(
            {"latitude": ["59"], "longitude": ["18"], "start_date": ["2026-03-10"]},
            "must be set both",
            id="start-without-end",
        ),
        pytest.param(
            {"latitude": ["59"], "longitude": ["18"], "start_date": ["2026-03-12"], "end_date": ["2026-03-10"]},
            "larger or equals",
            id="end-before-start",
        ),
        pytest.param(
            {"latitude": ["59"], "longitude": ["18"], "timezone": ["Mars/Olympus"]},
            "Invalid timezone",
            id="bad-timezone",
        ),
    ],
)
def test_bad_requests_get_open_meteo_style_errors(params: dict[str, list[str]], reason: str) -> None:
    status, body, recording = replay().answer(params)
    assert status == 400 and body["error"] is True and reason in body["reason"] and recording is None


async def test_provider_through_the_replay_server_is_a_replayed_real_answer(replay_server: WeatherReplayServer) -> None:
    async with httpx.AsyncClient() as client:
        tool = WeatherTool(OpenMeteoProvider(client, replay_server.url))
        result = await tool.run({"city": "Uppsala", "date": "2026-03-12"}, make_ctx())
        assert result.reply == "Vädret i Uppsala torsdag 12 mars: växlande molnighet, mellan minus 3 och 4 grader."
        assert result.data["replayed"] is True and result.cacheable and not result.degraded

        response = await client.get(f"{replay_server.url}/v1/forecast", params={"latitude": "59", "longitude": "18"})
        assert response.status_code == 200 and "reconstructed" in response.headers[REPLAY_HEADER]
        assert "daily" not in response.json()

        missing = await client.get(f"{replay_server.url}/v1/archive")
        assert missing.status_code == 404 and REPLAY_HEADER in missing.headers
    assert replay_server.served >= 3


def test_replay_server_needs_recordings(tmp_path: object) -> None:
    import pathlib

    assert isinstance(tmp_path, pathlib.Path)
    with pytest.raises(FileNotFoundError, match="no forecast_"):
        WeatherReplayServer(tmp_path)
