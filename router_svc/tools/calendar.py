"""calendar.create_draft, calendar.move, calendar.list: draft entries in the user's own calendar in Redis.

Nothing is ever sent or booked: every entry is a draft. Layout per user (see base): a hash `cal` (entry id ->
JSON) and a sorted set `cal:start` (entry id scored by its local start as a Unix time; all-day entries at
midnight), written together in one MULTI.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from alice.runtime.errors import InvalidArgument, ResourceExhausted
from router_svc.tools import replies
from router_svc.tools.base import ToolContext, ToolResult, as_text, clean_text, has_control_chars, shown, storage

MAX_TITLE_CHARS = 200
MAX_ATTENDEES = 20
MAX_NAME_CHARS = 100
MAX_ENTRIES = 1000
YEARS_BACK, YEARS_AHEAD = 1, 5

_START = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2}))?$")
_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_WORD = re.compile(r"\w+")


def _check_year(value: dt.date, name: str, today: dt.date) -> None:
    if not today.year - YEARS_BACK <= value.year <= today.year + YEARS_AHEAD:
        raise InvalidArgument(
            f"{name} {value.isoformat()} is too far from today ({today.isoformat()}); "
            f"allowed years {today.year - YEARS_BACK}..{today.year + YEARS_AHEAD}"
        )


def parse_start(value: object, name: str, today: dt.date) -> tuple[dt.date, dt.time | None]:
    """ "YYYY-MM-DDTHH:MM" -> (date, time); "YYYY-MM-DD" -> (date, None) for a day without a time."""
    match = _START.match(value) if isinstance(value, str) else None
    if match is None:
        raise InvalidArgument(f"{name} must be YYYY-MM-DD or YYYY-MM-DDTHH:MM, got {shown(value)}")
    year, month, day, hour, minute = match.groups()
    try:
        date = dt.date(int(year), int(month), int(day))
        at = dt.time(int(hour), int(minute)) if hour is not None else None
    except ValueError:
        raise InvalidArgument(f"{name} {value!r} is not a real calendar date and time") from None
    _check_year(date, name, today)
    return date, at


def parse_date(value: object, name: str, today: dt.date) -> dt.date:
    match = _DATE.match(value) if isinstance(value, str) else None
    if match is None:
        raise InvalidArgument(f"{name} must be YYYY-MM-DD, got {shown(value)}")
    try:
        date = dt.date(*(int(g) for g in match.groups()))
    except ValueError:
        raise InvalidArgument(f"{name} {value!r} is not a real calendar date") from None
    _check_year(date, name, today)
    return date


def parse_attendees(value: object) -> tuple[str, ...]:
    """A list of 0..20 non-empty person names (duplicates dropped, order kept)."""
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise InvalidArgument(f"attendees must be a list of names, got {type(value).__name__}")
    names: list[str] = []
    seen: set[str] = set()
    for item in value:
        if not isinstance(item, str):
            raise InvalidArgument(f"attendees must be names (strings), got {shown(item)}")
        name = " ".join(item.split())
        if not name:
            raise InvalidArgument("attendees contains an empty name")
        if len(name) > MAX_NAME_CHARS or has_control_chars(name):
            raise InvalidArgument(
                f"attendee name {shown(name)} is not a plausible name "
                f"(at most {MAX_NAME_CHARS} characters, no control characters)"
            )
        if name.casefold() not in seen:
            seen.add(name.casefold())
            names.append(name)
    if len(names) > MAX_ATTENDEES:
        raise InvalidArgument(f"at most {MAX_ATTENDEES} attendees, got {len(names)}")
    return tuple(names)


def default_title(attendees: Sequence[str]) -> str:
    return f"möte med {replies.join_sv(attendees)}" if attendees else "möte"


@dataclass(frozen=True)
class Entry:
    """One draft calendar entry; `at` is None for an entry that has a day but no time."""

    id: str
    title: str
    title_given: bool
    attendees: tuple[str, ...]
    day: dt.date
    at: dt.time | None
    created_at: str
    status: str = "draft"

    @property
    def start(self) -> str:
        """Canonical slot form: "YYYY-MM-DDTHH:MM" or "YYYY-MM-DD"."""
        day = self.day.isoformat()
        return f"{day}T{self.at.hour:02d}:{self.at.minute:02d}" if self.at is not None else day

    def start_ts(self, tz: dt.tzinfo) -> float:
        return dt.datetime.combine(self.day, self.at or dt.time(0), tzinfo=tz).timestamp()

    @property
    def subject(self) -> str:
        """How a reply names it: "mötet med Anna", or the user's own title in quotes."""
        if self.title_given:
            return replies.quote(self.title)
        return "mötet" + self.title.removeprefix("möte")

    def to_json(self) -> str:
        return json.dumps(
            {
                "id": self.id,
                "title": self.title,
                "title_given": self.title_given,
                "attendees": list(self.attendees),
                "start": self.start,
                "created_at": self.created_at,
                "status": self.status,
            },
            ensure_ascii=False,
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, raw: str | bytes) -> Entry:
        obj = json.loads(raw)
        match = _START.match(obj["start"])
        if match is None:
            raise ValueError(f"stored entry has a bad start {obj['start']!r}")
        year, month, day, hour, minute = match.groups()
        return cls(
            id=obj["id"],
            title=obj["title"],
            title_given=bool(obj["title_given"]),
            attendees=tuple(obj["attendees"]),
            day=dt.date(int(year), int(month), int(day)),
            at=dt.time(int(hour), int(minute)) if hour is not None else None,
            created_at=obj["created_at"],
            status=obj.get("status", "draft"),
        )

    def to_data(self) -> dict[str, object]:
        return {
            "id": self.id,
            "title": self.title,
            "attendees": list(self.attendees),
            "start": self.start,
            "status": self.status,
        }

    def involves(self, names: Sequence[str]) -> bool:
        """True when any of `names` is an attendee ("Anna" also matches "Anna Berg") or is named in the title."""
        title_words = [w.casefold() for w in _WORD.findall(self.title)]
        for name in names:
            wanted = name.casefold()
            for attendee in self.attendees:
                have = attendee.casefold()
                if have == wanted or have.startswith(wanted + " ") or wanted.startswith(have + " "):
                    return True
            words = [w.casefold() for w in _WORD.findall(name)]
            if words and any(title_words[i : i + len(words)] == words for i in range(len(title_words))):
                return True
        return False


