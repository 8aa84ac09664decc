"""alice.runtime.redis_tracing against a real Redis: the spans say what opentelemetry-instrumentation-redis says."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from redis.exceptions import ResponseError

from alice.local.redis_server import RedisServer
from alice.runtime.redis_tracing import TracedRedis, traced

Exercise = Callable[[aioredis.Redis], Awaitable[Any]]


def _provider() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


async def _pipeline(client: aioredis.Redis) -> Any:
    pipe = client.pipeline(transaction=False)
    pipe.delete("rt:h", "rt:v")
    pipe.hset("rt:h", mapping={"a": "secret value", "b": "2"})
    pipe.hgetall("rt:h")
    pipe.execute_command("VADD", "rt:v", "VALUES", 2, 0.5, 0.25, "element")
    return (await pipe.execute(raise_on_error=False))[1:]  # not the DEL count: it depends on the run before


async def _commands(client: aioredis.Redis) -> Any:
    await client.delete("rt:k")
    await client.set("rt:k", "hemligt")
    return await client.get("rt:k")


async def _spans(client: aioredis.Redis, provider: TracerProvider, exporter: InMemorySpanExporter,
                 exercise: Exercise) -> tuple[list[ReadableSpan], Any]:
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("request"):
        result = await exercise(client)
    return [s for s in exporter.get_finished_spans() if s.name != "request"], result


@pytest.fixture
async def clients(redis_server: RedisServer) -> AsyncIterator[tuple[aioredis.Redis, aioredis.Redis]]:
    ours, theirs = TracedRedis.from_url(redis_server.url), aioredis.Redis.from_url(redis_server.url)
    yield ours, theirs
    await ours.aclose()
    await theirs.aclose()


@pytest.mark.parametrize("exercise", [_pipeline, _commands], ids=["pipeline", "commands"])
async def test_spans_match_the_redis_instrumentation(clients: tuple[aioredis.Redis, aioredis.Redis],
                                                     exercise: Exercise) -> None:
    ours, theirs = clients
    our_provider, our_spans = _provider()
    their_provider, their_spans = _provider()
    traced(ours, our_provider)
    RedisInstrumentor.instrument_client(theirs, tracer_provider=their_provider)
    try:
        mine, my_result = await _spans(ours, our_provider, our_spans, exercise)
        reference, their_result = await _spans(theirs, their_provider, their_spans, exercise)
    finally:
        RedisInstrumentor.uninstrument_client(theirs)
    assert my_result == their_result
    assert [s.name for s in mine] == [s.name for s in reference] and mine
    for span, expected in zip(mine, reference, strict=True):
        assert span.kind == SpanKind.CLIENT == expected.kind
        assert dict(span.attributes or {}) == dict(expected.attributes or {})
        assert span.parent is not None and span.parent.span_id == next(
            s for s in our_spans.get_finished_spans() if s.name == "request").context.span_id
    values = " ".join(str(v) for s in mine for v in (s.attributes or {}).values())
    assert "secret" not in values and "hemligt" not in values  # statements carry "?", never values


async def test_no_span_outside_a_trace_and_errors_are_marked(redis_server: RedisServer) -> None:
    provider, exporter = _provider()
    client = traced(TracedRedis.from_url(redis_server.url), provider)
    try:
        assert await client.ping()  # a health ping, no trace around it
        assert exporter.get_finished_spans() == ()
        await client.set("rt:s", "x")  # still outside a trace
        with provider.get_tracer("test").start_as_current_span("request"), pytest.raises(ResponseError):
            await client.hgetall("rt:s")  # WRONGTYPE
        failed = next(s for s in exporter.get_finished_spans() if s.name == "HGETALL")
        assert failed.status.status_code == StatusCode.ERROR
        assert (failed.attributes or {})["db.statement"] == "HGETALL ?"
    finally:
        await client.aclose()


async def test_a_long_pipeline_has_a_short_name(redis_server: RedisServer) -> None:
    provider, exporter = _provider()
    client = traced(TracedRedis.from_url(redis_server.url), provider)
    try:
        with provider.get_tracer("test").start_as_current_span("request"):
            pipe = client.pipeline(transaction=False)
            for i in range(300):
                pipe.delete(f"rt:gone:{i}")
            await pipe.execute()
        span = next(s for s in exporter.get_finished_spans() if s.name != "request")
        assert span.name == " ".join(["DEL"] * 8) + " …"
        assert (span.attributes or {})["db.redis.pipeline_length"] == 300
        assert len(str((span.attributes or {})["db.statement"])) <= 1003
    finally:
        await client.aclose()


def test_only_a_traced_redis_can_be_traced() -> None:
    with pytest.raises(TypeError):
        traced(aioredis.Redis(), TracerProvider())
