"""Router servicers: validate requests, run the pipeline, translate to protos, feed the monitoring view."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import grpc

from alice.router.v1 import router_service_pb2 as pb
from alice.router.v1 import router_service_pb2_grpc as pb_grpc
from alice.runtime.auth import ADMIN_ROLE, current_identity
from alice.runtime.errors import InvalidArgument, PermissionDenied, ServiceError, Unauthenticated, Unavailable
from alice.taxonomy import CacheTier, intent_value, route_value, slots_to_proto, tool_call_to_proto
from router_svc.downstream import DownstreamError
from router_svc.monitoring import Monitor, Outcome
from router_svc.pipeline import Answer, AskInput, Pipeline

DEFAULT_TZ = "Europe/Stockholm"
_MAX_SKEW = dt.timedelta(days=3653)
_TIERS = {"l1": CacheTier.CACHE_TIER_L1_EXACT, "l2": CacheTier.CACHE_TIER_L2_SEMANTIC,
          "l3": CacheTier.CACHE_TIER_L3_NEGATIVE}


ForgetTools = Callable[[str, float], Awaitable[int]]
"""Deletes one user's tool data within a timeout; returns how many keys went."""
ForgetCache = Callable[[str, float], Awaitable[int]]
"""Deletes one user's cached answers within a timeout; returns how many went."""
FORGET_TIMEOUT_S = 10.0


def resolve_user(body_user_id: str, *, auth_required: bool) -> str:
    """The user a call acts for: the verified caller; with authentication explicitly off, the body's user_id.

    A body user_id that names anyone but the caller is refused (PERMISSION_DENIED) with the same message whoever
    it names, so the answer says nothing about other users.
    """
    identity = current_identity()
    if identity is not None:
        if body_user_id and body_user_id != identity.user_id:
            raise PermissionDenied("user_id does not match the authenticated caller; leave it empty or send your own")
        return identity.user_id
    if auth_required:
        raise Unauthenticated("missing credentials")  # the interceptor runs first; this guards a wiring mistake
    if not body_user_id.strip():
        raise InvalidArgument("user_id is required")
    if len(body_user_id) > 128:
        raise InvalidArgument("user_id is longer than 128 characters")
    return body_user_id


def validate(request: pb.AskRequest, context: grpc.aio.ServicerContext[Any, Any], *, max_chars: int,
             default_timeout_s: float, clock: dt.datetime | None = None, auth_required: bool = False) -> AskInput:
    """Check an AskRequest and turn it into the pipeline's input; raises InvalidArgument with a clear message."""
    started = time.monotonic()
    user_id = resolve_user(request.user_id, auth_required=auth_required)
    text = request.text.strip()
    if not text:
        raise InvalidArgument("text is empty")
    if len(text) > max_chars:
        raise InvalidArgument(f"text is {len(text)} characters; the limit is {max_chars}")
    zone_name = request.time_zone or DEFAULT_TZ
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidArgument(f"unknown time zone {zone_name!r} (use an IANA name like Europe/Stockholm)") from None
    wall = clock or dt.datetime.now(dt.UTC)
    if request.HasField("reference_time"):
        try:
            now = request.reference_time.ToDatetime(tzinfo=dt.UTC)
        except (ValueError, OverflowError):
            raise InvalidArgument("reference_time is not a valid timestamp") from None
        if abs(now - wall) > _MAX_SKEW:
            raise InvalidArgument("reference_time is more than 10 years away from now")
    else:
        now = wall
    budget = default_timeout_s
    if request.HasField("timeout"):
        asked = request.timeout.ToTimedelta().total_seconds()
        if asked <= 0 or asked > 120:
            raise InvalidArgument("timeout must be between 0 and 120 seconds")
        budget = min(budget, asked)
    remaining = context.time_remaining()
    if remaining is not None:
        budget = min(budget, remaining)
    return AskInput(text=text, user_id=user_id, session_id=request.session_id,
                    now=now.astimezone(zone), deadline=started + budget,
                    reference_given=request.HasField("reference_time"))


def to_proto(answer: Answer) -> pb.AskResponse:
    reply = pb.AskResponse(
        answer=answer.text,
        route=route_value(answer.route),
        confidence=answer.confidence,
        slots=slots_to_proto(answer.slots),
        cache_tier=_TIERS.get(answer.cache_tier or "", CacheTier.CACHE_TIER_UNSPECIFIED),
        trace_id=answer.trace_id,
        degradations=[pb.Degradation.Value(f"DEGRADATION_{d}") for d in answer.degradations],
    )
    if answer.intent:
        reply.intent = intent_value(answer.intent)
    if answer.tool_call is not None:
        reply.tool_call.CopyFrom(tool_call_to_proto(*answer.tool_call))
    t = answer.timings_ms
    reply.latency.CopyFrom(pb.LatencyBreakdown(
        total_ms=t.get("total", 0.0),
        nlu_ms=t.get("nlu", 0.0),
        cache_l1_ms=max(t.get("cache_alias", 0.0), t.get("cache_l1", 0.0)),
        cache_l2_ms=t.get("cache_l2", 0.0) + t.get("embed", 0.0),
        route_ms=t.get("route", 0.0),
        llm_ttft_ms=t.get("llm_ttft", 0.0),
        llm_total_ms=t.get("llm_micro", 0.0) + t.get("llm_planner", 0.0),
        tool_ms=t.get("tool", 0.0),
        cache_store_ms=t.get("cache_store", 0.0),
    ))
    return reply


