"""Traffic files (spec/intents.md, "Traffic file"): intent-file lines with optional `user` and `session`."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_USER = "u1"


@dataclass(frozen=True)
class TrafficItem:
    """One request to replay, with what the file expects of it."""

    line: int
    id: str
    text: str
    user: str = DEFAULT_USER
    session: str = ""
    intent: str | None = None
    tool: str | None = None
    slots: dict[str, Any] = field(default_factory=dict)


def parse_line(number: int, raw: str) -> TrafficItem | str:
    """A traffic item, or a problem message naming the line (the caller skips it)."""
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as error:
        return f"line {number}: not JSON ({error.msg}); skipped"
    if not isinstance(data, dict):
        return f"line {number}: not a JSON object; skipped"
    text = data.get("text")
    if not isinstance(text, str):
        return f"line {number}: {'missing text' if text is None else 'text is not a string'}; skipped"
    problems = [key for key in ("user", "session", "intent", "tool", "id")
                if data.get(key) is not None and not isinstance(data[key], str)]
    if data.get("slots") is not None and not isinstance(data["slots"], dict):
        problems.append("slots")
    if problems:
        return f"line {number}: {', '.join(problems)} of the wrong type; skipped"
    return TrafficItem(
        line=number,
        id=str(data.get("id") or f"line{number}"),
        text=text,
        user=data.get("user") or DEFAULT_USER,
        session=data.get("session") or "",
        intent=data.get("intent"),
        tool=data.get("tool"),
        slots=dict(data.get("slots") or {}),
    )


def parse_traffic(lines: Sequence[str], name: str = "traffic") -> tuple[list[TrafficItem], list[str]]:
    """Items in file order and problems as "name:line: why; skipped" (a malformed line never aborts)."""
    items: list[TrafficItem] = []
    problems: list[str] = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        parsed = parse_line(number, raw)
        if isinstance(parsed, str):
            problems.append(f"{name}:{parsed.removeprefix('line ')}")
        else:
            items.append(parsed)
    return items, problems


def load_traffic(path: Path) -> tuple[list[TrafficItem], list[str]]:
    with path.open(encoding="utf-8") as handle:
        return parse_traffic(handle.readlines(), path.name)


def cycle(items: Sequence[TrafficItem], wrap: bool) -> Iterator[TrafficItem]:
    """The items in file order, once or (`--loop`) round and round."""
    if not items:
        return
    while True:
        yield from items
        if not wrap:
            return
