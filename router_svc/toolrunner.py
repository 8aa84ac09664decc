"""Adapter from the pipeline to the tool layer: builds the ToolContext for one request."""

from __future__ import annotations

from collections.abc import Mapping

import httpx
from opentelemetry import trace
from redis.asyncio import Redis

from alice.runtime.errors import InvalidArgument, ResourceExhausted, Unavailable
from alice.taxonomy import tool_for
from router_svc import messages
from router_svc.pipeline import AskInput, ToolOutcome
from router_svc.tools import OpenMeteoProvider, ToolContext, build_registry, fixed_clock, system_clock


class RedisToolRunner:
    """Runs the taxonomy's tools over per-user data in Redis and the configured weather provider.

    What happened goes on the current span (the pipeline's `router.tool` stage): the tool's name, whether it
    changed data or degraded, and a rejection or fallback as an event. One span per tool run, not two.
    """

    def __init__(self, redis: Redis, http: httpx.AsyncClient, weather_base_url: str) -> None:
        self._redis = redis
        self._registry = build_registry(OpenMeteoProvider(http, base_url=weather_base_url))

    async def run(self, intent: str, args: Mapping[str, object], request: AskInput, timeout_s: float) -> ToolOutcome:
        context = ToolContext(
            user_id=request.user_id,
            now=request.now,
            redis=self._redis,
            text=request.text,
            # A request that carried its reference time is answered as of that time (reproducible evaluations).
            clock=fixed_clock(request.now) if request.reference_given else system_clock,
            timeout_s=timeout_s,
        )
        span = trace.get_current_span()
        try:
            result = await self._registry.run(intent, args, context)
        except (InvalidArgument, ResourceExhausted) as error:
            # The reason is English and for operators; the user gets a Swedish reply.
            span.add_event("alice.tool.rejected", {"alice.reason": error.message})
            reply = messages.TOOL_LIMIT if isinstance(error, ResourceExhausted) else messages.TOOL_REJECTED
            return ToolOutcome(reply=reply, rejected=True)
        except Unavailable as error:
            span.add_event("alice.fallback", {"alice.fallback": "tool_storage_unavailable",
                                              "alice.reason": error.message})
            return ToolOutcome(reply=messages.TOOL_STORAGE_UNAVAILABLE, degraded=True, cacheable=False)
        span.set_attributes({"alice.tool.name": tool_for(intent) or "", "alice.tool.mutated": result.mutated,
                             "alice.tool.degraded": result.degraded})
        return ToolOutcome(reply=result.reply, mutated=result.mutated, degraded=result.degraded,
                           cacheable=result.cacheable)
