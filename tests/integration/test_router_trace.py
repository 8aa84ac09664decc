"""One router request is one trace with spans from every service it touched (in-process fakes downstream)."""

from __future__ import annotations

import grpc
import pytest
from fakes import FakeCache, FakeTools
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from alice.router.v1 import router_service_pb2 as pb
from alice.router.v1 import router_service_pb2_grpc as pb_grpc
from alice.taxonomy import Route


def _request(text: str, user: str = "u1") -> pb.AskRequest:
    request = pb.AskRequest(text=text, user_id=user, time_zone="Europe/Stockholm")
    request.reference_time.FromJsonString("2026-03-10T08:00:00Z")
    return request


async def test_one_request_is_one_trace_across_services(fake_mesh: dict[str, object],
                                                        span_exporter: InMemorySpanExporter) -> None:
    span_exporter.clear()
    stub = fake_mesh["stub"]
    assert isinstance(stub, pb_grpc.RouterServiceStub)
    reply = await stub.Ask(_request("hur blir vädret i Gbg på fredag"), timeout=5)

    assert reply.route == Route.ROUTE_FAST
    spans = span_exporter.get_finished_spans()
    trace_ids = {span.context.trace_id for span in spans}
    assert trace_ids == {int(reply.trace_id, 16)}
    services = {span.resource.attributes["service.name"] for span in spans if span.kind == SpanKind.SERVER}
    assert services == {"alice-router", "alice-nlu", "alice-cache"}
    root = next(s for s in spans if s.kind == SpanKind.SERVER and s.name.endswith("RouterService/Ask"))
    assert root.parent is None
    by_id = {span.context.span_id: span for span in spans}
    for span in spans:
        if span is not root:
            assert span.parent is not None and span.parent.span_id in by_id, span.name
    nlu_server = next(s for s in spans if s.kind == SpanKind.SERVER and s.name.endswith("NluService/Parse"))
    nlu_client = by_id[nlu_server.parent.span_id]  # type: ignore[union-attr]
    assert nlu_client.kind == SpanKind.CLIENT
    assert nlu_client.resource.attributes["service.name"] == "alice-router"


async def test_breakdown_comes_from_the_stage_spans(fake_mesh: dict[str, object],
                                                     span_exporter: InMemorySpanExporter) -> None:
    span_exporter.clear()
    stub = fake_mesh["stub"]
    assert isinstance(stub, pb_grpc.RouterServiceStub)
    reply = await stub.Ask(_request("vad är klockan nu"), timeout=5)
    stage = {s.name: (s.end_time - s.start_time) / 1e6 for s in span_exporter.get_finished_spans()  # type: ignore[operator]
             if s.name.startswith("router.")}
    assert reply.latency.nlu_ms == pytest.approx(stage["router.nlu"], abs=1e-6)
    assert reply.latency.tool_ms == pytest.approx(stage["router.tool"], abs=1e-6)
    assert reply.latency.total_ms >= reply.latency.nlu_ms


async def test_repeat_is_answered_from_cache_without_tool(fake_mesh: dict[str, object]) -> None:
    stub, tools, cache = fake_mesh["stub"], fake_mesh["tools"], fake_mesh["cache"]
    assert isinstance(stub, pb_grpc.RouterServiceStub) and isinstance(tools, FakeTools)
    assert isinstance(cache, FakeCache)
    cache.entries.clear()
    first = await stub.Ask(_request("väder i göteborg på fredag", user="u2"), timeout=5)
    calls = len(tools.calls)
    second = await stub.Ask(_request("väder i göteborg på fredag", user="u2"), timeout=5)
    assert first.route == Route.ROUTE_FAST and second.route == Route.ROUTE_CACHE
    assert second.answer == first.answer
    assert len(tools.calls) == calls


async def test_stream_sends_generated_pieces_then_final(fake_mesh: dict[str, object]) -> None:
    stub = fake_mesh["stub"]
    assert isinstance(stub, pb_grpc.RouterServiceStub)
    events = [e async for e in stub.AskStream(pb.AskStreamRequest(request=_request("vad är huvudstaden i Norge")),
                                               timeout=5)]
    deltas = [e.delta for e in events if e.WhichOneof("event") == "delta"]
    assert deltas == ["Huvudstaden ", "är Oslo."]
    final = events[-1].final
    assert final.answer == "Huvudstaden är Oslo." and final.route == Route.ROUTE_PLANNER


@pytest.mark.parametrize(
    ("text", "zone", "needle"),
    [("", "Europe/Stockholm", "empty"), ("   \n", "Europe/Stockholm", "empty"),
     ("x" * 2001, "Europe/Stockholm", "limit is 2000"), ("hej", "Mars/Olympus", "unknown time zone")],
    ids=["empty", "whitespace", "too-long", "bad-zone"],
)
async def test_bad_input_is_invalid_argument(fake_mesh: dict[str, object], text: str, zone: str, needle: str) -> None:
    stub = fake_mesh["stub"]
    assert isinstance(stub, pb_grpc.RouterServiceStub)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.Ask(pb.AskRequest(text=text, user_id="u1", time_zone=zone), timeout=5)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert needle in (raised.value.details() or "")


async def test_oversized_message_is_resource_exhausted(fake_mesh: dict[str, object]) -> None:
    stub = fake_mesh["stub"]
    assert isinstance(stub, pb_grpc.RouterServiceStub)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.Ask(pb.AskRequest(text="hej " * 300_000, user_id="u1"), timeout=5)
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