async def _entries(ctx: ToolContext, low: float | str, high: float | str, *, exclusive_high: bool) -> list[Entry]:
    """This user's entries with a start in [low, high), in start order."""
    high_arg = f"({high}" if exclusive_high else high
    async with storage(ctx):
        ids = [as_text(i) for i in await ctx.redis.zrangebyscore(ctx.key("cal:start"), low, high_arg)]
        if not ids:
            return []
        raws = await ctx.redis.hmget(ctx.key("cal"), ids)
    return [Entry.from_json(raw) for raw in raws if raw is not None]


async def _save(ctx: ToolContext, entry: Entry) -> None:
    async with storage(ctx):
        async with ctx.redis.pipeline(transaction=True) as pipe:
            pipe.hset(ctx.key("cal"), entry.id, entry.to_json())
            pipe.zadd(ctx.key("cal:start"), {entry.id: entry.start_ts(ctx.tz)})
            await pipe.execute()


async def entries_on(ctx: ToolContext, day: dt.date) -> list[Entry]:
    """This user's entries on one local day, in start order."""
    low = dt.datetime.combine(day, dt.time(0), tzinfo=ctx.tz).timestamp()
    high = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=ctx.tz).timestamp()
    return await _entries(ctx, low, high, exclusive_high=True)


class CalendarCreateDraftTool:
    name = "calendar.create_draft"
    arg_names: frozenset[str] = frozenset({"start", "attendees", "title"})

    async def run(self, args: Mapping[str, object], ctx: ToolContext) -> ToolResult:
        attendees = parse_attendees(args.get("attendees"))
        title = clean_text(args.get("title"), "title", MAX_TITLE_CHARS)
        if args.get("start") is None:
            return ToolResult(reply=replies.ASK_START, data={"missing": ["start"]})
        day, at = parse_start(args["start"], "start", ctx.today)
        entry = Entry(
            id=uuid.uuid4().hex,
            title=title or default_title(attendees),
            title_given=title is not None,
            attendees=attendees,
            day=day,
            at=at,
            created_at=ctx.now.isoformat(timespec="seconds"),
        )
        async with storage(ctx):
            count = await ctx.redis.zcard(ctx.key("cal:start"))
        if count >= MAX_ENTRIES:
            raise ResourceExhausted(f"the calendar holds at most {MAX_ENTRIES} entries per user")
        await _save(ctx, entry)
        shown_title = replies.quote(entry.title) if entry.title_given else entry.title
        return ToolResult(
            reply=replies.calendar_draft_created(shown_title, day, at, ctx.today),
            data={"entry": entry.to_data()},
            mutated=True,
        )


class CalendarMoveTool:
    name = "calendar.move"
    arg_names: frozenset[str] = frozenset({"new_start", "attendees"})

    async def run(self, args: Mapping[str, object], ctx: ToolContext) -> ToolResult:
        attendees = parse_attendees(args.get("attendees"))
        if args.get("new_start") is None:
            return ToolResult(reply=replies.ASK_NEW_START, data={"missing": ["new_start"]})
        day, at = parse_start(args["new_start"], "new_start", ctx.today)
        midnight = dt.datetime.combine(ctx.today, dt.time(0), tzinfo=ctx.tz).timestamp()
        candidates = [
            e
            for e in await _entries(ctx, midnight, "+inf", exclusive_high=False)
            if not attendees or e.involves(attendees)
        ]
        if not candidates:
            return ToolResult(reply=replies.calendar_nothing_to_move(attendees), data={"moved": False})
        # The next upcoming entry first; one earlier today only when nothing upcoming matches.
        now_ts = ctx.now.timestamp()
        upcoming = [e for e in candidates if e.start_ts(ctx.tz) >= now_ts or e.at is None]
        target = (upcoming or candidates)[0]
        moved = replace(target, day=day, at=at if at is not None else target.at)
        await _save(ctx, moved)
        return ToolResult(
            reply=replies.calendar_moved(moved.subject, moved.day, moved.at, ctx.today),
            data={"moved": True, "entry": moved.to_data(), "previous_start": target.start},
            mutated=True,
        )


class CalendarListTool:
    name = "calendar.list"
    arg_names: frozenset[str] = frozenset({"date"})

    async def run(self, args: Mapping[str, object], ctx: ToolContext) -> ToolResult:
        raw = args.get("date")
        day = ctx.today if raw is None else parse_date(raw, "date", ctx.today)
        entries = await entries_on(ctx, day)
        # All-day entries first, then by time (the sorted set already orders by start).
        entries.sort(key=lambda e: (e.at is not None, e.at or dt.time(0)))
        return ToolResult(
            reply=replies.calendar_listing(day, ctx.today, [(e.at, e.title) for e in entries]),
            data={"date": day.isoformat(), "entries": [e.to_data() for e in entries]},
            cacheable=True,  # per user; any calendar change marks the result mutated and invalidates it
        )
