"""time.now: the current time in the user's time zone."""

from __future__ import annotations

from collections.abc import Mapping

from router_svc.tools import replies
from router_svc.tools.base import ToolContext, ToolResult


class ClockTool:
    """Reads ctx.clock (the wall clock, or the request's reference time when it carried one; see base)."""

    name = "time.now"
    arg_names: frozenset[str] = frozenset()

    async def run(self, args: Mapping[str, object], ctx: ToolContext) -> ToolResult:
        local = ctx.clock().astimezone(ctx.tz)
        return ToolResult(
            reply=replies.time_now(local),
            data={"time": replies.clock(local), "iso": local.isoformat(timespec="seconds"), "time_zone": str(ctx.tz)},
            cacheable=False,  # the answer is stale a minute later
        )
