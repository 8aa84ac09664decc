"""weather.lookup: a day's forecast for a city through a WeatherProvider, with an offline city table.

The provider may be unreachable (this machine is offline); the tool then answers honestly that weather is not
available and marks the result degraded, instead of failing the request.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from router_svc.tools import replies
from router_svc.tools.base import ToolContext, ToolResult, clean_text
from router_svc.tools.calendar import parse_date

MAX_CITY_CHARS = 100
PAST_DAYS = 92
FORECAST_DAYS = 16
"""Open-Meteo's forecast API serves up to 92 past days and 16 forecast days (today included)."""


@dataclass(frozen=True)
class Place:
    """A city with its coordinates and IANA time zone (the forecast's days are that zone's days)."""

    name: str
    latitude: float
    longitude: float
    time_zone: str


@dataclass(frozen=True)
class DailyForecast:
    """One day of a forecast, as the tool reports it."""

    place: Place
    day: dt.date
    weather_code: int | None
    temperature_max_c: float | None
    temperature_min_c: float | None
    precipitation_mm: float | None
    precipitation_probability_pct: float | None
    wind_speed_max_kmh: float | None
    source: str
    replayed: bool = False
    """True when the answer came from the local replay server of recorded responses, not the live service."""

    @property
    def description(self) -> str:
        return wmo_description(self.weather_code)


class WeatherUnavailable(Exception):
    """The provider could not answer (unreachable, timed out, an error status, an unreadable response)."""


class UnknownCity(Exception):
    """The city is not in the geocoder's table."""


class WeatherProvider(Protocol):
    async def daily_forecast(self, city: str, day: dt.date) -> DailyForecast:
        """The forecast of `city` on `day`; raises UnknownCity or WeatherUnavailable."""
        ...


class Geocoder(Protocol):
    def locate(self, city: str) -> Place | None: ...


# WMO weather interpretation codes (WW) as Open-Meteo reports them, in Swedish.
WMO_CODES_SV: Mapping[int, str] = {
    0: "klart",
    1: "mestadels klart",
    2: "växlande molnighet",
    3: "mulet",
    45: "dimma",
    48: "dimma med rimfrost",
    51: "lätt duggregn",
    53: "duggregn",
    55: "kraftigt duggregn",
    56: "lätt underkylt duggregn",
    57: "kraftigt underkylt duggregn",
    61: "lätt regn",
    63: "regn",
    65: "kraftigt regn",
    66: "lätt underkylt regn",
    67: "kraftigt underkylt regn",
    71: "lätt snöfall",
    73: "snöfall",
    75: "kraftigt snöfall",
    77: "kornsnö",
    80: "lätta regnskurar",
    81: "regnskurar",
    82: "kraftiga regnskurar",
    85: "lätta snöbyar",
    86: "kraftiga snöbyar",
    95: "åska",
    96: "åska med lätt hagel",
    99: "åska med kraftigt hagel",
}


def wmo_description(code: int | None) -> str:
    """Swedish words for a WMO weather code; an honest "okänt väder" for a missing or unknown code."""
    if code is None:
        return "okänt väder"
    return WMO_CODES_SV.get(code, "okänt väder")


_SE = "Europe/Stockholm"
CITIES: tuple[Place, ...] = (
    Place("Stockholm", 59.3293, 18.0686, _SE),
    Place("Göteborg", 57.7089, 11.9746, _SE),
    Place("Malmö", 55.6050, 13.0038, _SE),
    Place("Uppsala", 59.8586, 17.6389, _SE),
    Place("Norrköping", 58.5877, 16.1924, _SE),
    Place("Linköping", 58.4108, 15.6214, _SE),
    Place("Västerås", 59.6099, 16.5448, _SE),
    Place("Örebro", 59.2753, 15.2134, _SE),
    Place("Jönköping", 57.7826, 14.1618, _SE),
    Place("Umeå", 63.8258, 20.2630, _SE),
    Place("Luleå", 65.5848, 22.1547, _SE),
    Place("Gävle", 60.6749, 17.1413, _SE),
    Place("Sundsvall", 62.3908, 17.3069, _SE),
    Place("Kiruna", 67.8558, 20.2253, _SE),
    Place("Visby", 57.6348, 18.2948, _SE),
    Place("Helsingborg", 56.0465, 12.6945, _SE),
    Place("Lund", 55.7047, 13.1910, _SE),
    Place("Karlstad", 59.4022, 13.5115, _SE),
    Place("Växjö", 56.8777, 14.8091, _SE),
    Place("Halmstad", 56.6745, 12.8578, _SE),
    Place("Östersund", 63.1792, 14.6357, _SE),
    Place("Borås", 57.7210, 12.9401, _SE),
    Place("Kalmar", 56.6634, 16.3568, _SE),
    Place("Falun", 60.6065, 15.6355, _SE),
    Place("Skellefteå", 64.7507, 20.9528, _SE),
    Place("Trollhättan", 58.2837, 12.2886, _SE),
    Place("Eskilstuna", 59.3666, 16.5077, _SE),
    Place("Södertälje", 59.1955, 17.6253, _SE),
    Place("Kristianstad", 56.0294, 14.1567, _SE),
    Place("Karlskrona", 56.1612, 15.5869, _SE),
    Place("Nyköping", 58.7530, 17.0086, _SE),
    Place("Varberg", 57.1056, 12.2508, _SE),
    Place("Örnsköldsvik", 63.2909, 18.7153, _SE),
    Place("Piteå", 65.3172, 21.4794, _SE),
    Place("Ystad", 55.4295, 13.8200, _SE),
    Place("Uddevalla", 58.3498, 11.9382, _SE),
    Place("Norrtälje", 59.7580, 18.7049, _SE),
    Place("Haparanda", 65.8355, 24.1368, _SE),
    Place("Oslo", 59.9139, 10.7522, "Europe/Oslo"),
    Place("Köpenhamn", 55.6761, 12.5683, "Europe/Copenhagen"),
    Place("Helsingfors", 60.1699, 24.9384, "Europe/Helsinki"),
    Place("Reykjavik", 64.1466, -21.9426, "Atlantic/Reykjavik"),
    Place("Tallinn", 59.4370, 24.7536, "Europe/Tallinn"),
    Place("London", 51.5072, -0.1276, "Europe/London"),
    Place("Paris", 48.8566, 2.3522, "Europe/Paris"),
    Place("Berlin", 52.5200, 13.4050, "Europe/Berlin"),
    Place("Amsterdam", 52.3676, 4.9041, "Europe/Amsterdam"),
    Place("Madrid", 40.4168, -3.7038, "Europe/Madrid"),
    Place("Wien", 48.2082, 16.3738, "Europe/Vienna"),
    Place("Rom", 41.9028, 12.4964, "Europe/Rome"),
    Place("New York", 40.7128, -74.0060, "America/New_York"),
)
"""Canonical spellings as the NLU writes them (nlu_svc gazetteer), plus a few more capitals."""

