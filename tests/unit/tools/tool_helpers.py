"""Helpers for tool unit tests: a context whose Redis must never be touched, and the recorded responses."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

from redis.asyncio import Redis

from router_svc.tools.base import ToolContext, fixed_clock
from router_svc.tools.weather import DailyForecast

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "open_meteo"
STOCKHOLM = ZoneInfo("Europe/Stockholm")
REFERENCE = dt.datetime(2026, 3, 10, 9, 0, tzinfo=STOCKHOLM)
"""The spec's reference time: Tuesday 2026-03-10 09:00."""


class UntouchableRedis:
    """Stands in for Redis where a test proves that validation fails before any storage call."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"Redis was used ({name}) although the arguments were invalid")


class NeverCalledProvider:
    """A weather provider for tests where the provider must not be reached."""

    async def daily_forecast(self, city: str, day: dt.date) -> DailyForecast:
        raise AssertionError("the weather provider was called although it should not have been")


def make_ctx(text: str = "", now: dt.datetime = REFERENCE, user_id: str = "u1") -> ToolContext:
    return ToolContext(
        user_id=user_id, now=now, redis=cast(Redis, UntouchableRedis()), text=text, clock=fixed_clock(now)
    )


def recorded(name: str) -> dict[str, Any]:
    return cast(dict[str, Any], json.loads((FIXTURES / name).read_text(encoding="utf-8")))
