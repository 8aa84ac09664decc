"""The real llm service in-process on 127.0.0.1:0 with the embedded 0.5B model serving both roles.

Needs the assembled micro model (`scripts/fetch_models.py --model micro`, part of the set-up). The model is
loaded once for the module; generations are kept short so the file runs in CI.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from alice import taxonomy
from alice.llm.v1 import llm_service_pb2 as pb
from alice.llm.v1 import llm_service_pb2_grpc as pb_grpc
from alice.runtime.telemetry import Telemetry
from llm_svc.config import Config
from llm_svc.server import LlmServer

NOW = dt.datetime(2026, 3, 10, 8, 0, tzinfo=dt.UTC)  # Tuesday 09:00 Europe/Stockholm
ENV = {"GRPC_PORT": "0", "DRAIN_DELAY_S": "0", "GRACE_PERIOD_S": "1", "LLM_PLANNER_MODEL": "micro",
       "LLM_WARM_DATE": "2026-03-10", "LLM_QUEUE_SIZE": "1"}
SERVICE = "alice.llm.v1.LlmService"


def stamp(moment: dt.datetime = NOW) -> Timestamp:
    value = Timestamp()
    value.FromDatetime(moment)
    return value


@pytest.fixture(scope="module")
async def llm(make_telemetry: Callable[[str], Telemetry]) -> AsyncIterator[dict[str, Any]]:
    """Start (NOT_SERVING, calls refused), load and warm (SERVING); records what it saw before loading."""
    server = LlmServer(Config.from_env(ENV), make_telemetry("alice-llm"))
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    health = health_pb2_grpc.HealthStub(channel)
    stub: Any = pb_grpc.LlmServiceStub(channel)
    before = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE), timeout=5)
    try:
        await stub.SelectTool(pb.SelectToolRequest(text="hej", role=pb.MODEL_ROLE_MICRO, reference_time=stamp()),
                              timeout=5)
        refused = grpc.StatusCode.OK
    except grpc.aio.AioRpcError as error:
        refused = error.code()
    await server.load()
    yield {"stub": stub, "health": health, "before": before.status, "refused_before_load": refused}
    await channel.close(None)
    await server.stop()


async def test_not_serving_until_loaded_and_warm(llm: dict[str, Any]) -> None:
    assert llm["before"] == health_pb2.HealthCheckResponse.NOT_SERVING
    assert llm["refused_before_load"] == grpc.StatusCode.UNAVAILABLE
    reply = await llm["health"].Check(health_pb2.HealthCheckRequest(service=SERVICE), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_select_tool_returns_a_valid_tool_call_with_stats(
    llm: dict[str, Any], span_exporter: InMemorySpanExporter
) -> None:
    span_exporter.clear()
    reply = await llm["stub"].SelectTool(
        pb.SelectToolRequest(text="vad är klockan", role=pb.MODEL_ROLE_MICRO, reference_time=stamp()), timeout=60)
    intent, _ = taxonomy.tool_call_from_proto(reply.tool_call)
    assert intent == "time.now"
    assert reply.stats.model.startswith("qwen2.5-coder-0.5b")
    assert reply.stats.input_tokens > 500 and reply.stats.output_tokens > 3
    assert 0 < reply.stats.ttft_ms <= reply.stats.total_ms
    chat = next(s for s in span_exporter.get_finished_spans() if s.name.startswith("chat "))
    assert chat.attributes is not None
    assert chat.attributes["gen_ai.operation.name"] == "chat"
    assert chat.attributes["gen_ai.usage.output_tokens"] == reply.stats.output_tokens
    cached = chat.attributes["alice.llm.cached_tokens"]
    assert isinstance(cached, float) and cached > 500  # the warm few-shot prefix was reused


@pytest.mark.parametrize(
    ("request_args", "problem"),
    [
        ({"text": "", "role": pb.MODEL_ROLE_MICRO}, "empty"),
        ({"text": "hej " * 600, "role": pb.MODEL_ROLE_MICRO}, "limit"),
        ({"text": "hej", "role": pb.MODEL_ROLE_UNSPECIFIED}, "role"),
        ({"text": "hej", "role": pb.MODEL_ROLE_MICRO, "time_zone": "Mars/Olympus"}, "time zone"),
        ({"text": "hej", "role": pb.MODEL_ROLE_MICRO, "reference_time": None}, "reference_time"),
        ({"text": "0123456789" * 199, "role": pb.MODEL_ROLE_MICRO}, "context"),  # one token per digit
    ],
    ids=["empty", "over-2000-chars", "no-role", "bad-zone", "no-reference", "over-context"],
)
async def test_bad_select_tool_input_is_invalid_argument(llm: dict[str, Any], request_args: dict[str, Any],
                                                         problem: str) -> None:
    args = {"reference_time": stamp(), **request_args}
    if args["reference_time"] is None:
        del args["reference_time"]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await llm["stub"].SelectTool(pb.SelectToolRequest(**args), timeout=30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert problem in (caught.value.details() or "")


async def test_output_that_never_validates_is_unavailable_without_retry(llm: dict[str, Any]) -> None:
    """Four tokens cannot hold a tool call: the first answer and the repair are both truncated JSON."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await llm["stub"].SelectTool(pb.SelectToolRequest(text="väder i Luleå på torsdag", role=pb.MODEL_ROLE_MICRO,
                                                          reference_time=stamp(), max_tokens=4), timeout=60)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "did not validate" in (caught.value.details() or "")
    metadata: Any = caught.value.trailing_metadata() or ()
    trailing = {str(key): str(value) for key, value in metadata}
    assert trailing.get("grpc-retry-pushback-ms") == "-1"


