"""The weather provider over Open-Meteo's public forecast API (GET /v1/forecast, daily variables) with httpx.

One request per lookup: the city's coordinates from the offline geocoder, the day as start_date = end_date, the
place's time zone so the daily values are that place's local days. The base URL is configurable so bench and
end-to-end runs can point it at the local replay server (alice.local.weather_replay), whose answers carry the
replay header and are reported as replayed.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping

import httpx

from router_svc.tools.weather import (
    DailyForecast,
    Geocoder,
    OfflineGeocoder,
    Place,
    UnknownCity,
    WeatherUnavailable,
)

DEFAULT_BASE_URL = "https://api.open-meteo.com"
FORECAST_PATH = "/v1/forecast"
DAILY_VARIABLES: tuple[str, ...] = (
    "weather_code",
    "temperature_2m_max",
    "temperature_2m_min",
    "precipitation_sum",
    "precipitation_probability_max",
    "wind_speed_10m_max",
)
EXPECTED_UNITS: Mapping[str, str] = {
    "temperature_2m_max": "°C",
    "temperature_2m_min": "°C",
    "precipitation_sum": "mm",
    "wind_speed_10m_max": "km/h",
}
REPLAY_HEADER = "X-Alice-Replay"
"""Set by alice.local.weather_replay on every answer; the live service never sends it."""
SOURCE = "open-meteo"


def _number(values: object, index: int, name: str) -> float | None:
    if values is None:
        return None  # a variable the response does not carry
    if not isinstance(values, list) or index >= len(values):
        raise WeatherUnavailable(f"open-meteo response: daily.{name} is not an array covering the day")
    value = values[index]
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise WeatherUnavailable(f"open-meteo response: daily.{name} holds a non-number")
    return float(value)


def parse_daily(body: object, place: Place, day: dt.date, *, replayed: bool = False) -> DailyForecast:
    """The day's values from a forecast response body (daily arrays indexed like daily.time)."""
    if not isinstance(body, dict):
        raise WeatherUnavailable("open-meteo response is not a JSON object")
    if body.get("error") is True:
        raise WeatherUnavailable(f"open-meteo error: {body.get('reason', 'no reason given')}")
    daily = body.get("daily")
    if not isinstance(daily, dict):
        raise WeatherUnavailable("open-meteo response has no daily section")
    times = daily.get("time")
    if not isinstance(times, list):
        raise WeatherUnavailable("open-meteo response has no daily.time array")
    try:
        index = times.index(day.isoformat())
    except ValueError:
        raise WeatherUnavailable(f"open-meteo response has no data for {day.isoformat()}") from None
    units = body.get("daily_units")
    if isinstance(units, dict):
        for name, unit in EXPECTED_UNITS.items():
            if name in units and units[name] != unit:
                raise WeatherUnavailable(f"open-meteo response: daily.{name} is in {units[name]!r}, not {unit!r}")
    code = _number(daily.get("weather_code"), index, "weather_code")
    return DailyForecast(
        place=place,
        day=day,
        weather_code=int(code) if code is not None else None,
        temperature_max_c=_number(daily.get("temperature_2m_max"), index, "temperature_2m_max"),
        temperature_min_c=_number(daily.get("temperature_2m_min"), index, "temperature_2m_min"),
        precipitation_mm=_number(daily.get("precipitation_sum"), index, "precipitation_sum"),
        precipitation_probability_pct=_number(
            daily.get("precipitation_probability_max"), index, "precipitation_probability_max"
        ),
        wind_speed_max_kmh=_number(daily.get("wind_speed_10m_max"), index, "wind_speed_10m_max"),
        source=SOURCE,
        replayed=replayed,
    )


def forecast_params(place: Place, day: dt.date) -> dict[str, str]:
    """The query of one day's forecast for one place."""
    return {
        "latitude": f"{place.latitude:.4f}",
        "longitude": f"{place.longitude:.4f}",
        "daily": ",".join(DAILY_VARIABLES),
        "timezone": place.time_zone,
        "start_date": day.isoformat(),
        "end_date": day.isoformat(),
    }


class OpenMeteoProvider:
    """WeatherProvider over Open-Meteo; the client (and its transport) is passed in and closed by its owner."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        base_url: str = DEFAULT_BASE_URL,
        geocoder: Geocoder | None = None,
        *,
        timeout_s: float = 2.0,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"weather base URL must start with http:// or https://, got {base_url!r}")
        if not timeout_s > 0:
            raise ValueError("weather timeout must be positive")
        self._client = client
        self._url = base_url.rstrip("/") + FORECAST_PATH
        self._geocoder = geocoder if geocoder is not None else OfflineGeocoder()
        self._timeout_s = timeout_s

    @property
    def url(self) -> str:
        return self._url

    async def daily_forecast(self, city: str, day: dt.date) -> DailyForecast:
        place = self._geocoder.locate(city)
        if place is None:
            raise UnknownCity(city)
        try:
            response = await self._client.get(self._url, params=forecast_params(place, day), timeout=self._timeout_s)
        except httpx.RequestError as exc:
            raise WeatherUnavailable(f"open-meteo unreachable ({type(exc).__name__})") from exc
        if response.status_code != httpx.codes.OK:
            reason = ""
            try:
                body = response.json()
                if isinstance(body, dict):
                    reason = f": {body.get('reason', '')}"
            except ValueError:
                pass
            raise WeatherUnavailable(f"open-meteo answered HTTP {response.status_code}{reason}")
        try:
            body = response.json()
        except ValueError as exc:
            raise WeatherUnavailable("open-meteo response is not JSON") from exc
        return parse_daily(body, place, day, replayed=REPLAY_HEADER.lower() in response.headers)
