"""The gRPC tracing interceptors: client and server spans, W3C propagation, status codes, cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import pytest
from fakes import FakeLlm, FakeNlu, settings
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from alice.llm.v1 import llm_service_pb2 as llm_pb
from alice.llm.v1 import llm_service_pb2_grpc as llm_grpc
from alice.nlu.v1 import nlu_service_pb2 as nlu_pb
from alice.nlu.v1 import nlu_service_pb2_grpc as nlu_grpc
from alice.runtime.channels import open_channel
from alice.runtime.config import ClientSettings
from alice.runtime.errors import InvalidArgument, ServiceError, Unavailable
from alice.runtime.server import ServiceHost
from alice.runtime.telemetry import Telemetry
from alice.runtime.tracing import as_call_span

NLU = "alice.nlu.v1.NluService"
PARSE = f"/{NLU}/Parse"


class Scripted(FakeNlu):
    """Parse fails with `error` when one is set; `delay_s` (FakeNlu) keeps it busy."""

    def __init__(self) -> None:
        super().__init__()
        self.error: Exception | None = None

    async def Parse(self, request: nlu_pb.ParseRequest, context: grpc.aio.ServicerContext[Any, Any]
                    ) -> nlu_pb.ParseResponse:
        if self.error is not None:
            raise self.error
        return await super().Parse(request, context)


@pytest.fixture
async def mesh(make_telemetry: Callable[[str], Telemetry], span_exporter: InMemorySpanExporter
               ) -> AsyncIterator[tuple[Scripted, grpc.aio.Channel, int]]:
    servicer = Scripted()
    host = ServiceHost(settings("alice-server"), make_telemetry("alice-server"), [NLU])
    nlu_grpc.add_NluServiceServicer_to_server(servicer, host.server)
    port = await host.start()
    await host.set_serving()
    channel = open_channel(f"127.0.0.1:{port}", [NLU],
                           ClientSettings(default_timeout_s=2.0, max_message_bytes=1 << 20, retry_attempts=1),
                           make_telemetry("alice-client"))
    span_exporter.clear()
    yield servicer, channel, port
    await channel.close(None)
    await host.shutdown()


async def _spans(exporter: InMemorySpanExporter, count: int) -> tuple[ReadableSpan, ReadableSpan]:
    """The client and the server span of the one call made (the server's may end a moment later)."""
    for _ in range(100):
        spans = [s for s in exporter.get_finished_spans() if s.name == PARSE]
        if len(spans) >= count:
            break
        await asyncio.sleep(0.01)
    client = next(s for s in spans if s.kind == SpanKind.CLIENT)
    server = next(s for s in spans if s.kind == SpanKind.SERVER)
    return client, server


async def test_server_span_is_the_child_of_the_client_span(mesh: tuple[Scripted, grpc.aio.Channel, int],
                                                           span_exporter: InMemorySpanExporter) -> None:
    _, channel, _ = mesh
    await nlu_grpc.NluServiceStub(channel).Parse(nlu_pb.ParseRequest(text="vad är klockan"), timeout=2)
    client, server = await _spans(span_exporter, 2)
    assert client.resource.attributes["service.name"] == "alice-client"
    assert server.resource.attributes["service.name"] == "alice-server"
    assert server.context is not None and client.context is not None
    assert server.context.trace_id == client.context.trace_id
    assert server.parent is not None and server.parent.is_remote
    assert server.parent.span_id == client.context.span_id
    for span in (client, server):
        assert span.attributes is not None
        assert {k: span.attributes[k] for k in ("rpc.system", "rpc.service", "rpc.method", "rpc.grpc.status_code")} \
            == {"rpc.system": "grpc", "rpc.service": NLU, "rpc.method": "Parse", "rpc.grpc.status_code": 0}
        assert span.status.status_code == StatusCode.UNSET
    assert server.attributes is not None and server.attributes["network.peer.address"] == "127.0.0.1"


@pytest.mark.parametrize(
    ("error", "code", "server_error"),
    [
        (InvalidArgument("text is empty"), grpc.StatusCode.INVALID_ARGUMENT, False),
        (Unavailable("model not loaded"), grpc.StatusCode.UNAVAILABLE, True),
        (RuntimeError("bug"), grpc.StatusCode.UNKNOWN, True),
    ],
    ids=["caller-error", "server-error", "uncaught"],
)
async def test_failed_call_carries_its_status(mesh: tuple[Scripted, grpc.aio.Channel, int],
                                              span_exporter: InMemorySpanExporter, error: Exception,
                                              code: grpc.StatusCode, server_error: bool) -> None:
    servicer, channel, _ = mesh
    servicer.error = error
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await nlu_grpc.NluServiceStub(channel).Parse(nlu_pb.ParseRequest(text="x"), timeout=2)
    assert raised.value.code() == code
    client, server = await _spans(span_exporter, 2)
    assert client.attributes is not None and server.attributes is not None
    assert client.attributes["rpc.grpc.status_code"] == server.attributes["rpc.grpc.status_code"] == code.value[0]
    assert client.status.status_code == StatusCode.ERROR  # for the caller, every failed call is an error
    assert (server.status.status_code == StatusCode.ERROR) == server_error
    if not isinstance(error, ServiceError):
        assert [event.name for event in server.events] == ["exception"]


async def test_abandoned_call_is_cancelled_not_failed(mesh: tuple[Scripted, grpc.aio.Channel, int],
                                                      span_exporter: InMemorySpanExporter) -> None:
    servicer, channel, _ = mesh
    servicer.delay_s = 0.5
    async def parse() -> nlu_pb.ParseResponse:
        return await nlu_grpc.NluServiceStub(channel).Parse(nlu_pb.ParseRequest(text="x"), timeout=2)

    call = asyncio.create_task(parse())
    await asyncio.sleep(0.1)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    client, server = await _spans(span_exporter, 2)
    for span in (client, server):
        assert span.attributes is not None and span.attributes["rpc.grpc.status_code"] == 1, span.kind
        assert span.status.status_code == StatusCode.UNSET, span.kind


async def test_health_checks_are_not_traced(mesh: tuple[Scripted, grpc.aio.Channel, int],
                                            span_exporter: InMemorySpanExporter) -> None:
    _, _, port = mesh
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
    await asyncio.sleep(0.05)
    assert span_exporter.get_finished_spans() == ()


async def test_streaming_call_spans_end_with_the_stream(make_telemetry: Callable[[str], Telemetry],
                                                        span_exporter: InMemorySpanExporter) -> None:
    host = ServiceHost(settings("alice-llm-t"), make_telemetry("alice-llm-t"), ["alice.llm.v1.LlmService"])
    llm_grpc.add_LlmServiceServicer_to_server(FakeLlm(), host.server)  # type: ignore[abstract]
    port = await host.start()
    channel = open_channel(f"127.0.0.1:{port}", ["alice.llm.v1.LlmService"],
                           ClientSettings(default_timeout_s=2.0, max_message_bytes=1 << 20, retry_attempts=1),
                           make_telemetry("alice-client"))
    try:
        span_exporter.clear()
        stream = llm_grpc.LlmServiceStub(channel).GenerateStream(llm_pb.GenerateStreamRequest(), timeout=2)
        assert len([item async for item in stream]) == 3
        await asyncio.sleep(0.05)
        spans = {s.kind: s for s in span_exporter.get_finished_spans()}
        assert set(spans) == {SpanKind.CLIENT, SpanKind.SERVER}
        assert spans[SpanKind.SERVER].parent.span_id == spans[SpanKind.CLIENT].context.span_id  # type: ignore[union-attr]
        assert all(s.attributes is not None and s.attributes["rpc.grpc.status_code"] == 0 for s in spans.values())
    finally:
        await channel.close(None)
        await host.shutdown()


async def test_a_call_span_carries_the_call_instead_of_a_second_span(
        mesh: tuple[Scripted, grpc.aio.Channel, int], make_telemetry: Callable[[str], Telemetry],
        span_exporter: InMemorySpanExporter) -> None:
    _, channel, _ = mesh
    tracer = make_telemetry("alice-client").tracer
    stub = nlu_grpc.NluServiceStub(channel)
    with tracer.start_as_current_span("router.nlu", kind=SpanKind.CLIENT) as stage, as_call_span(stage):
        await stub.Parse(nlu_pb.ParseRequest(text="vad är klockan"), timeout=2)
        assert stage.is_recording()  # the caller ends its span, not the interceptor
        await stub.Parse(nlu_pb.ParseRequest(text="och imorgon?"), timeout=2)  # a second call: its own span
    for _ in range(100):
        spans = span_exporter.get_finished_spans()
        if sum(s.kind == SpanKind.SERVER for s in spans) == 2:
            break
        await asyncio.sleep(0.01)
    stage_span = next(s for s in spans if s.name == "router.nlu")
    own = [s for s in spans if s.name == PARSE and s.kind == SpanKind.CLIENT]
    servers = sorted((s for s in spans if s.kind == SpanKind.SERVER), key=lambda s: s.start_time or 0)
    assert stage_span.attributes is not None and stage_span.attributes["rpc.method"] == "Parse"
    assert stage_span.attributes["rpc.grpc.status_code"] == 0
    call_start, call_end = stage_span.attributes["alice.call.start_ns"], stage_span.attributes["alice.call.end_ns"]
    assert isinstance(call_start, int) and isinstance(call_end, int)
    assert stage_span.start_time is not None and stage_span.end_time is not None
    assert stage_span.start_time <= call_start < call_end <= stage_span.end_time
    assert len(own) == 1 and own[0].parent is not None and own[0].parent.span_id == stage_span.context.span_id
    assert [s.parent.span_id for s in servers if s.parent] == [stage_span.context.span_id, own[0].context.span_id]
