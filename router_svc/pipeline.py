"""The path of one request: understand, look up, route, run the tool, reply, store — within one deadline."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Protocol

from opentelemetry import context as context_api
from opentelemetry import trace

from alice.cache.v1 import cache_service_pb2 as cache_pb
from alice.common.v1 import types_pb2
from alice.llm.v1 import llm_service_pb2 as llm_pb
from alice.nlu.v1 import nlu_service_pb2 as nlu_pb
from alice.runtime.breaker import State
from alice.runtime.tracing import as_call_span
from alice.taxonomy import (
    NEVER_CACHE,
    CacheTier,
    Route,
    TaxonomyError,
    intent_name,
    intent_value,
    is_personal,
    route_name,
    slots_from_proto,
    slots_to_proto,
    tier_name,
    tool_for,
)
from router_svc import fallback, messages
from router_svc.config import InvalidationRetry
from router_svc.downstream import CacheClient, DownstreamError, LlmClient, NluClient
from router_svc.invalidation import PendingInvalidations
from router_svc.quota import MicroQuota

log = logging.getLogger(__name__)

# Intents whose replies need no tool and no model when they are understood confidently.
_TEMPLATE_INTENTS = frozenset({"greeting.hello"})
# Span event of a cache step skipped because the user's cached personal answers may be stale.
_PENDING_BYPASS = {"alice.fallback": "cache_bypass_pending_invalidation"}
# Time kept back from the deadline for building the reply after a hop gives up: with 30 ms, replies under
# load (event loop busy, 2 cores) still arrived after the caller's deadline in the 5 req/s bench.
_RESERVE_S = 0.15


class ToolRunner(Protocol):
    """Runs a tool for a user (the router's tool layer)."""

    async def run(self, intent: str, args: Mapping[str, object], request: AskInput,
                  timeout_s: float) -> ToolOutcome: ...


@dataclass(frozen=True)
class ToolOutcome:
    reply: str
    mutated: bool = False
    """The user's data changed: their cached personal answers must go."""
    degraded: bool = False
    """The tool's provider was unavailable and the reply says so honestly."""
    rejected: bool = False
    """The arguments were invalid: no tool ran and the reply asks the user to rephrase."""
    cacheable: bool = True
    """The answer may be cached (a tool that found nothing says so, and that answer must not stick)."""


@dataclass(frozen=True)
class AskInput:
    text: str
    user_id: str
    session_id: str
    now: dt.datetime
    """Reference time, timezone-aware in the user's zone."""
    deadline: float
    """`time.monotonic()` by which the reply must be sent."""
    reference_given: bool = False
    """The request carried its reference time (tools then answer as of it, not the wall clock)."""

    def remaining(self) -> float:
        return self.deadline - time.monotonic()


@dataclass
class Answer:
    text: str = ""
    route: str = "fast"
    intent: str | None = None
    confidence: float = 0.0
    slots: dict[str, object] = field(default_factory=dict)
    tool_call: tuple[str, dict[str, object]] | None = None
    cache_tier: str | None = None
    degradations: list[str] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    trace_id: str = ""
    cacheable: bool = True
    on_delta: Callable[[str], None] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Understanding:
    intent: str
    confidence: float
    abstained: bool
    slots: dict[str, object]
    route_hint: str
    missing: tuple[str, ...]
    from_fallback: bool


class Timeline:
    """Stage spans and the reply's latency breakdown from the same start and end times."""

    def __init__(self, tracer: trace.Tracer) -> None:
        self._tracer = tracer
        self.ms: dict[str, float] = {}

    def stage(self, name: str, *, call: bool = False,
              attributes: Mapping[str, str | float | bool] | None = None) -> _Stage:
        """A `router.<name>` span around a step. `call`: the step is one downstream call, and the stage span is that
        call's CLIENT span (`as_call_span`), not a second span around it."""
        return _Stage(self._tracer, self.ms, name, call, attributes)


_STAGE_NAMES: dict[str, str] = {}


class _Stage:
    """`Timeline.stage`: the span is current inside; on exit it ends (an exception marks it, as the SDK's
    `use_span` does) and its duration goes into the breakdown. A class, not a generator context manager:
    a request passes through five to eight of these."""

    __slots__ = ("_attributes", "_call", "_is_call", "_ms", "_name", "_span", "_started", "_token", "_tracer")

    def __init__(self, tracer: trace.Tracer, ms: dict[str, float], name: str, call: bool,
                 attributes: Mapping[str, str | float | bool] | None) -> None:
        self._tracer, self._ms, self._name, self._is_call, self._attributes = tracer, ms, name, call, attributes

    def __enter__(self) -> trace.Span:
        name = self._name
        span_name = _STAGE_NAMES.get(name) or _STAGE_NAMES.setdefault(name, f"router.{name}")
        kind = trace.SpanKind.CLIENT if self._is_call else trace.SpanKind.INTERNAL
        self._started = time.perf_counter_ns()
        self._span = span = self._tracer.start_span(span_name, kind=kind, attributes=self._attributes)
        self._token = context_api.attach(trace.set_span_in_context(span))
        self._call = as_call_span(span) if self._is_call else None
        if self._call is not None:
            self._call.__enter__()
        return span

    def __exit__(self, exc_type: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        span = self._span
        if self._call is not None:
            self._call.__exit__(exc_type, error, traceback)
        context_api.detach(self._token)
        if isinstance(error, Exception) and span.is_recording():
            span.record_exception(error)
            span.set_status(trace.Status(trace.StatusCode.ERROR, f"{type(error).__name__}: {error}"))
        span.end()
        start, end = getattr(span, "start_time", None), getattr(span, "end_time", None)
        elapsed = (end - start) if start is not None and end is not None else time.perf_counter_ns() - self._started
        self._ms[self._name] = self._ms.get(self._name, 0.0) + elapsed / 1e6


def _local_date(now: dt.datetime) -> types_pb2.LocalDate:
    return types_pb2.LocalDate(year=now.year, month=now.month, day=now.day)


def _personal(intent: str | int | None) -> bool:
    """Whether answers to an intent (canonical name or enum value) are one user's; unknown counts as personal."""
    try:
        return is_personal(intent_name(intent) if isinstance(intent, int) else intent or "")
    except TaxonomyError:
        return True


class Pipeline:
    """Orchestrates one request; every dependency is passed in."""

    def __init__(
        self,
        *,
        nlu: NluClient,
        cache: CacheClient,
        llm: LlmClient,
        tools: ToolRunner,
        quota: MicroQuota,
        tracer: trace.Tracer,
        answer_version: str,
        nlu_timeout_s: float,
        cache_timeout_s: float,
        micro_timeout_s: float,
        planner_timeout_s: float,
        tool_timeout_s: float,
        min_fast_confidence: float = 0.0,
        clarify_min_confidence: float = 0.9,
        invalidations: PendingInvalidations | None = None,
    ) -> None:
        """`invalidations` retries failed cache invalidations (default: one with the default retry settings)."""
        self._nlu, self._cache, self._llm, self._tools = nlu, cache, llm, tools
        self._quota = quota
        self._tracer = tracer
        self._version = answer_version
        self._nlu_s, self._cache_s = nlu_timeout_s, cache_timeout_s
        self._micro_s, self._planner_s, self._tool_s = micro_timeout_s, planner_timeout_s, tool_timeout_s
        self._min_fast_confidence = min_fast_confidence
        self._clarify_min_confidence = clarify_min_confidence
        self._pending = (invalidations if invalidations is not None
                         else PendingInvalidations(cache, InvalidationRetry(), tracer=tracer))

    async def aclose(self) -> None:
        """Stop the background invalidation retries (router shutdown)."""
        await self._pending.aclose()

    # -- the request ---------------------------------------------------------------------------------

    async def ask(self, request: AskInput, on_delta: Callable[[str], None] | None = None) -> Answer:
        """Answer one request; `on_delta` receives generated text pieces as they stream (AskStream)."""
        timeline = Timeline(self._tracer)
        answer = Answer(on_delta=on_delta)
        started = time.perf_counter_ns()
        span_context = trace.get_current_span().get_span_context()
        answer.trace_id = f"{span_context.trace_id:032x}" if span_context.is_valid else ""
        try:
            await self._answer(request, answer, timeline)
        finally:
            answer.timings_ms = dict(timeline.ms)
            answer.timings_ms["total"] = (time.perf_counter_ns() - started) / 1e6
        trace.get_current_span().set_attributes(
            {"alice.route": answer.route, "alice.intent": answer.intent or "", "alice.confidence": answer.confidence,
             "alice.cache.tier": answer.cache_tier or "miss", "alice.degraded": ",".join(answer.degradations)}
        )
        return answer

    async def _answer(self, request: AskInput, answer: Answer, timeline: Timeline) -> None:
        # NLU and the L1 text alias run in parallel; an alias hit answers without waiting for the NLU.
        understand = asyncio.create_task(self._understand(request, timeline))
        alias = asyncio.create_task(self._lookup_alias(request, timeline))
        try:
            await asyncio.wait({understand, alias}, return_when=asyncio.FIRST_COMPLETED)
            if alias.done() and (hit := alias.result()) is not None and hit.hit:
                understand.cancel()
                self._from_cache(hit, answer)
                return
            understanding = await understand
            hit = await alias
            if hit is not None and hit.hit:
                self._from_cache(hit, answer)
                return
        finally:
            for task in (understand, alias):
                if not task.done():
                    task.cancel()
        if understanding.from_fallback:
            answer.degradations.append("NLU_FALLBACK")
        answer.intent, answer.confidence, answer.slots = (
            understanding.intent, understanding.confidence, dict(understanding.slots))
        query = self._cache_query(request, understanding)

        # Until a failed invalidation of this user's cached answers is retried, their personal entries may be
        # stale: neither served nor (below) replaced by new ones.
        bypass = _personal(understanding.intent) and self._pending.bypass(request.user_id, "lookup")
        if bypass:
            with timeline.stage("cache_l1") as span:
                span.add_event("alice.fallback", _PENDING_BYPASS)
            canonical = None
        else:
            canonical = await self._lookup(query, [CacheTier.CACHE_TIER_L1_EXACT, CacheTier.CACHE_TIER_L3_NEGATIVE],
                                           "cache_l1", request, timeline, answer)
        if canonical is not None and canonical.hit:
            if canonical.tier == CacheTier.CACHE_TIER_L3_NEGATIVE:
                self._from_failure(canonical.failure, understanding, answer)
            else:
                self._from_cache(canonical, answer)
            return

        with timeline.stage("route") as span:
            route = self._decide(understanding)
            span.set_attribute("alice.route", route)
            span.set_attribute("alice.quota.share", self._quota.share())
        if route != "fast" and not bypass:
            # An LLM route costs ~1 s: a semantic (L2) lookup first is worth its embedding.
            semantic = await self._lookup_semantic(query, request, timeline, answer)
            if semantic is not None and semantic.hit:
                self._from_cache(semantic, answer)
                return
        await self._execute(route, understanding, request, timeline, answer)
        if answer.cacheable and not answer.degradations and understanding.intent not in NEVER_CACHE:
            # (The cache would decline a never-cached intent's answer: no round trip to hear it.)
            personal = _personal(understanding.intent) or _personal(answer.intent)
            await self._store(query, answer, request, timeline, personal=personal)
        elif answer.text == messages.UNAVAILABLE and "PLANNER_UNAVAILABLE" in answer.degradations:
            await self._remember_failure(query, request, timeline)

    # -- understanding -------------------------------------------------------------------------------

    async def _understand(self, request: AskInput, timeline: Timeline) -> Understanding:
        parse_request = nlu_pb.ParseRequest(text=request.text, time_zone=str(request.now.tzinfo))
        parse_request.reference_time.FromDatetime(request.now.astimezone(dt.UTC))
        with timeline.stage("nlu", call=True) as span:
            try:
                reply = await self._nlu.parse(parse_request, self._hop(request, self._nlu_s))
            except DownstreamError as error:
                span.add_event("alice.fallback", {"alice.fallback": "nlu_rules", "alice.error": error.code})
                if error.code == "INVALID_ARGUMENT":
                    raise
                guess = fallback.understand(request.text, request.now)
                span.set_attributes({"alice.intent": guess.intent, "alice.route": guess.route_hint,
                                     "alice.nlu.fallback": True, "alice.nlu.slots": sorted(guess.slots),
                                     "alice.nlu.missing_slots": list(guess.missing)})
                return Understanding(intent=guess.intent, confidence=guess.confidence, abstained=False,
                                     slots=guess.slots, route_hint=guess.route_hint, missing=guess.missing,
                                     from_fallback=True)
        return Understanding(
            intent=intent_name(reply.intent) if reply.intent else "info.query",
            confidence=reply.confidence,
            abstained=reply.abstained,
            slots=slots_from_proto(reply.slots),
            route_hint=route_name(reply.route_hint) if reply.route_hint else "planner",
            missing=tuple(reply.missing_slots),
            from_fallback=False,
        )

    # -- cache -------------------------------------------------------------------------------------

    def _cache_query(self, request: AskInput, understanding: Understanding) -> cache_pb.CacheQuery:
        return cache_pb.CacheQuery(
            intent=intent_value(understanding.intent),
            slots=slots_to_proto(understanding.slots),
            text=request.text,
            user_id=request.user_id,
            answer_version=self._version,
            reference_date=_local_date(request.now),
        )

    async def _lookup_alias(self, request: AskInput, timeline: Timeline) -> cache_pb.LookupResponse | None:
        query = cache_pb.CacheQuery(text=request.text, user_id=request.user_id, answer_version=self._version,
                                    reference_date=_local_date(request.now))
        with timeline.stage("cache_alias", call=True) as span:
            try:
                reply = await self._cache.lookup(
                    cache_pb.LookupRequest(query=query, tiers=[CacheTier.CACHE_TIER_L1_EXACT]),
                    self._hop(request, self._cache_s),
                )
            except DownstreamError as error:
                span.add_event("alice.fallback", {"alice.fallback": "cache_bypass", "alice.error": error.code})
                return None
            # The text alone does not say whose answer this is; the cached intent does.
            if reply.hit and _personal(reply.answer.intent) and self._pending.bypass(request.user_id, "alias"):
                span.add_event("alice.fallback", _PENDING_BYPASS)
                return None
            return reply

    async def _lookup(self, query: cache_pb.CacheQuery, tiers: list[CacheTier.ValueType], stage: str,
                      request: AskInput,
                      timeline: Timeline, answer: Answer) -> cache_pb.LookupResponse | None:
        with timeline.stage(stage, call=True) as span:
            try:
                reply = await self._cache.lookup(cache_pb.LookupRequest(query=query, tiers=tiers),
                                                 self._hop(request, self._cache_s))
            except DownstreamError as error:
                span.add_event("alice.fallback", {"alice.fallback": "cache_bypass", "alice.error": error.code})
                if "CACHE_BYPASSED" not in answer.degradations:
                    answer.degradations.append("CACHE_BYPASSED")
                return None
            span.set_attribute("alice.cache.tier", tier_name(reply.tier) or "miss")
            if reply.rejected_by:
                span.set_attribute("alice.cache.guard", reply.rejected_by)
            return reply

    async def _lookup_semantic(self, query: cache_pb.CacheQuery, request: AskInput, timeline: Timeline,
                               answer: Answer) -> cache_pb.LookupResponse | None:
        if "CACHE_BYPASSED" in answer.degradations or "NLU_FALLBACK" in answer.degradations:
            return None
        with timeline.stage("embed", call=True):
            try:
                embedded = await self._nlu.embed(request.text, self._hop(request, self._nlu_s))
            except DownstreamError:
                return None
        query.embedding.extend(embedded.embedding)
        query.embedding_model = embedded.model
        reply = await self._lookup(query, [CacheTier.CACHE_TIER_L2_SEMANTIC], "cache_l2", request, timeline, answer)
        if reply is not None and reply.hit:
            trace.get_current_span().set_attribute("alice.cache.similarity", reply.similarity)
        return reply

    async def _store(self, query: cache_pb.CacheQuery, answer: Answer, request: AskInput, timeline: Timeline, *,
                     personal: bool) -> None:
        cached = cache_pb.CachedAnswer(text=answer.text, route=Route.Value(f"ROUTE_{answer.route.upper()}"))
        if answer.intent:
            cached.intent = intent_value(answer.intent)
            cached.slots.CopyFrom(slots_to_proto(answer.slots))
        if answer.tool_call is not None:
            cached.tool_call.CopyFrom(types_pb2.ToolCall(intent=intent_value(answer.tool_call[0]),
                                                         arguments=slots_to_proto(answer.tool_call[1])))
        with timeline.stage("cache_store", call=True) as span:
            if personal and self._pending.bypass(request.user_id, "store"):
                span.add_event("alice.fallback", _PENDING_BYPASS)
                return
            try:
                await self._cache.store(cache_pb.StoreRequest(query=query, answer=cached),
                                        self._hop(request, self._cache_s))
            except DownstreamError as error:
                span.add_event("alice.fallback", {"alice.fallback": "store_dropped", "alice.error": error.code})

    async def _remember_failure(self, query: cache_pb.CacheQuery, request: AskInput, timeline: Timeline) -> None:
        """L3: a repeat of this request fails fast while the planner is down (cleared when it recovers)."""
        failure = cache_pb.FailureEntry(downstream="llm.planner", code=14, message="planner unavailable")
        with timeline.stage("cache_store_failure", call=True), contextlib.suppress(DownstreamError):
            await self._cache.store_failure(cache_pb.StoreFailureRequest(query=query, failure=failure),
                                            self._hop(request, self._cache_s))

    def _from_cache(self, hit: cache_pb.LookupResponse, answer: Answer) -> None:
        cached = hit.answer
        answer.text = cached.text
        answer.route = "cache"
        answer.cache_tier = tier_name(hit.tier)
        if cached.intent:
            answer.intent = intent_name(cached.intent)
            answer.slots = slots_from_proto(cached.slots)
            answer.confidence = max(answer.confidence, 1.0 if hit.tier == CacheTier.CACHE_TIER_L1_EXACT else 0.0)
        if cached.HasField("tool_call") and cached.tool_call.intent:
            answer.tool_call = (intent_name(cached.tool_call.intent), slots_from_proto(cached.tool_call.arguments))
        answer.cacheable = False

    def _from_failure(self, failure: cache_pb.FailureEntry, understanding: Understanding, answer: Answer) -> None:
        answer.text = messages.UNAVAILABLE
        answer.route = "planner" if failure.downstream == "llm.planner" else "micro"
        answer.cache_tier = "l3"
        answer.degradations.append(
            "PLANNER_UNAVAILABLE" if failure.downstream == "llm.planner" else "MICRO_UNAVAILABLE")
        answer.cacheable = False

    # -- routing -----------------------------------------------------------------------------------

    def _decide(self, understanding: Understanding) -> str:
        """fast / micro / planner, with MICRO_MAX_SHARE over the sliding window and open breakers respected."""
        hint = understanding.route_hint
        if hint == "fast" and understanding.confidence < self._min_fast_confidence:
            hint = "micro"
        if (hint == "micro" and understanding.missing and not understanding.abstained
                and understanding.confidence >= self._clarify_min_confidence):
            # A confident intent that lacks a slot the text does not state: the tool asks for it. A model
            # cannot add what was not said, and the clarifying question costs no generation.
            hint = "fast"
        if hint == "micro":
            if self._llm.breakers[llm_pb.MODEL_ROLE_MICRO].state is not State.OPEN and self._quota.admit_micro():
                return "micro"
            hint = "planner"
        self._quota.record(hint)
        return hint

    # -- execution ---------------------------------------------------------------------------------

    async def _execute(self, route: str, understanding: Understanding, request: AskInput, timeline: Timeline,
                       answer: Answer) -> None:
        answer.route = route
        intent = understanding.intent
        if route == "fast":
            if tool_for(intent) is None:
                answer.text = messages.GREETING if intent == "greeting.hello" else messages.NOT_UNDERSTOOD
                return
            await self._run_tool(intent, understanding.slots, request, timeline, answer)
            return
        if intent == "info.query" and not understanding.abstained and route == "planner":
            await self._generate_answer(route, request, timeline, answer)
            return
        # A knowledge question the NLU was not sure of (route micro) goes through tool selection first: the model
        # may find the tool ("hur sent är det" is time.now), and if it agrees on info.query, the planner answers.
        if intent in _TEMPLATE_INTENTS and not understanding.abstained:
            answer.text = messages.GREETING
            return
        call = await self._select_tool(route, understanding, request, timeline, answer)
        if call is None:
            return
        chosen, arguments = call
        answer.intent = chosen
        if tool_for(chosen) is None:
            if chosen == "info.query":
                await self._generate_answer("planner", request, timeline, answer)
            else:
                answer.text = messages.GREETING
            return
        # The deterministic NLU slots win where the model and the NLU agree on the intent.
        if chosen == understanding.intent:
            arguments = {**arguments, **understanding.slots}
        answer.slots = dict(arguments)
        await self._run_tool(chosen, arguments, request, timeline, answer)

    async def _select_tool(self, route: str, understanding: Understanding, request: AskInput, timeline: Timeline,
                           answer: Answer) -> tuple[str, dict[str, object]] | None:
        """Ask the route's model for a tool call; fall back micro -> planner -> honest reply."""
        order = ["micro", "planner"] if route == "micro" else ["planner", "micro"]
        for role in order:
            breaker = self._llm.breakers[_ROLE[role]]
            if breaker.state is State.OPEN:
                answer.degradations.append(_UNAVAILABLE[role])
                continue
            # Tool only: the deterministic NLU owns the slots (the models' slot exact match is 35-66 %,
            # docs/llm.md), and choosing just the tool is about four times faster.
            select = llm_pb.SelectToolRequest(text=request.text, role=_ROLE[role], tool_only=True,
                                              time_zone=str(request.now.tzinfo))
            select.reference_time.FromDatetime(request.now.astimezone(dt.UTC))
            select.hint.intent = intent_value(understanding.intent)
            select.hint.arguments.CopyFrom(slots_to_proto(understanding.slots))
            budget = self._hop(request, self._micro_s if role == "micro" else self._planner_s)
            with timeline.stage(f"llm_{role}", call=True) as span:
                span.set_attribute("gen_ai.operation.name", "chat")
                try:
                    reply = await self._llm.select_tool(select, budget)
                except DownstreamError as error:
                    span.add_event("alice.fallback", {"alice.fallback": f"{role}_unavailable",
                                                      "alice.error": error.code})
                    answer.degradations.append(_UNAVAILABLE[role])
                    continue
            answer.route = role
            timeline.ms["llm_ttft"] = timeline.ms.get("llm_ttft", 0.0) + reply.stats.ttft_ms
            try:
                return intent_name(reply.tool_call.intent), slots_from_proto(reply.tool_call.arguments)
            except TaxonomyError:
                break
        answer.text = messages.UNAVAILABLE
        answer.cacheable = False
        return None

    async def _generate_answer(self, route: str, request: AskInput, timeline: Timeline, answer: Answer) -> None:
        """A Swedish answer to a knowledge question: planner first, micro if the planner is down."""
        order = ["planner", "micro"] if route != "micro" else ["micro", "planner"]
        for role in order:
            breaker = self._llm.breakers[_ROLE[role]]
            if breaker.state is State.OPEN:
                answer.degradations.append(_UNAVAILABLE[role])
                continue
            generate = llm_pb.GenerateRequest(task=llm_pb.GENERATION_TASK_ANSWER_QUESTION, text=request.text,
                                              role=_ROLE[role])
            budget = self._hop(request, self._planner_s if role == "planner" else self._micro_s)
            pieces: list[str] = []
            with timeline.stage(f"llm_{role}", call=True) as span:
                span.set_attribute("gen_ai.operation.name", "chat")
                try:
                    async for event in self._llm.generate_stream(generate, budget):
                        if event.WhichOneof("event") == "delta":
                            pieces.append(event.delta)
                            if answer.on_delta is not None:
                                answer.on_delta(event.delta)
                        else:
                            timeline.ms["llm_ttft"] = event.stats.ttft_ms
                except DownstreamError as error:
                    span.add_event("alice.fallback", {"alice.fallback": f"{role}_unavailable",
                                                      "alice.error": error.code})
                    answer.degradations.append(_UNAVAILABLE[role])
                    continue
            answer.route = role
            answer.text = "".join(pieces).strip() or messages.UNAVAILABLE
            return
        answer.text = messages.UNAVAILABLE
        answer.cacheable = False

    async def _run_tool(self, intent: str, arguments: Mapping[str, object], request: AskInput, timeline: Timeline,
                        answer: Answer) -> None:
        with timeline.stage("tool", attributes={"alice.tool": intent}):
            outcome = await self._tools.run(intent, arguments, request, self._hop(request, self._tool_s))
        answer.text = outcome.reply
        if outcome.rejected:
            answer.cacheable = False
            return
        answer.tool_call = (intent, dict(arguments))
        answer.cacheable = answer.cacheable and outcome.cacheable
        if outcome.degraded:
            answer.degradations.append("TOOL_UNAVAILABLE")
        if outcome.mutated:
            await self._invalidate(request, timeline)

    async def _invalidate(self, request: AskInput, timeline: Timeline) -> None:
        """Drop the user's cached personal answers; a failure is retried in the background (PendingInvalidations)."""
        with timeline.stage("cache_invalidate", call=True) as span:
            if self._pending.pending(request.user_id):
                # A retry loop runs already: it covers this change too (and keeps this request off a sick cache).
                self._pending.add(request.user_id)
                span.add_event("alice.fallback", {"alice.fallback": "invalidate_retry"})
                return
            try:
                await self._cache.invalidate(request.user_id, self._hop(request, self._cache_s))
            except DownstreamError as error:
                self._pending.add(request.user_id)
                span.add_event("alice.fallback", {"alice.fallback": "invalidate_retry", "alice.error": error.code})

    def _hop(self, request: AskInput, cap_s: float) -> float:
        """A hop's timeout: its cap, but never past the request's deadline (minus a reserve for the reply)."""
        return max(0.001, min(cap_s, request.remaining() - _RESERVE_S))


_ROLE = {"micro": llm_pb.MODEL_ROLE_MICRO, "planner": llm_pb.MODEL_ROLE_PLANNER}
_UNAVAILABLE = {"micro": "MICRO_UNAVAILABLE", "planner": "PLANNER_UNAVAILABLE"}
