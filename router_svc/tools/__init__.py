"""The tool layer run by the router: pure async domain code over injected Redis and weather provider."""

from __future__ import annotations

from router_svc.tools.base import (
    Clock,
    Tool,
    ToolContext,
    ToolRegistry,
    ToolResult,
    fixed_clock,
    forget_user,
    system_clock,
    user_key,
    user_tag,
)
from router_svc.tools.calendar import CalendarCreateDraftTool, CalendarListTool, CalendarMoveTool
from router_svc.tools.clock import ClockTool
from router_svc.tools.email import EmailCreateDraftTool
from router_svc.tools.memory import MemoryQueryTool, remember
from router_svc.tools.open_meteo import DEFAULT_BASE_URL, OpenMeteoProvider
from router_svc.tools.timer import TimerTool
from router_svc.tools.weather import (
    DailyForecast,
    OfflineGeocoder,
    Place,
    UnknownCity,
    WeatherProvider,
    WeatherTool,
    WeatherUnavailable,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "CalendarCreateDraftTool",
    "CalendarListTool",
    "CalendarMoveTool",
    "Clock",
    "ClockTool",
    "DailyForecast",
    "EmailCreateDraftTool",
    "MemoryQueryTool",
    "OfflineGeocoder",
    "OpenMeteoProvider",
    "Place",
    "TimerTool",
    "Tool",
    "ToolContext",
    "ToolRegistry",
    "ToolResult",
    "UnknownCity",
    "WeatherProvider",
    "WeatherTool",
    "WeatherUnavailable",
    "build_registry",
    "fixed_clock",
    "forget_user",
    "remember",
    "system_clock",
    "user_key",
    "user_tag",
]


def build_registry(weather: WeatherProvider) -> ToolRegistry:
    """Every tool of the taxonomy, with the given weather provider."""
    return ToolRegistry(
        [
            ClockTool(),
            WeatherTool(weather),
            CalendarCreateDraftTool(),
            CalendarMoveTool(),
            CalendarListTool(),
            EmailCreateDraftTool(),
            TimerTool(),
            MemoryQueryTool(),
        ]
    )
