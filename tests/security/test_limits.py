"""Limits: per-user rate limiting at the router, message sizes, concurrent streams per connection, and a deadline
on every internal call."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from security_helpers import DownLlm, Stack, ask, request, start_stack

from alice.cache.v1 import cache_service_pb2 as cache_pb
from alice.cache.v1 import cache_service_pb2_grpc as cache_grpc
from alice.local.redis_server import RedisServer
from alice.nlu.v1 import nlu_service_pb2 as nlu_pb
from alice.nlu.v1 import nlu_service_pb2_grpc as nlu_grpc
from alice.router.v1 import router_service_pb2_grpc as pb_grpc
from alice.runtime.channels import open_channel
from alice.runtime.config import ClientSettings, ServerSettings
from alice.runtime.ratelimit import TokenBucketLimiter
from alice.runtime.server import ServiceHost
from alice.runtime.telemetry import Telemetry
from alice.taxonomy import Intent, Route
from router_svc.config import Config
from router_svc.pipeline import AskInput, ToolOutcome
from router_svc.server import build


@pytest.fixture(scope="module")
async def limited(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer,
                  make_telemetry: Callable[[str], Telemetry]) -> AsyncIterator[Stack]:
    running = await start_stack(tmp_path_factory.mktemp("limited"), redis_server.url, make_telemetry,
                                router_env={"RATE_LIMIT_PER_S": "0.2", "RATE_LIMIT_BURST": "3"})
    yield running
    await running.close()


async def test_rate_limit_per_user_with_a_retry_hint(limited: Stack) -> None:
    stub = limited.stub()
    for _ in range(3):
        await ask(stub, "Vad är klockan?", limited.api_key("bob"))
    call = stub.Ask(request("Vad är klockan?"), metadata=limited.jwt("bob"), timeout=5)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    error = caught.value
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "at most 0.2 requests per second per user" in (error.details() or "")
    assert "retry in 5 s" in (error.details() or "")
    trailing: Any = error.trailing_metadata()  # grpc.aio.Metadata: (key, value) pairs
    assert ("retry-after", "5") in [tuple(item) for item in trailing]
    # Another user still has a full bucket; the limit is per user, not per connection.
    assert (await ask(stub, "Vad är klockan?", limited.api_key("carol"))).answer


async def test_unauthenticated_calls_do_not_spend_anyone_s_tokens(limited: Stack) -> None:
    stub = limited.stub()
    for _ in range(5):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Ask(request("Vad är klockan?"), metadata=(("authorization", "Bearer nope"),), timeout=5)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert (await ask(stub, "Vad är klockan?", limited.api_key("alice"))).answer


def test_token_bucket_refills_and_forgets_idle_users() -> None:
    now = [0.0]
    limiter = TokenBucketLimiter(rate_per_s=2.0, burst=2, max_keys=3, clock=lambda: now[0])
    assert limiter.take("a") == 0.0 and limiter.take("a") == 0.0
    assert limiter.take("a") == pytest.approx(0.5)
    now[0] += 0.5
    assert limiter.take("a") == 0.0
    for user in ("b", "c"):
        limiter.take(user)
    assert len(limiter) == 3
    now[0] += 1.0  # everyone has refilled completely: their buckets are dropped as new calls come
    limiter.take("d")
    assert len(limiter) == 1
    for user in "efghijk":
        limiter.take(user)
    assert len(limiter) <= 3  # never more than max_keys buckets, however many users call


async def test_oversized_messages_are_refused_by_router_and_internal_services(limited: Stack) -> None:
    huge = "a" * (2 << 20)  # MAX_MESSAGE_BYTES is 1 MiB everywhere by default
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await limited.stub().Ask(request(huge), metadata=limited.api_key("alice"), timeout=5)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    options = [("grpc.max_send_message_length", 8 << 20)]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{limited.cache_port}", options=options) as channel:
        stub = cache_grpc.CacheServiceStub(channel)  # type: ignore[no-untyped-call,unused-ignore]
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Lookup(cache_pb.LookupRequest(query=cache_pb.CacheQuery(text=huge)), timeout=5)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


# --- concurrency and deadlines, with recording fakes -----------------------------------------------------------


class RecordingNlu(nlu_grpc.NluServiceServicer):
    """Records each call's remaining deadline and the order calls start and end."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.remaining: list[float | None] = []
        self.events: list[str] = []
        self.delay_s = delay_s

    async def Parse(self, request: nlu_pb.ParseRequest, context: grpc.aio.ServicerContext[Any, Any]
                    ) -> nlu_pb.ParseResponse:
        self.remaining.append(context.time_remaining())
        self.events.append("start")
        await asyncio.sleep(self.delay_s)
        self.events.append("end")
        return nlu_pb.ParseResponse(intent=Intent.INTENT_TIME_NOW, confidence=0.99, route_hint=Route.ROUTE_FAST)


class RecordingCache(cache_grpc.CacheServiceServicer):
    def __init__(self) -> None:
        self.remaining: list[float | None] = []

    async def Lookup(self, request: cache_pb.LookupRequest, context: grpc.aio.ServicerContext[Any, Any]
                     ) -> cache_pb.LookupResponse:
        self.remaining.append(context.time_remaining())
        return cache_pb.LookupResponse(hit=False)

    async def Store(self, request: cache_pb.StoreRequest, context: grpc.aio.ServicerContext[Any, Any]
                    ) -> cache_pb.StoreResponse:
        self.remaining.append(context.time_remaining())
        return cache_pb.StoreResponse(outcome=cache_pb.STORE_OUTCOME_SKIPPED_POLICY)