async def test_generate_answers_in_swedish_text(llm: dict[str, Any]) -> None:
    reply = await llm["stub"].Generate(pb.GenerateRequest(
        task=pb.GENERATION_TASK_ANSWER_QUESTION, text="vad är huvudstaden i Sverige", role=pb.MODEL_ROLE_PLANNER,
        max_tokens=16), timeout=60)
    assert reply.text and reply.stats.output_tokens <= 16


async def test_generate_stream_sends_pieces_then_stats_with_ttft(llm: dict[str, Any]) -> None:
    request = pb.GenerateStreamRequest(request=pb.GenerateRequest(
        task=pb.GENERATION_TASK_ANSWER_QUESTION, text="vem skrev Röda rummet", role=pb.MODEL_ROLE_MICRO,
        max_tokens=12))
    events = [event async for event in llm["stub"].GenerateStream(request, timeout=60)]
    assert events[-1].HasField("stats") and all(e.HasField("delta") for e in events[:-1])
    assert len(events) >= 2 and 0 < events[-1].stats.ttft_ms <= events[-1].stats.total_ms


async def test_generate_rejects_unspecified_task(llm: dict[str, Any]) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await llm["stub"].Generate(pb.GenerateRequest(text="hej", role=pb.MODEL_ROLE_MICRO), timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_deadline_cancels_generation_and_frees_the_model(llm: dict[str, Any]) -> None:
    long_answer = pb.GenerateRequest(task=pb.GENERATION_TASK_ANSWER_QUESTION, role=pb.MODEL_ROLE_MICRO,
                                     text="berätta utförligt om Sveriges historia", max_tokens=400)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await llm["stub"].Generate(long_answer, timeout=1.0)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    # The cancelled generation stops between tokens, so a short call right after is served, not queued for long.
    reply = await llm["stub"].Generate(pb.GenerateRequest(
        task=pb.GENERATION_TASK_ANSWER_QUESTION, text="hej", role=pb.MODEL_ROLE_MICRO, max_tokens=2), timeout=60)
    assert reply.stats.output_tokens <= 2


async def test_full_queue_is_resource_exhausted(llm: dict[str, Any]) -> None:
    """LLM_QUEUE_SIZE=1: one call runs, one waits, the third is refused at once."""
    request = pb.GenerateRequest(task=pb.GENERATION_TASK_ANSWER_QUESTION, text="hej", role=pb.MODEL_ROLE_MICRO,
                                 max_tokens=3)
    calls = [asyncio.ensure_future(llm["stub"].Generate(request, timeout=60)) for _ in range(3)]
    results = await asyncio.gather(*calls, return_exceptions=True)
    codes = [r.code() if isinstance(r, grpc.aio.AioRpcError) else grpc.StatusCode.OK for r in results]
    assert codes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) == 1 and codes.count(grpc.StatusCode.OK) == 2
