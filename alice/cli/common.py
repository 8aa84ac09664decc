"""Helpers shared by the CLI commands: data files, reference time, percentiles, targets and output."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from alice.local.mesh import LocalMesh
from alice.runtime.stats import percentile

DEFAULT_TZ = "Europe/Stockholm"


@dataclass(frozen=True)
class Line:
    """One parsed JSONL line with its 1-based line number."""

    number: int
    data: dict[str, Any]


def read_jsonl(path: Path, required: Sequence[str] = ()) -> tuple[list[Line], list[str]]:
    """Parse a JSON Lines file; malformed lines are returned as problems (with line numbers), not raised."""
    lines: list[Line] = []
    problems: list[str] = []
    with path.open(encoding="utf-8") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                data = json.loads(raw)
            except json.JSONDecodeError as error:
                problems.append(f"{path.name}:{number}: not JSON ({error.msg}); skipped")
                continue
            if not isinstance(data, dict):
                problems.append(f"{path.name}:{number}: not a JSON object; skipped")
                continue
            missing = [key for key in required if key not in data]
            if missing:
                problems.append(f"{path.name}:{number}: missing {', '.join(missing)}; skipped")
                continue
            lines.append(Line(number, data))
    return lines, problems


def latency_summary(values_ms: Sequence[float]) -> dict[str, float]:
    return {f"p{q}": round(percentile(values_ms, q), 3) for q in (50, 95, 99)}


def reference_time(now: str | None, tz: str) -> dt.datetime:
    """`--now 2026-03-10T09:00` in `--tz`, or the current time; always timezone-aware."""
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise SystemExit(f"unknown time zone {tz!r}") from None
    if now is None:
        return dt.datetime.now(zone)
    try:
        parsed = dt.datetime.fromisoformat(now)
    except ValueError:
        raise SystemExit(f"--now {now!r} is not an ISO date-time like 2026-03-10T09:00") from None
    return parsed.replace(tzinfo=zone) if parsed.tzinfo is None else parsed.astimezone(zone)


def add_target_args(parser: argparse.ArgumentParser, *, time_args: bool = False) -> None:
    parser.add_argument("--target", help="HOST:PORT of a running mesh's router; default: start a local mesh")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    if time_args:
        parser.add_argument("--now", help="reference time, e.g. 2026-03-10T09:00 (default: now)")
        parser.add_argument("--tz", default=DEFAULT_TZ, help=f"IANA time zone (default {DEFAULT_TZ})")


@contextlib.contextmanager
def local_or_target(target: str | None, services: Sequence[str], env: dict[str, str] | None = None,
                    replay_weather: bool = False) -> Iterator[dict[str, str]]:
    """Addresses of the needed services: `--target` (router only) or a local mesh started for the run."""
    if target:
        yield {"router": target}
        return
    with LocalMesh(services=services, env=env or {}, replay_weather=replay_weather) as mesh:
        yield {name: mesh.address(name) for name in mesh.processes} | {"redis": mesh.redis_url}


def emit(result: dict[str, Any], as_json: bool, human: str) -> None:
    """Print the human report, and with --json the result as the last stdout line."""
    if as_json:
        if human:
            print(human, file=sys.stderr)
        print(json.dumps(result, ensure_ascii=False))
    else:
        print(human)