class RouterServicer(pb_grpc.RouterServiceServicer):
    def __init__(self, pipeline: Pipeline, monitor: Monitor, *, max_chars: int, default_timeout_s: float,
                 auth_required: bool = False, forget_tools: ForgetTools | None = None,
                 forget_cache: ForgetCache | None = None) -> None:
        self._pipeline = pipeline
        self._monitor = monitor
        self._max_chars = max_chars
        self._default_timeout_s = default_timeout_s
        self._auth_required = auth_required
        self._forget_tools = forget_tools
        self._forget_cache = forget_cache

    async def _run(self, request: pb.AskRequest, context: grpc.aio.ServicerContext[Any, Any],
                   queue: asyncio.Queue[str] | None = None) -> Answer:
        started = time.perf_counter()
        try:
            ask = validate(request, context, max_chars=self._max_chars, default_timeout_s=self._default_timeout_s,
                           auth_required=self._auth_required)
            answer = await self._pipeline.ask(ask, queue.put_nowait if queue is not None else None)
        except DownstreamError as error:
            self._record(started, "unknown", False, error.code, None, ())
            if error.code == "INVALID_ARGUMENT":
                raise InvalidArgument(error.message) from None
            raise Unavailable(str(error)) from None
        except ServiceError as error:
            self._record(started, "unknown", False, error.code, None, ())
            raise
        self._record(started, answer.route, True, "OK", answer.cache_tier, tuple(answer.degradations))
        return answer

    def _record(self, started: float, route: str, ok: bool, code: str, tier: str | None,
                degradations: tuple[str, ...]) -> None:
        self._monitor.record(Outcome(route, (time.perf_counter() - started) * 1000, ok, code, tier, degradations))

    async def Ask(self, request: pb.AskRequest, context: grpc.aio.ServicerContext[Any, Any]) -> pb.AskResponse:
        return to_proto(await self._run(request, context))

    async def AskStream(self, request: pb.AskStreamRequest,
                        context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[pb.AskStreamResponse]:
        queue: asyncio.Queue[str] = asyncio.Queue()
        task = asyncio.create_task(self._run(request.request, context, queue))
        streamed = False
        try:
            while not task.done() or not queue.empty():
                getter = asyncio.ensure_future(queue.get())
                await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
                if getter.done():
                    streamed = True
                    yield pb.AskStreamResponse(delta=getter.result())
                else:
                    getter.cancel()
            answer = await task
        finally:
            task.cancel()
        if not streamed:
            yield pb.AskStreamResponse(delta=answer.text)
        yield pb.AskStreamResponse(final=to_proto(answer))

    async def Forget(self, request: pb.ForgetRequest, context: grpc.aio.ServicerContext[Any, Any]) -> pb.ForgetResponse:
        """Delete the caller's tool data, then their cached answers; safe to repeat after a failure."""
        user_id = resolve_user(request.user_id, auth_required=self._auth_required)
        if self._forget_tools is None or self._forget_cache is None:
            raise Unavailable("this router has no tool storage or cache to forget from")
        remaining = context.time_remaining()
        timeout_s = FORGET_TIMEOUT_S if remaining is None else max(0.001, min(FORGET_TIMEOUT_S, remaining))
        deadline = time.monotonic() + timeout_s  # one budget for both steps: the cache gets what the tools left
        tool_keys = await self._forget_tools(user_id, timeout_s)
        cached = await self._forget_cache(user_id, max(0.001, deadline - time.monotonic()))
        return pb.ForgetResponse(tool_keys_deleted=tool_keys, cached_answers_deleted=cached)


class MonitoringServicer(pb_grpc.MonitoringServiceServicer):
    """Aggregate figures only (no user data): any authenticated caller may read them; resetting needs admin."""

    def __init__(self, monitor: Monitor, *, auth_required: bool = False) -> None:
        self._monitor = monitor
        self._auth_required = auth_required

    async def GetStatus(self, request: pb.GetStatusRequest,
                        context: grpc.aio.ServicerContext[Any, Any]) -> pb.GetStatusResponse:
        return self._monitor.status()

    async def ResetStats(self, request: pb.ResetStatsRequest,
                         context: grpc.aio.ServicerContext[Any, Any]) -> pb.ResetStatsResponse:
        identity = current_identity()
        if self._auth_required and (identity is None or ADMIN_ROLE not in identity.roles):
            raise PermissionDenied(f"ResetStats needs the {ADMIN_ROLE!r} role")
        self._monitor.reset()
        return pb.ResetStatsResponse()
