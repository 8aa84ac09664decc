"""timer.set: a per-user timer stored in Redis (a sorted set scored by fire time)."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from alice.runtime.errors import InvalidArgument, ResourceExhausted
from router_svc.tools import replies
from router_svc.tools.base import ToolContext, ToolResult, as_text, shown, storage

MIN_DURATION_S = 1
MAX_DURATION_S = 24 * 3600
MAX_ACTIVE_TIMERS = 100
KEEP_FIRED_S = 3600
"""Fired timers are kept this long (for "how long is left" style follow-ups), then pruned on the next set."""


@dataclass(frozen=True)
class Timer:
    id: str
    duration_s: int
    created_at: dt.datetime
    fires_at: dt.datetime

    def to_json(self) -> str:
        return json.dumps(
            {
                "id": self.id,
                "duration_s": self.duration_s,
                "created_at": self.created_at.isoformat(),
                "fires_at": self.fires_at.isoformat(),
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, raw: str | bytes) -> Timer:
        obj = json.loads(raw)
        return cls(
            id=obj["id"],
            duration_s=int(obj["duration_s"]),
            created_at=dt.datetime.fromisoformat(obj["created_at"]),
            fires_at=dt.datetime.fromisoformat(obj["fires_at"]),
        )


def parse_duration(value: object) -> int:
    """duration_s as the taxonomy states it: integer seconds, 1 s .. 24 h."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"duration_s must be an integer number of seconds, got {shown(value)}")
    if not MIN_DURATION_S <= value <= MAX_DURATION_S:
        raise InvalidArgument(
            f"duration_s must be between {MIN_DURATION_S} s and 24 h ({MAX_DURATION_S} s), got {value}"
        )
    return value


async def active_timers(ctx: ToolContext) -> list[Timer]:
    """This user's timers that have not fired yet, soonest first."""
    now_ts = ctx.clock().timestamp()
    async with storage(ctx):
        raw = await ctx.redis.zrangebyscore(ctx.key("timers"), now_ts, "+inf")
    return [Timer.from_json(as_text(r)) for r in raw]


class TimerTool:
    name = "timer.set"
    arg_names: frozenset[str] = frozenset({"duration_s"})

    async def run(self, args: Mapping[str, object], ctx: ToolContext) -> ToolResult:
        if args.get("duration_s") is None:
            return ToolResult(reply=replies.ASK_DURATION, data={"missing": ["duration_s"]})
        seconds = parse_duration(args["duration_s"])
        now = ctx.clock().astimezone(ctx.tz)
        timer = Timer(
            id=uuid.uuid4().hex, duration_s=seconds, created_at=now, fires_at=now + dt.timedelta(seconds=seconds)
        )
        key = ctx.key("timers")
        async with storage(ctx):
            async with ctx.redis.pipeline(transaction=True) as pipe:
                pipe.zremrangebyscore(key, "-inf", now.timestamp() - KEEP_FIRED_S)
                pipe.zcount(key, now.timestamp(), "+inf")
                _, active = await pipe.execute()
            if int(active) >= MAX_ACTIVE_TIMERS:
                raise ResourceExhausted(f"at most {MAX_ACTIVE_TIMERS} timers may run at once per user")
            await ctx.redis.zadd(key, {timer.to_json(): timer.fires_at.timestamp()})
        return ToolResult(
            reply=replies.timer_set(seconds),
            data={
                "timer_id": timer.id,
                "duration_s": seconds,
                "fires_at": timer.fires_at.isoformat(timespec="seconds"),
            },
            mutated=True,
        )