CITY_ALIASES: Mapping[str, str] = {
    "sthlm": "Stockholm",
    "gbg": "Göteborg",
    "gothenburg": "Göteborg",
    "övik": "Örnsköldsvik",
    "copenhagen": "Köpenhamn",
    "københavn": "Köpenhamn",
    "kbh": "Köpenhamn",
    "helsinki": "Helsingfors",
    "reykjavík": "Reykjavik",
    "vienna": "Wien",
    "rome": "Rom",
    "roma": "Rom",
}


def fold(name: str) -> str:
    """Case- and diacritic-insensitive form: "Göteborg" -> "goteborg", "København" -> "kobenhavn"."""
    text = name.casefold().replace("ø", "o").replace("æ", "ae")
    decomposed = unicodedata.normalize("NFKD", text)
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).split())


class OfflineGeocoder:
    """Looks cities up in a fixed table: no network, same answer every time."""

    def __init__(self, places: Iterable[Place] = CITIES, aliases: Mapping[str, str] = CITY_ALIASES) -> None:
        self._by_name: dict[str, Place] = {}
        for place in places:
            self._by_name[fold(place.name)] = place
        for alias, canonical in aliases.items():
            self._by_name.setdefault(fold(alias), self._by_name[fold(canonical)])

    def locate(self, city: str) -> Place | None:
        return self._by_name.get(fold(city))


class WeatherTool:
    name = "weather.lookup"
    arg_names: frozenset[str] = frozenset({"city", "date"})

    def __init__(self, provider: WeatherProvider) -> None:
        self._provider = provider

    async def run(self, args: Mapping[str, object], ctx: ToolContext) -> ToolResult:
        city = clean_text(args.get("city"), "city", MAX_CITY_CHARS)
        raw_date = args.get("date")
        day = ctx.today if raw_date is None else parse_date(raw_date, "date", ctx.today)
        if city is None:
            return ToolResult(reply=replies.ASK_CITY, data={"missing": ["city"]})
        offset = (day - ctx.today).days
        if not -PAST_DAYS <= offset < FORECAST_DAYS:
            return ToolResult(
                reply=replies.weather_out_of_range(day, ctx.today),
                data={"city": city, "date": day.isoformat(), "available": False},
            )
        try:
            async with asyncio.timeout(ctx.timeout_s):
                forecast = await self._provider.daily_forecast(city, day)
        except UnknownCity:
            return ToolResult(
                reply=replies.weather_unknown_city(city),
                data={"city": city, "date": day.isoformat(), "known_city": False},
            )
        except (WeatherUnavailable, TimeoutError) as exc:
            return ToolResult(
                reply=replies.WEATHER_UNAVAILABLE,
                data={
                    "city": city,
                    "date": day.isoformat(),
                    "available": False,
                    "reason": str(exc) or type(exc).__name__,
                },
                degraded=True,
            )
        return ToolResult(
            reply=replies.weather_forecast(
                forecast.place.name,
                day,
                ctx.today,
                forecast.description,
                forecast.temperature_min_c,
                forecast.temperature_max_c,
                forecast.precipitation_mm,
            ),
            data={
                "city": forecast.place.name,
                "date": day.isoformat(),
                "available": True,
                "weather_code": forecast.weather_code,
                "description": forecast.description,
                "temperature_max_c": forecast.temperature_max_c,
                "temperature_min_c": forecast.temperature_min_c,
                "precipitation_mm": forecast.precipitation_mm,
                "precipitation_probability_pct": forecast.precipitation_probability_pct,
                "wind_speed_max_kmh": forecast.wind_speed_max_kmh,
                "source": forecast.source,
                "replayed": forecast.replayed,
            },
            cacheable=True,
        )
