"""A local HTTP server that replays recorded Open-Meteo forecast responses at /v1/forecast (offline runs).

Bench, end-to-end and demo runs point the router's weather provider here, so weather answers go through the
provider's real request and parsing path. Any coordinates get the nearest recording; any dates get that
recording's days, cycled so the recorded dates map to themselves. Every answer carries the `X-Alice-Replay`
header, and the provider reports it as replayed: these are not live forecasts.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

REPLAY_HEADER = "X-Alice-Replay"
FORECAST_PATH = "/v1/forecast"
DEFAULT_FIXTURES = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "open_meteo"
MAX_DAYS = 366
DEFAULT_FORECAST_DAYS = 7


@dataclass(frozen=True)
class Recording:
    """One recorded forecast response: where it is for, and its daily arrays."""

    name: str
    latitude: float
    longitude: float
    elevation: float
    time_zone: str
    first_day: dt.date
    daily_units: Mapping[str, str]
    daily: Mapping[str, Sequence[object]]

    @property
    def days(self) -> int:
        return len(self.daily["time"])


def load_recordings(directory: Path) -> list[Recording]:
    """Every `forecast_*.json` in `directory` (Open-Meteo forecast bodies with a daily section)."""
    recordings = []
    for path in sorted(directory.glob("forecast_*.json")):
        body = json.loads(path.read_text(encoding="utf-8"))
        daily = body["daily"]
        if not daily.get("time") or any(len(v) != len(daily["time"]) for v in daily.values()):
            raise ValueError(f"{path}: daily arrays are empty or of different lengths")
        recordings.append(
            Recording(
                name=path.name,
                latitude=float(body["latitude"]),
                longitude=float(body["longitude"]),
                elevation=float(body.get("elevation", 0.0)),
                time_zone=str(body.get("timezone", "GMT")),
                first_day=dt.date.fromisoformat(daily["time"][0]),
                daily_units=body.get("daily_units", {}),
                daily=daily,
            )
        )
    if not recordings:
        raise FileNotFoundError(f"no forecast_*.json recordings in {directory}")
    return recordings


class BadRequest(ValueError):
    """Answered as Open-Meteo does: HTTP 400 with {"error": true, "reason": ...}."""


def _one(query: Mapping[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def _coordinate(query: Mapping[str, list[str]], name: str, limit: float) -> float:
    raw = _one(query, name)
    if raw is None:
        raise BadRequest(f"Parameter '{name}' is required")
    try:
        value = float(raw)
    except ValueError:
        raise BadRequest(f"Parameter '{name}' must be a floating point number") from None
    if not -limit <= value <= limit:
        raise BadRequest(
            f"Latitude must be in range of -90 to 90°. Given: {value}."
            if name == "latitude"
            else f"Longitude must be in range of -180 to 180°. Given: {value}."
        )
    return value


def _count(query: Mapping[str, list[str]], name: str, default: int, maximum: int) -> int:
    raw = _one(query, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"Parameter '{name}' must be an integer") from None
    if not 0 <= value <= maximum:
        raise BadRequest(f"Parameter '{name}' must be between 0 and {maximum}")
    return value


def _abbreviation(offset_s: int) -> str:
    if offset_s == 0:
        return "GMT"
    sign = "+" if offset_s > 0 else "-"
    hours, minutes = divmod(abs(offset_s) // 60, 60)
    return f"GMT{sign}{hours}" + (f":{minutes:02d}" if minutes else "")


class ReplayForecasts:
    """The replay logic without the HTTP server: query parameters in, (status, JSON body, recording) out."""

    def __init__(self, recordings: Sequence[Recording], today: Callable[[dt.tzinfo], dt.date] | None = None) -> None:
        if not recordings:
            raise ValueError("no recordings to replay")
        self._recordings = list(recordings)
        self._today = today or (lambda tz: dt.datetime.now(tz).date())

    def nearest(self, latitude: float, longitude: float) -> Recording:
        scale = math.cos(math.radians(latitude))

        def distance(r: Recording) -> float:
            return (r.latitude - latitude) ** 2 + ((r.longitude - longitude) * scale) ** 2

        return min(self._recordings, key=distance)

    def _days(self, query: Mapping[str, list[str]], tz: dt.tzinfo) -> list[dt.date]:
        start, end = _one(query, "start_date"), _one(query, "end_date")
        if (start is None) != (end is None):
            raise BadRequest("Parameter 'start_date' and 'end_date' must be set both")
        if start is not None and end is not None:
            try:
                first, last = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
            except ValueError:
                raise BadRequest("Invalid date format. Make sure to use 'YYYY-MM-DD'") from None
            if last < first:
                raise BadRequest("End-date must be larger or equals than start-date")
        else:
            today = self._today(tz)
            past = _count(query, "past_days", 0, 92)
            forecast = _count(query, "forecast_days", DEFAULT_FORECAST_DAYS, 16)
            first, last = today - dt.timedelta(days=past), today + dt.timedelta(days=forecast - 1)
        count = (last - first).days + 1
        if count > MAX_DAYS:
            raise BadRequest(f"The replay serves at most {MAX_DAYS} days per request")
        return [first + dt.timedelta(days=i) for i in range(max(count, 0))]

    def answer(self, query: Mapping[str, list[str]]) -> tuple[int, dict[str, Any], Recording | None]:
        started = time.perf_counter()
        try:
            latitude = _coordinate(query, "latitude", 90.0)
            longitude = _coordinate(query, "longitude", 180.0)
            recording = self.nearest(latitude, longitude)
            tz_name = _one(query, "timezone") or "GMT"
            if tz_name == "auto":
                tz_name = recording.time_zone
            try:
                tz: dt.tzinfo = dt.UTC if tz_name in ("GMT", "UTC") else ZoneInfo(tz_name)
            except (ZoneInfoNotFoundError, ValueError):
                raise BadRequest(f"Invalid timezone '{tz_name}'") from None
            variables = [v for v in ",".join(query.get("daily", [])).split(",") if v]
            for variable in variables:
                if variable not in recording.daily or variable == "time":
                    raise BadRequest(f"Cannot initialize ForecastVariableDaily from invalid String value {variable}")
            days = self._days(query, tz)
        except BadRequest as exc:
            return 400, {"error": True, "reason": str(exc)}, None
        indices = [(d - recording.first_day).days % recording.days for d in days]
        first_midnight = dt.datetime.combine(days[0] if days else self._today(tz), dt.time(0), tzinfo=tz)
        offset = int((first_midnight.utcoffset() or dt.timedelta(0)).total_seconds())
        body: dict[str, Any] = {
            "latitude": round(latitude, 6),
            "longitude": round(longitude, 6),
            "generationtime_ms": (time.perf_counter() - started) * 1000.0,
            "utc_offset_seconds": offset,
            "timezone": tz_name,
            "timezone_abbreviation": _abbreviation(offset),
            "elevation": recording.elevation,
        }
        if variables:
            body["daily_units"] = {"time": "iso8601", **{v: recording.daily_units.get(v, "") for v in variables}}
            body["daily"] = {
                "time": [d.isoformat() for d in days],
                **{v: [recording.daily[v][i] for i in indices] for v in variables},
            }
        return 200, body, recording


class _Handler(BaseHTTPRequestHandler):
    server: _ReplayHTTPServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path != FORECAST_PATH:
            self._send(404, {"error": True, "reason": "Not Found"}, "no recording for this path")
            return
        status, body, recording = self.server.replay.answer(parse_qs(url.query))
        label = f"recorded {recording.name}" if recording is not None else "replay error"
        self._send(status, body, f"{label}; reconstructed Open-Meteo response, not live data")

    def _send(self, status: int, body: Mapping[str, Any], label: str) -> None:
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header(REPLAY_HEADER, label)
        self.end_headers()
        self.wfile.write(payload)
        with self.server.lock:
            self.server.served += 1

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: bench runs make thousands of requests


class _ReplayHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], replay: ReplayForecasts) -> None:
        super().__init__(address, _Handler)
        self.replay = replay
        self.lock = threading.Lock()
        self.served = 0


class WeatherReplayServer:
    """The replay server in a background thread; use as a context manager, or start() and close()."""

    def __init__(
        self,
        fixtures_dir: Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        today: Callable[[dt.tzinfo], dt.date] | None = None,
    ) -> None:
        self._replay = ReplayForecasts(load_recordings(fixtures_dir or DEFAULT_FIXTURES), today)
        self._address = (host, port)
        self._server: _ReplayHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> WeatherReplayServer:
        self._server = _ReplayHTTPServer(self._address, self._replay)
        self._thread = threading.Thread(target=self._server.serve_forever, name="weather-replay", daemon=True)
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        """Base URL to configure as the provider's (the path /v1/forecast is the provider's)."""
        if self._server is None:
            raise RuntimeError("the replay server is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def served(self) -> int:
        return self._server.served if self._server is not None else 0

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> WeatherReplayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Replay recorded Open-Meteo forecast responses on loopback.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--fixtures", type=Path, default=DEFAULT_FIXTURES)
    args = parser.parse_args(argv)
    server = WeatherReplayServer(args.fixtures, args.host, args.port).start()
    print(f"weather replay (recorded responses, not live data) at {server.url}{FORECAST_PATH}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


if __name__ == "__main__":
    main()
