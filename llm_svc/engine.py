"""The LLM service's domain: tool selection with validation and one repair, answers, telemetry (no gRPC here)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from alice.common.v1 import types_pb2
from alice.runtime.errors import InvalidArgument, ServiceError, Unavailable
from alice.runtime.telemetry import Telemetry
from llm_svc import prompts
from llm_svc.backends import Backend, BackendError, ChatRequest, Completion, Event
from llm_svc.fault import FaultDelay
from llm_svc.toolcall import ToolCallError, parse_tool_call, tool_call_choices, tool_call_schema

log = logging.getLogger(__name__)

# Bucket boundaries the OpenTelemetry GenAI semantic conventions recommend for these histograms.
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
OPERATION_BUCKETS_S = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TTFT_BUCKETS_S = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
TPOT_BUCKETS_S = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)


class ModelOutputInvalid(Unavailable):
    """The model's output did not validate, also after the repair attempt.

    UNAVAILABLE because the caller's fallback applies (another route, or an honest reply), exactly as when
    the model is down; the servicer adds `grpc-retry-pushback-ms: -1` so client retry policies do not
    repeat a deterministic failure.
    """


@dataclass(frozen=True)
class Limits:
    max_text_chars: int = 2000
    tool_max_tokens: int = 64
    answer_max_tokens: int = 96
    max_tokens_limit: int = 512
    fault_delay: FaultDelay = field(default_factory=FaultDelay)


@dataclass(frozen=True)
class ToolSelection:
    intent: str
    arguments: dict[str, object]
    proto: types_pb2.ToolCall
    repaired: bool
    completion: Completion


def _merge(first: Completion, second: Completion) -> Completion:
    return Completion(
        text=second.text,
        model=second.model,
        input_tokens=first.input_tokens + second.input_tokens,
        output_tokens=first.output_tokens + second.output_tokens,
        queue_ms=first.queue_ms + second.queue_ms,
        ttft_ms=first.ttft_ms,
        total_ms=first.total_ms + second.total_ms,
        finish_reason=second.finish_reason,
    )


class LlmEngine:
    """Roles -> back ends, prompts, validation and GenAI spans."""

    def __init__(self, backends: Mapping[str, Backend], telemetry: Telemetry, limits: Limits) -> None:
        self._backends = dict(backends)
        self._telemetry = telemetry
        self._limits = limits
        meter = telemetry.meter
        self._token_usage = meter.create_histogram(
            "gen_ai.client.token.usage", unit="{token}", description="Number of input and output tokens used",
            explicit_bucket_boundaries_advisory=TOKEN_BUCKETS)
        self._operation_duration = meter.create_histogram(
            "gen_ai.client.operation.duration", unit="s", description="GenAI operation duration (queue included)",
            explicit_bucket_boundaries_advisory=OPERATION_BUCKETS_S)
        self._ttft = meter.create_histogram(
            "gen_ai.server.time_to_first_token", unit="s", description="Time to the first token, after the queue wait",
            explicit_bucket_boundaries_advisory=TTFT_BUCKETS_S)
        self._tpot = meter.create_histogram(
            "gen_ai.server.time_per_output_token", unit="s", description="Time per output token after the first",
            explicit_bucket_boundaries_advisory=TPOT_BUCKETS_S)
        self._queue_wait = meter.create_histogram(
            "alice.llm.queue.duration", unit="ms", description="Wait for a generation slot of the model")
        self._schema = tool_call_schema()
        self._tool_only_schema = tool_call_schema(arguments=False)
        self._choices = tool_call_choices()
        self._tool_only_choices = tool_call_choices(arguments=False)

    def backend(self, role: str) -> Backend:
        try:
            return self._backends[role]
        except KeyError:
            raise InvalidArgument(f"unknown model role {role!r}") from None

    def check_text(self, text: str) -> None:
        if not text.strip():
            raise InvalidArgument("text is empty")
        if len(text) > self._limits.max_text_chars:
            raise InvalidArgument(f"text has {len(text)} characters; the limit is {self._limits.max_text_chars}")

    def _max_tokens(self, requested: int, default: int) -> int:
        if requested < 0:
            raise InvalidArgument("max_tokens must not be negative")
        if requested > self._limits.max_tokens_limit:
            raise InvalidArgument(f"max_tokens {requested} is above the limit {self._limits.max_tokens_limit}")
        return requested or default

    @staticmethod
    def _temperature(value: float) -> float:
        if not 0.0 <= value <= 2.0:
            raise InvalidArgument("temperature must be between 0 and 2")
        return value

    async def _fault_delay(self) -> None:
        delay_ms = self._limits.fault_delay.current_ms()
        if delay_ms:
            await asyncio.sleep(delay_ms / 1000)

    async def warm(self, reference_day: dt.date) -> None:
        """Evaluate each role's prompt prefixes once, so the first real request finds them cached."""
        reference = dt.datetime.combine(reference_day, dt.time(9, 0))
        seen: set[int] = set()
        for backend in self._backends.values():
            if id(backend) in seen:
                continue
            seen.add(id(backend))
            for key, messages in (("tool", prompts.tool_messages("hej", reference)),
                                  ("answer", prompts.answer_messages("hej"))):
                started = time.monotonic()
                async for _ in backend.stream(ChatRequest(messages, max_tokens=1, prefix_key=key)):
                    pass
                log.info("warmed %s prompt of %s in %.1f s", key, backend.model, time.monotonic() - started)

    async def select_tool(self, text: str, role: str, reference: dt.datetime, *, max_tokens: int = 0,
                          temperature: float = 0.0, deadline: float | None = None,
                          tool_only: bool = False) -> ToolSelection:
        """Choose a tool (and its arguments unless `tool_only`), validated; one repair attempt, then UNAVAILABLE."""
        self.check_text(text)
        schema = self._tool_only_schema if tool_only else self._schema
        choices = self._tool_only_choices if tool_only else self._choices
        backend = self.backend(role)
        request = ChatRequest(
            messages=prompts.tool_messages(text, reference),
            max_tokens=self._max_tokens(max_tokens, self._limits.tool_max_tokens),
            temperature=self._temperature(temperature),
            json_schema=schema,
            deadline=deadline,
            prefix_key="tool",
            choices=choices,
        )
        await self._fault_delay()
        first = await self._complete(backend, request, role, "select_tool", text)
        try:
            call = parse_tool_call(first.text)
            return ToolSelection(call.intent, call.arguments, call.proto, False, first)
        except ToolCallError as error:
            problem = str(error)
            log.info("tool call from %s did not validate (%s); one repair attempt", backend.model, problem)
        repair = ChatRequest(
            messages=prompts.repair_messages(request.messages, first.text, problem),
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            json_schema=schema,
            deadline=deadline,
            prefix_key="tool",
            choices=choices,
        )
        second = await self._complete(backend, repair, role, "select_tool_repair", text)
        try:
            call = parse_tool_call(second.text)
        except ToolCallError as error:
            raise ModelOutputInvalid(f"model output did not validate, also after one repair: {error}") from None
        return ToolSelection(call.intent, call.arguments, call.proto, True, _merge(first, second))

    async def _complete(self, backend: Backend, request: ChatRequest, role: str, task: str,
                        text: str) -> Completion:
        completion: Completion | None = None
        async for event in self.generate(backend, request, role, task, text):
            if isinstance(event, Completion):
                completion = event
        if completion is None:
            raise BackendError(f"{backend.model} ended without a result")
        return completion

    def answer_request(self, text: str, *, max_tokens: int = 0, temperature: float = 0.0,
                       deadline: float | None = None) -> ChatRequest:
        self.check_text(text)
        return ChatRequest(
            messages=prompts.answer_messages(text),
            max_tokens=self._max_tokens(max_tokens, self._limits.answer_max_tokens),
            temperature=self._temperature(temperature),
            deadline=deadline,
            prefix_key="answer",
        )

    async def answer(self, request: ChatRequest, role: str, text: str) -> AsyncGenerator[Event, None]:
        await self._fault_delay()
        async for event in self.generate(self.backend(role), request, role, "answer_question", text):
            yield event

    async def generate(self, backend: Backend, request: ChatRequest, role: str, task: str,
                       text: str) -> AsyncGenerator[Event, None]:
        """Run one generation inside a GenAI `chat` span; back-end failures become UNAVAILABLE."""
        tracer = self._telemetry.tracer
        start_ns = time.time_ns()
        started = time.monotonic()
        labels = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": backend.system,
                  "gen_ai.request.model": backend.model, "alice.llm.role": role, "alice.llm.task": task}
        kind = SpanKind.INTERNAL if backend.system == "llama.cpp" else SpanKind.CLIENT
        with tracer.start_as_current_span(f"chat {backend.model}", kind=kind,
                                          record_exception=False, set_status_on_exception=False) as span:
            span.set_attributes({
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": backend.system,
                "gen_ai.request.model": backend.model,
                "gen_ai.request.max_tokens": request.max_tokens,
                "gen_ai.request.temperature": request.temperature,
                "alice.llm.role": role,
                "alice.llm.task": task,
            })
            if self._telemetry.record_text:
                span.set_attribute("alice.llm.input_text", text)
            try:
                async for event in backend.stream(request):
                    if isinstance(event, Completion):
                        self._record(span, event, start_ns)
                        self._measure(event, labels, time.monotonic() - started)
                    yield event
            except ServiceError as error:
                span.set_status(Status(StatusCode.ERROR, error.message))
                span.set_attribute("error.type", error.code)
                self._operation_duration.record(time.monotonic() - started, labels | {"error.type": error.code})
                raise
            except BackendError as error:
                span.set_status(Status(StatusCode.ERROR, str(error)))
                span.set_attribute("error.type", "backend")
                self._operation_duration.record(time.monotonic() - started, labels | {"error.type": "backend"})
                raise Unavailable(f"model {backend.model} failed: {error}") from None

    def _measure(self, completion: Completion, labels: dict[str, str], elapsed_s: float) -> None:
        """The GenAI metrics of one finished generation (names and buckets per the GenAI conventions)."""
        labels = labels | {"gen_ai.response.model": completion.model}
        self._operation_duration.record(elapsed_s, labels)
        self._token_usage.record(completion.input_tokens, labels | {"gen_ai.token.type": "input"})
        self._token_usage.record(completion.output_tokens, labels | {"gen_ai.token.type": "output"})
        self._ttft.record(completion.ttft_ms / 1000, labels)
        if completion.output_tokens > 1:
            decode_ms = max(0.0, completion.total_ms - completion.ttft_ms)
            self._tpot.record(decode_ms / 1000 / (completion.output_tokens - 1), labels)
        self._queue_wait.record(completion.queue_ms, {"gen_ai.request.model": labels["gen_ai.request.model"]})

    def _record(self, span: trace.Span, completion: Completion, start_ns: int) -> None:
        span.set_attributes({
            "gen_ai.response.model": completion.model,
            "gen_ai.response.finish_reasons": [completion.finish_reason],
            "gen_ai.usage.input_tokens": completion.input_tokens,
            "gen_ai.usage.output_tokens": completion.output_tokens,
            "alice.llm.queue_ms": round(completion.queue_ms, 2),
            "alice.llm.ttft_ms": round(completion.ttft_ms, 2),
            "alice.llm.total_ms": round(completion.total_ms, 2),
        })
        for key, value in completion.extra.items():
            span.set_attribute(f"alice.llm.{key}", value)
        if self._telemetry.record_text:
            span.set_attribute("alice.llm.output_text", completion.text)
        # Child spans from the measured phases: prompt evaluation (to the first token) and generation.
        queue_end = start_ns + int(completion.queue_ms * 1e6)
        first_token = queue_end + int(completion.ttft_ms * 1e6)
        end = queue_end + int(completion.total_ms * 1e6)
        context = trace.set_span_in_context(span)
        tracer = self._telemetry.tracer
        for name, begin, finish in (("llm.queue", start_ns, queue_end), ("llm.prompt_eval", queue_end, first_token),
                                    ("llm.generate", first_token, end)):
            tracer.start_span(name, context=context, start_time=begin).end(end_time=finish)
