"""Llm servicer: translates protos to the domain and back."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import AsyncIterator
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import grpc

from alice.llm.v1 import llm_service_pb2, llm_service_pb2_grpc
from alice.runtime.errors import InvalidArgument, Unavailable
from llm_svc.backends import Completion
from llm_svc.engine import LlmEngine, ModelOutputInvalid

ROLES: dict[int, str] = {llm_service_pb2.MODEL_ROLE_MICRO: "micro", llm_service_pb2.MODEL_ROLE_PLANNER: "planner"}
TASKS: dict[int, str] = {llm_service_pb2.GENERATION_TASK_ANSWER_QUESTION: "answer_question"}
DEFAULT_TIME_ZONE = "Europe/Stockholm"


def _role(value: int) -> str:
    try:
        return ROLES[value]
    except KeyError:
        raise InvalidArgument("role must be MODEL_ROLE_MICRO or MODEL_ROLE_PLANNER") from None


def _deadline(context: grpc.aio.ServicerContext[Any, Any]) -> float | None:
    remaining = context.time_remaining()
    return None if remaining is None else time.monotonic() + remaining


def _stats(completion: Completion) -> llm_service_pb2.GenerationStats:
    return llm_service_pb2.GenerationStats(
        model=completion.model,
        input_tokens=completion.input_tokens,
        output_tokens=completion.output_tokens,
        queue_ms=completion.queue_ms,
        ttft_ms=completion.ttft_ms,
        total_ms=completion.total_ms,
    )


def _reference(request: llm_service_pb2.SelectToolRequest) -> dt.datetime:
    if not request.HasField("reference_time"):
        raise InvalidArgument("reference_time is required")
    name = request.time_zone or DEFAULT_TIME_ZONE
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidArgument(f"unknown time zone {name!r}") from None
    return request.reference_time.ToDatetime(tzinfo=dt.UTC).astimezone(zone)


class LlmServicer(llm_service_pb2_grpc.LlmServiceServicer):
    """SelectTool, Generate and GenerateStream over an LlmEngine."""

    def __init__(self, engine: LlmEngine) -> None:
        self._engine = engine

    async def SelectTool(
        self, request: llm_service_pb2.SelectToolRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> llm_service_pb2.SelectToolResponse:
        role = _role(request.role)
        reference = _reference(request)
        try:
            selection = await self._engine.select_tool(
                request.text, role, reference, max_tokens=request.max_tokens, temperature=request.temperature,
                deadline=_deadline(context), tool_only=request.tool_only,
            )
        except ModelOutputInvalid:
            # gRFC A6: a negative pushback tells client retry policies not to retry this UNAVAILABLE.
            context.set_trailing_metadata((("grpc-retry-pushback-ms", "-1"),))
            raise
        return llm_service_pb2.SelectToolResponse(
            tool_call=selection.proto, repaired=selection.repaired, stats=_stats(selection.completion)
        )

    def _check(self, request: llm_service_pb2.GenerateRequest) -> str:
        if request.task not in TASKS:
            raise InvalidArgument("task must be GENERATION_TASK_ANSWER_QUESTION")
        return _role(request.role)

    async def Generate(
        self, request: llm_service_pb2.GenerateRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> llm_service_pb2.GenerateResponse:
        role = self._check(request)
        chat = self._engine.answer_request(request.text, max_tokens=request.max_tokens,
                                           temperature=request.temperature, deadline=_deadline(context))
        completion: Completion | None = None
        async for event in self._engine.answer(chat, role, request.text):  # consumed to the end, in this task
            if isinstance(event, Completion):
                completion = event
        if completion is None:
            raise Unavailable("generation ended without a result")
        return llm_service_pb2.GenerateResponse(text=completion.text.strip(), stats=_stats(completion))

    async def GenerateStream(
        self, request: llm_service_pb2.GenerateStreamRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[llm_service_pb2.GenerateStreamResponse]:
        inner = request.request
        role = self._check(inner)
        chat = self._engine.answer_request(inner.text, max_tokens=inner.max_tokens,
                                           temperature=inner.temperature, deadline=_deadline(context))
        events = self._engine.answer(chat, role, inner.text)
        try:
            async for event in events:
                if isinstance(event, Completion):
                    yield llm_service_pb2.GenerateStreamResponse(stats=_stats(event))
                else:
                    yield llm_service_pb2.GenerateStreamResponse(delta=event)
        finally:
            await events.aclose()