class ClockTools:
    async def run(self, intent: str, args: Any, ask: AskInput, timeout_s: float) -> ToolOutcome:
        return ToolOutcome(reply="Klockan är nio.")


def _settings(name: str, streams: int = 100) -> ServerSettings:
    return ServerSettings(name, "127.0.0.1", 0, 1.0, 0.0, 1 << 20, streams, "INFO", "text")


async def _host(name: str, service: str, add: Callable[[Any, Any], None], servicer: Any, telemetry: Telemetry,
                streams: int = 100) -> ServiceHost:
    host = ServiceHost(_settings(name, streams), telemetry, [service])
    add(servicer, host.server)
    await host.start()
    await host.set_serving()
    return host


async def test_every_internal_call_carries_a_deadline(make_telemetry: Callable[[str], Telemetry]) -> None:
    from alice.llm.v1 import llm_service_pb2_grpc as llm_grpc

    nlu, cache = RecordingNlu(), RecordingCache()  # type: ignore[abstract]
    hosts = [await _host("nlu", "alice.nlu.v1.NluService", nlu_grpc.add_NluServiceServicer_to_server, nlu,
                         make_telemetry("alice-nlu")),
             await _host("cache", "alice.cache.v1.CacheService", cache_grpc.add_CacheServiceServicer_to_server,
                         cache, make_telemetry("alice-cache")),
             await _host("llm", "alice.llm.v1.LlmService", llm_grpc.add_LlmServiceServicer_to_server, DownLlm(),  # type: ignore[abstract]
                         make_telemetry("alice-llm"))]
    config = Config.from_env({
        "GRPC_PORT": "0", "DRAIN_DELAY_S": "0", "AUTH_MODE": "none", "NLU_ADDR": f"127.0.0.1:{hosts[0].port}",
        "CACHE_ADDR": f"127.0.0.1:{hosts[1].port}", "LLM_ADDR": f"127.0.0.1:{hosts[2].port}",
        "NLU_TIMEOUT_S": "0.5", "CACHE_TIMEOUT_S": "0.2"})
    router = await build(config, make_telemetry("alice-router"), tools=ClockTools())
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{router.host.port}") as channel:
            await pb_grpc.RouterServiceStub(channel).Ask(request("Vad är klockan?", "u1"))  # no client deadline
        # A channel of the shared runtime gives even a call without a timeout its default deadline.
        client = ClientSettings(default_timeout_s=1.5, max_message_bytes=1 << 20, retry_attempts=1)
        channel = open_channel(f"127.0.0.1:{hosts[0].port}", ["alice.nlu.v1.NluService"], client,
                               make_telemetry("alice-test"))
        parse = nlu_pb.ParseRequest(text="hej")
        parse.reference_time.GetCurrentTime()
        await nlu_grpc.NluServiceStub(channel).Parse(parse)
        await channel.close(None)
    finally:
        await router.host.shutdown(router.close)
        for host in hosts:
            await host.shutdown()
    assert nlu.remaining and cache.remaining
    slack = 0.05  # deadlines travel as absolute times; the two clocks' readings differ by microseconds
    assert all(r is not None and 0 < r <= 0.5 + slack for r in nlu.remaining[:-1]), nlu.remaining
    assert nlu.remaining[-1] is not None and 0 < nlu.remaining[-1] <= 1.5 + slack
    assert all(r is not None and 0 < r <= 0.2 + slack for r in cache.remaining), cache.remaining


async def test_concurrent_streams_per_connection_are_capped(make_telemetry: Callable[[str], Telemetry]) -> None:
    """MAX_CONCURRENT_STREAMS=1: a second call on the same connection waits for the first; another connection
    does not."""
    nlu = RecordingNlu(delay_s=0.3)  # type: ignore[abstract]
    host = await _host("nlu", "alice.nlu.v1.NluService", nlu_grpc.add_NluServiceServicer_to_server, nlu,
                       make_telemetry("alice-nlu"), streams=1)
    parse = nlu_pb.ParseRequest(text="hej")
    first = grpc.aio.insecure_channel(f"127.0.0.1:{host.port}")
    second = grpc.aio.insecure_channel(f"127.0.0.1:{host.port}", options=[("grpc.use_local_subchannel_pool", 1)])
    try:
        one, other = nlu_grpc.NluServiceStub(first), nlu_grpc.NluServiceStub(second)
        # Connect both first, so each connection has the server's SETTINGS frame (with the cap) already.
        await one.Parse(parse, timeout=5)
        await other.Parse(parse, timeout=5)
        nlu.events.clear()
        await asyncio.gather(one.Parse(parse, timeout=5), other.Parse(parse, timeout=5))
        assert nlu.events == ["start", "start", "end", "end"]  # two connections: concurrent
        nlu.events.clear()
        await asyncio.gather(one.Parse(parse, timeout=5), one.Parse(parse, timeout=5))
        assert nlu.events == ["start", "end", "start", "end"]  # one connection: the second waits
    finally:
        await first.close(None)
        await second.close(None)
        await host.shutdown()


def test_certificates_script_writes_private_keys_0600(certs: dict[str, Path]) -> None:
    for label, path in certs.items():
        if label.endswith("-key"):
            assert path.stat().st_mode & 0o777 == 0o600, label
