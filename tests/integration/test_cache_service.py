"""The cache service in-process against a real Redis 8: tiers, scoping, invalidation, bad data, Redis outages."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING

import grpc
import numpy as np
import pytest
import redis.asyncio as aioredis
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from alice.cache.v1 import cache_service_pb2 as pb
from alice.cache.v1 import cache_service_pb2_grpc
from alice.common.v1 import taxonomy_pb2 as tx
from alice.common.v1 import types_pb2
from alice.local.redis_server import RedisServer
from alice.runtime.telemetry import Telemetry
from alice.taxonomy import slots_to_proto
from cache_svc import keys
from cache_svc.config import Config
from cache_svc.guards import analyse
from cache_svc.server import CacheApp, build

if TYPE_CHECKING:
    Stub = cache_service_pb2_grpc.CacheServiceAsyncStub

DIM = 384


def vector(seed: int, noise: float = 0.0, base: int | None = None) -> list[float]:
    """A unit vector; with `base` and `noise`, one close to `vector(base)`."""
    rng = np.random.default_rng(seed)
    v = np.random.default_rng(base).standard_normal(DIM) if base is not None else rng.standard_normal(DIM)
    v = v + noise * rng.standard_normal(DIM)
    return [float(x) for x in v / np.linalg.norm(v)]


def query(intent: int, text: str = "", user: str = "u1", slots: Mapping[str, object] | None = None,
          embedding: list[float] | None = None, version: str = "v1") -> pb.CacheQuery:
    q = pb.CacheQuery(text=text, user_id=user, answer_version=version, slots=slots_to_proto(slots or {}))
    q.intent = intent  # type: ignore[assignment,unused-ignore]
    if embedding is not None:
        q.embedding.extend(embedding)
        q.embedding_model = "test-model"
    return q


def answer(text: str) -> pb.CachedAnswer:
    return pb.CachedAnswer(text=text, route=tx.ROUTE_PLANNER)


async def start(url: str, telemetry: Telemetry, **env: str) -> tuple[CacheApp, grpc.aio.Channel, Stub]:
    config = Config.from_env({"REDIS_URL": url, "GRPC_PORT": "0", "DRAIN_DELAY_S": "0", "GRACE_PERIOD_S": "0",
                              **env})
    app = await build(config, telemetry)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{app.host.port}")
    return app, channel, cache_service_pb2_grpc.CacheServiceStub(channel)  # type: ignore[no-untyped-call,unused-ignore]


async def stop(app: CacheApp, channel: grpc.aio.Channel) -> None:
    await channel.close(None)
    await app.host.shutdown(app.close)


@pytest.fixture(scope="module")
async def service(redis_server: RedisServer, make_telemetry: Callable[[str], Telemetry]
                  ) -> AsyncIterator[tuple[Stub, aioredis.Redis]]:
    app, channel, stub = await start(redis_server.url, make_telemetry("alice-cache"))
    client = aioredis.Redis.from_url(redis_server.url)
    yield stub, client
    await client.aclose()
    await stop(app, channel)


async def invalid(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call  # type: ignore[misc]
    return info.value


WEATHER: dict[str, object] = {"city": "Luleå", "date": "2026-03-12"}


@pytest.mark.parametrize(
    ("intent", "text", "slots"),
    [
        pytest.param(tx.INTENT_WEATHER_LOOKUP, "väder i luleå på torsdag", WEATHER, id="weather"),
        pytest.param(tx.INTENT_CALENDAR_LIST, "vad har jag imorgon", {"date": "2026-03-11"}, id="calendar-list"),
        pytest.param(tx.INTENT_INFO_QUERY, "Hur högt är Kebnekaise?", {}, id="info"),
        pytest.param(tx.INTENT_MEMORY_QUERY, "Vad heter min hund?", {}, id="memory"),
        pytest.param(tx.INTENT_GREETING_HELLO, "hej", {}, id="greeting"),
    ],
)
async def test_read_after_write_hits_l1(service: tuple[Stub, aioredis.Redis], intent: int, text: str,
                                        slots: dict[str, object]) -> None:
    stub, _ = service
    q = query(intent, text, user="raw", slots=slots)
    stored = await stub.Store(pb.StoreRequest(query=q, answer=answer(f"svar {text}")))
    assert stored.outcome == pb.STORE_OUTCOME_STORED and stored.ttl.seconds > 0
    found = await stub.Lookup(pb.LookupRequest(query=q))
    assert found.hit and found.tier == types_pb2.CACHE_TIER_L1_EXACT
    assert found.answer.text == f"svar {text}" and found.similarity == 1.0


async def test_slot_paraphrases_share_the_entry(service: tuple[Stub, aioredis.Redis]) -> None:
    stub, _ = service
    await stub.Store(pb.StoreRequest(query=query(tx.INTENT_WEATHER_LOOKUP, "Hur blir vädret i Luleå på torsdag?",
                                                 slots=WEATHER), answer=answer("Sol")))
    found = await stub.Lookup(pb.LookupRequest(query=query(tx.INTENT_WEATHER_LOOKUP, "väder luleå torsdag",
                                                           slots=WEATHER)))
    assert found.hit and found.answer.text == "Sol"
    other_day = await stub.Lookup(pb.LookupRequest(query=query(
        tx.INTENT_WEATHER_LOOKUP, "Hur blir vädret i Luleå på fredag?", slots={**WEATHER, "date": "2026-03-13"})))
    assert not other_day.hit


@pytest.mark.parametrize(
    "intent",
    [pytest.param(tx.INTENT_TIME_NOW, id="time-now"), pytest.param(tx.INTENT_TIMER_SET, id="timer"),
     pytest.param(tx.INTENT_CALENDAR_CREATE_DRAFT, id="calendar-draft"),
     pytest.param(tx.INTENT_CALENDAR_MOVE, id="calendar-move"),
     pytest.param(tx.INTENT_EMAIL_CREATE_DRAFT, id="email-draft")],
)
async def test_never_cached(service: tuple[Stub, aioredis.Redis], intent: int) -> None:
    stub, _ = service
    q = query(intent, "gör något")
    stored = await stub.Store(pb.StoreRequest(query=q, answer=answer("klart")))
    assert stored.outcome == pb.STORE_OUTCOME_SKIPPED_POLICY
    assert not (await stub.Lookup(pb.LookupRequest(query=q))).hit


async def test_l2_paraphrase_hits_and_near_miss_is_rejected_by_guard(service: tuple[Stub, aioredis.Redis]) -> None:
    stub, _ = service
    await stub.Store(pb.StoreRequest(query=query(tx.INTENT_INFO_QUERY, "Vad är huvudstaden i Peru?",
                                                 embedding=vector(1)), answer=answer("Lima")))
    paraphrase = await stub.Lookup(pb.LookupRequest(query=query(
        tx.INTENT_INFO_QUERY, "vilken stad är huvudstad i Peru", embedding=vector(2, 0.05, base=1))))
    assert paraphrase.hit and paraphrase.tier == types_pb2.CACHE_TIER_L2_SEMANTIC
    assert paraphrase.answer.text == "Lima" and 0.9 < paraphrase.similarity <= 1.0
    near_miss = await stub.Lookup(pb.LookupRequest(query=query(
        tx.INTENT_INFO_QUERY, "Vad är huvudstaden i Chile?", embedding=vector(3, 0.05, base=1))))
    assert not near_miss.hit and near_miss.rejected_by == "names"
    stats = await stub.Stats(pb.StatsRequest())
    assert stats.rejections_by_guard["names"] >= 1 and stats.hits_by_tier["l2"] >= 1


async def test_l2_below_threshold_is_a_miss(service: tuple[Stub, aioredis.Redis]) -> None:
    stub, _ = service
    await stub.Store(pb.StoreRequest(query=query(tx.INTENT_INFO_QUERY, "Hur djup är Vättern?",
                                                 embedding=vector(10)), answer=answer("128 m")))
    found = await stub.Lookup(pb.LookupRequest(query=query(tx.INTENT_INFO_QUERY, "Vätterns djup i meter",
                                                           embedding=vector(11))))
    assert not found.hit


async def test_calendar_names_outside_slots_split_the_key(service: tuple[Stub, aioredis.Redis]) -> None:
    stub, _ = service
    friday: dict[str, object] = {"date": "2026-03-13"}
    await stub.Store(pb.StoreRequest(query=query(tx.INTENT_CALENDAR_LIST, "Har jag möte med Erik på fredag?",
                                                 user="cal", slots=friday), answer=answer("Ja, kl 10")))
    sara = await stub.Lookup(pb.LookupRequest(query=query(tx.INTENT_CALENDAR_LIST, "Har jag möte med Sara på fredag?",
                                                          user="cal", slots=friday)))
    assert not sara.hit
    erik = await stub.Lookup(pb.LookupRequest(query=query(tx.INTENT_CALENDAR_LIST, "Träffar jag Erik på fredag?",
                                                          user="cal", slots=friday)))
    assert erik.hit


async def test_one_user_never_gets_another_users_personal_answer(service: tuple[Stub, aioredis.Redis]) -> None:
    stub, _ = service
    for intent, text, slots in ((tx.INTENT_CALENDAR_LIST, "vad har jag idag", {"date": "2026-03-10"}),
                                (tx.INTENT_MEMORY_QUERY, "Vad heter min katt?", {})):
        await stub.Store(pb.StoreRequest(query=query(intent, text, user="anna", slots=slots,
                                                     embedding=vector(20)), answer=answer("Annas svar")))
        assert (await stub.Lookup(pb.LookupRequest(query=query(intent, text, user="anna", slots=slots,
                                                               embedding=vector(20))))).hit
        other = await stub.Lookup(pb.LookupRequest(query=query(intent, text, user="erik", slots=slots,
                                                               embedding=vector(20))))
        assert not other.hit


async def test_shared_answers_are_shared(service: tuple[Stub, aioredis.Redis]) -> None:
    stub, _ = service
    await stub.Store(pb.StoreRequest(query=query(tx.INTENT_INFO_QUERY, "Vem skrev Röda rummet?", user="anna"),
                                     answer=answer("Strindberg")))
    found = await stub.Lookup(pb.LookupRequest(query=query(tx.INTENT_INFO_QUERY, "vem skrev röda rummet",
                                                           user="erik")))
    assert found.hit and found.answer.text == "Strindberg"


async def test_invalidate_by_user_and_intent(service: tuple[Stub, aioredis.Redis]) -> None:
    stub, _ = service
    cal = query(tx.INTENT_CALENDAR_LIST, "idag", user="inv", slots={"date": "2026-03-10"})
    mem = query(tx.INTENT_MEMORY_QUERY, "Vad heter min hund?", user="inv", embedding=vector(30))
    other = query(tx.INTENT_CALENDAR_LIST, "idag", user="inv2", slots={"date": "2026-03-10"})
    for q in (cal, mem, other):
        await stub.Store(pb.StoreRequest(query=q, answer=answer("x")))
    removed = await stub.Invalidate(pb.InvalidateRequest(user_id="inv", intent=tx.INTENT_CALENDAR_LIST))
    assert removed.removed == 1
    assert not (await stub.Lookup(pb.LookupRequest(query=cal))).hit
    assert (await stub.Lookup(pb.LookupRequest(query=mem))).hit
    assert (await stub.Invalidate(pb.InvalidateRequest(user_id="inv"))).removed == 1
    assert not (await stub.Lookup(pb.LookupRequest(query=mem))).hit
    assert (await stub.Lookup(pb.LookupRequest(query=other))).hit


async def test_invalidate_by_intent(service: tuple[Stub, aioredis.Redis]) -> None:
    stub, _ = service
    q = query(tx.INTENT_WEATHER_LOOKUP, "väder", slots={"city": "Kiruna", "date": "2026-03-10"})
    await stub.Store(pb.StoreRequest(query=q, answer=answer("snö")))
    assert (await stub.Invalidate(pb.InvalidateRequest(intent=tx.INTENT_WEATHER_LOOKUP))).removed >= 1
    assert not (await stub.Lookup(pb.LookupRequest(query=q))).hit
    error = await invalid(stub.Invalidate(pb.InvalidateRequest()))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_l3_remembers_a_failure_until_cleared(service: tuple[Stub, aioredis.Redis]) -> None:
    stub, _ = service
    q = query(tx.INTENT_INFO_QUERY, "Vem uppfann dynamiten?")
    failure = pb.FailureEntry(downstream="llm.planner", code=grpc.StatusCode.UNAVAILABLE.value[0], message="nere")
    stored = await stub.StoreFailure(pb.StoreFailureRequest(query=q, failure=failure))
    assert stored.outcome == pb.STORE_OUTCOME_STORED and stored.ttl.seconds == 5
    found = await stub.Lookup(pb.LookupRequest(query=q))
    assert found.hit and found.tier == types_pb2.CACHE_TIER_L3_NEGATIVE
    assert found.failure.downstream == "llm.planner" and found.failure.code == 14
    only_l1 = await stub.Lookup(pb.LookupRequest(query=q, tiers=[types_pb2.CACHE_TIER_L1_EXACT]))
    assert not only_l1.hit
    assert (await stub.ClearFailures(pb.ClearFailuresRequest(downstream="llm.planner"))).removed == 1
    assert not (await stub.Lookup(pb.LookupRequest(query=q))).hit


async def test_l3_ttl_per_error_class(service: tuple[Stub, aioredis.Redis]) -> None:
    stub, client = service
    q = query(tx.INTENT_INFO_QUERY, "Vem uppfann glödlampan?")
    failure = pb.FailureEntry(downstream="llm.planner", code=grpc.StatusCode.RESOURCE_EXHAUSTED.value[0])
    stored = await stub.StoreFailure(pb.StoreFailureRequest(query=q, failure=failure))
    assert stored.ttl.seconds == 2
    key = keys.l3_key("info.query", {}, analyse("Vem uppfann glödlampan?").key_form(), None, "v1")
    assert 0 < await client.pttl(key) <= 2000
    assert (await stub.ClearFailures(pb.ClearFailuresRequest())).removed >= 1


async def test_an_answer_beats_a_remembered_failure(service: tuple[Stub, aioredis.Redis]) -> None:
    stub, _ = service
    q = query(tx.INTENT_INFO_QUERY, "Vem målade Mona Lisa?")
    await stub.StoreFailure(pb.StoreFailureRequest(query=q, failure=pb.FailureEntry(downstream="llm", code=4)))
    await stub.Store(pb.StoreRequest(query=q, answer=answer("da Vinci")))
    assert (await stub.Lookup(pb.LookupRequest(query=q))).tier == types_pb2.CACHE_TIER_L1_EXACT


@pytest.mark.parametrize(
    "write",
    [
        pytest.param("string", id="string-under-l1-key"),
        pytest.param("foreign-hash", id="foreign-hash"),
        pytest.param("bad-timestamp", id="bad-timestamp"),
    ],
)
async def test_corrupt_data_is_a_counted_miss(service: tuple[Stub, aioredis.Redis], write: str) -> None:
    stub, client = service
    text = f"Vad kostar ett frimärke {write}?"
    q = query(tx.INTENT_INFO_QUERY, text)
    key = keys.l1_key("info.query", {}, analyse(text).key_form(), None, "v1")
    if write == "string":
        await client.set(key, "garbage")
    elif write == "foreign-hash":
        await client.hset(key, mapping={"foo": "bar"})
    else:
        await client.hset(key, mapping={"m": "alice-cache/1", "a": b"", "t": "yesterday"})
    before = (await stub.Stats(pb.StatsRequest())).corrupt_entries
    found = await stub.Lookup(pb.LookupRequest(query=q))
    assert not found.hit
    assert (await stub.Stats(pb.StatsRequest())).corrupt_entries == before + 1
    # A store over foreign data replaces it.
    await stub.Store(pb.StoreRequest(query=q, answer=answer("12 kr")))
    assert (await stub.Lookup(pb.LookupRequest(query=q))).hit


async def test_corrupt_vector_set_is_a_counted_miss(service: tuple[Stub, aioredis.Redis]) -> None:
    stub, client = service
    text = "Hur många ben har en tusenfoting?"
    from cache_svc.cache import store_buckets

    set_key = keys.l2_set_key("info.query", {}, None, "v1", "test-model", store_buckets(analyse(text))[0])
    await client.set(set_key, "not a vector set")
    before = (await stub.Stats(pb.StatsRequest())).corrupt_entries
    found = await stub.Lookup(pb.LookupRequest(query=query(tx.INTENT_INFO_QUERY, text, embedding=vector(40))))
    assert not found.hit
    assert (await stub.Stats(pb.StatsRequest())).corrupt_entries > before
    await client.delete(set_key)


@pytest.mark.parametrize(
    ("request_factory", "needle"),
    [
        pytest.param(lambda: pb.LookupRequest(query=query(tx.INTENT_UNSPECIFIED, "x")), "intent",
                     id="unspecified-intent"),
        pytest.param(lambda: pb.LookupRequest(query=query(99, "x")), "intent", id="unknown-intent"),
        pytest.param(lambda: pb.LookupRequest(query=query(tx.INTENT_INFO_QUERY, "x", embedding=[1.0] * 12)),
                     "dimensions", id="embedding-dims"),
        pytest.param(lambda: pb.LookupRequest(query=query(tx.INTENT_INFO_QUERY, "x" * 5000)), "characters",
                     id="long-text"),
        pytest.param(lambda: pb.LookupRequest(query=query(tx.INTENT_MEMORY_QUERY, "x", user="")), "user_id",
                     id="personal-without-user"),
    ],
)
async def test_bad_lookup_is_invalid_argument(service: tuple[Stub, aioredis.Redis],
                                              request_factory: Callable[[], pb.LookupRequest],
                                              needle: str) -> None:
    stub, _ = service
    error = await invalid(stub.Lookup(request_factory()))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and needle in (error.details() or "")


async def test_oversized_answer_is_invalid_argument(service: tuple[Stub, aioredis.Redis]) -> None:
    stub, _ = service
    error = await invalid(stub.Store(pb.StoreRequest(query=query(tx.INTENT_INFO_QUERY, "x"),
                                                     answer=answer("å" * 9000))))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "bytes" in (error.details() or "")


async def test_spans_carry_tier_similarity_and_guard(service: tuple[Stub, aioredis.Redis],
                                                     span_exporter: InMemorySpanExporter) -> None:
    stub, _ = service
    span_exporter.clear()
    await stub.Store(pb.StoreRequest(query=query(tx.INTENT_INFO_QUERY, "Hur hög är Eiffeltornet?",
                                                 embedding=vector(50)), answer=answer("330 m")))
    await stub.Lookup(pb.LookupRequest(query=query(tx.INTENT_INFO_QUERY, "Hur gammalt är Eiffeltornet?",
                                                   embedding=vector(51, 0.05, base=50))))
    spans = {s.name: s for s in span_exporter.get_finished_spans()}
    assert "cache.store" in spans and "cache.lookup.l1" in spans
    l2 = spans["cache.lookup.l2"].attributes or {}
    assert l2["alice.cache.tier"] == "miss" and l2["alice.cache.guard"] == "content"
    assert float(l2["alice.cache.similarity"]) > 0.9  # type: ignore[arg-type]
    assert any(s.attributes and s.attributes.get("db.system") == "redis" for s in span_exporter.get_finished_spans())


async def test_redis_down_gives_fast_misses_and_recovers(make_telemetry: Callable[[str], Telemetry]) -> None:
    redis_server = RedisServer().start()
    app, channel, stub = await start(redis_server.url, make_telemetry("alice-cache-outage"),
                                     CACHE_REDIS_BACKOFF_MIN_S="0.05", CACHE_REDIS_BACKOFF_MAX_S="0.2",
                                     CACHE_REDIS_HEALTH_INTERVAL_S="0.05")
    health = health_pb2_grpc.HealthStub(channel)
    try:
        q = query(tx.INTENT_WEATHER_LOOKUP, "väder", slots=WEATHER)
        assert (await stub.Store(pb.StoreRequest(query=q, answer=answer("Sol")))).outcome == pb.STORE_OUTCOME_STORED
        redis_server.stop()
        started = time.monotonic()
        for _ in range(20):
            assert not (await stub.Lookup(pb.LookupRequest(query=q))).hit
        # A generous bound: the point is that lookups do not wait on the dead Redis (benchmarks time them).
        assert time.monotonic() - started < 2.0
        dropped = await stub.Store(pb.StoreRequest(query=q, answer=answer("Regn")))
        assert dropped.outcome == pb.STORE_OUTCOME_DROPPED_UNAVAILABLE
        stats = await stub.Stats(pb.StatsRequest())
        assert not stats.redis_up and stats.dropped >= 1
        status = await health.Check(health_pb2.HealthCheckRequest(service=""))
        assert status.status == health_pb2.HealthCheckResponse.SERVING
        redis_server.start()
        for _ in range(100):
            if (await stub.Stats(pb.StatsRequest())).redis_up:
                break
            await asyncio.sleep(0.05)
        assert (await stub.Stats(pb.StatsRequest())).redis_up
        assert (await stub.Store(pb.StoreRequest(query=q, answer=answer("Sol")))).outcome == pb.STORE_OUTCOME_STORED
        assert (await stub.Lookup(pb.LookupRequest(query=q))).hit
    finally:
        await stop(app, channel)
        redis_server.close()


async def test_invalidate_deletes_while_a_past_stall_still_marks_redis_down(
        make_telemetry: Callable[[str], Telemetry]) -> None:
    """One slow command (a loaded machine) marks Redis down for a back-off although Redis answers again; a
    deletion has no fallback, so Invalidate (Forget's cache step) must still delete then, not fail fast."""
    redis_server = RedisServer().start()
    app, channel, stub = await start(redis_server.url, make_telemetry("alice-cache-stale-down"),
                                     CACHE_REDIS_BACKOFF_MIN_S="60", CACHE_REDIS_BACKOFF_MAX_S="60")
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        mine = query(tx.INTENT_CALENDAR_LIST, "idag", user="stale", slots={"date": "2026-03-10"})
        assert (await stub.Store(pb.StoreRequest(query=mine, answer=answer("x")))).outcome == pb.STORE_OUTCOME_STORED
        # A real stall: writes wait past the socket timeout, the store marks Redis down (for 60 s here).
        await client.client_pause(10_000, all=False)  # writes only; reads and UNPAUSE go on
        try:
            other = query(tx.INTENT_CALENDAR_LIST, "idag", user="bystander", slots={"date": "2026-03-10"})
            stalled = await stub.Store(pb.StoreRequest(query=other, answer=answer("y")))
        finally:
            await client.client_unpause()
        assert stalled.outcome == pb.STORE_OUTCOME_DROPPED_UNAVAILABLE
        assert not (await stub.Stats(pb.StatsRequest())).redis_up  # stale: Redis answers, the mark remains

        removed = await stub.Invalidate(pb.InvalidateRequest(user_id="stale"), timeout=5)

        assert removed.removed == 1
        assert not await client.exists(keys.user_index("stale"))
        assert [k async for k in client.scan_iter(match="*stale*")] == []
        assert (await stub.Stats(pb.StatsRequest())).redis_up  # the deletion reached Redis: the mark is gone
    finally:
        await client.aclose()
        await stop(app, channel)
        redis_server.close()


async def test_invalidate_is_unavailable_while_redis_is_really_down(
        make_telemetry: Callable[[str], Telemetry]) -> None:
    redis_server = RedisServer().start()
    app, channel, stub = await start(redis_server.url, make_telemetry("alice-cache-down-invalidate"))
    try:
        redis_server.stop()
        error = await invalid(stub.Invalidate(pb.InvalidateRequest(user_id="gone"), timeout=5))
        assert error.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await stop(app, channel)
        redis_server.close()


async def test_semantic_entries_survive_a_redis_restart(make_telemetry: Callable[[str], Telemetry]) -> None:
    """The local Redis keeps an append-only file (as in k8s); replaying our VADDs must not crash it at start.

    Redis 8.2.3 aborts when it replays `VADD ... CAS` from the file (a client that may not block), which the
    store used to send; this restarts Redis after an L2 store and asks the paraphrase again.
    """
    redis_server = RedisServer().start()
    app, channel, stub = await start(redis_server.url, make_telemetry("alice-cache-restart"),
                                     CACHE_REDIS_BACKOFF_MIN_S="0.05", CACHE_REDIS_BACKOFF_MAX_S="0.2",
                                     CACHE_REDIS_HEALTH_INTERVAL_S="0.05")
    try:
        await stub.Store(pb.StoreRequest(query=query(tx.INTENT_INFO_QUERY, "Vad är huvudstaden i Peru?",
                                                     embedding=vector(1)), answer=answer("Lima")))
        for seed in range(10, 40):  # more entries in the same buckets: inserts into a populated HNSW graph
            await stub.Store(pb.StoreRequest(query=query(tx.INTENT_INFO_QUERY, f"Vad är huvudstaden i land {seed}?",
                                                         embedding=vector(seed)), answer=answer(f"Stad {seed}")))
        await asyncio.sleep(1.2)  # appendfsync everysec
        redis_server.stop()
        redis_server.start()
        for _ in range(100):
            if (await stub.Stats(pb.StatsRequest())).redis_up:
                break
            await asyncio.sleep(0.05)
        paraphrase = await stub.Lookup(pb.LookupRequest(query=query(
            tx.INTENT_INFO_QUERY, "vilken stad är huvudstad i Peru", embedding=vector(2, 0.05, base=1))))
        assert paraphrase.hit and paraphrase.tier == types_pb2.CACHE_TIER_L2_SEMANTIC
        assert paraphrase.answer.text == "Lima"
    finally:
        await stop(app, channel)
        redis_server.close()


def _alias(text: str, user: str, day: int = 10) -> pb.LookupRequest:
    q = pb.CacheQuery(text=text, user_id=user, answer_version="v1",
                      reference_date=types_pb2.LocalDate(year=2026, month=3, day=day))
    return pb.LookupRequest(query=q, tiers=[types_pb2.CACHE_TIER_L1_EXACT])


async def test_text_alias_finds_the_entry_before_the_intent_is_known(service: tuple[Stub, aioredis.Redis]) -> None:
    stub, _ = service
    stored = query(tx.INTENT_WEATHER_LOOKUP, "Hur blir vädret i Visby imorgon?", user="anna",
                   slots={"city": "Visby", "date": "2026-03-11"})
    stored.reference_date.CopyFrom(types_pb2.LocalDate(year=2026, month=3, day=10))
    await stub.Store(pb.StoreRequest(query=stored, answer=answer("Sol i Visby")))
    same = await stub.Lookup(_alias("hur blir vädret i visby imorgon", user="erik"))
    assert same.hit and same.tier == types_pb2.CACHE_TIER_L1_EXACT and same.answer.text == "Sol i Visby"
    next_day = await stub.Lookup(_alias("hur blir vädret i visby imorgon", user="erik", day=11))
    assert not next_day.hit  # "imorgon" is another day then


async def test_personal_alias_is_only_found_by_its_user(service: tuple[Stub, aioredis.Redis]) -> None:
    stub, _ = service
    stored = query(tx.INTENT_CALENDAR_LIST, "vad har jag på torsdag", user="anna", slots={"date": "2026-03-12"})
    stored.reference_date.CopyFrom(types_pb2.LocalDate(year=2026, month=3, day=10))
    await stub.Store(pb.StoreRequest(query=stored, answer=answer("Tandläkaren kl 9")))
    assert (await stub.Lookup(_alias("vad har jag på torsdag", user="anna"))).hit
    assert not (await stub.Lookup(_alias("vad har jag på torsdag", user="erik"))).hit
    await stub.Invalidate(pb.InvalidateRequest(user_id="anna"))
    assert not (await stub.Lookup(_alias("vad har jag på torsdag", user="anna"))).hit


async def test_alias_lookup_consults_only_l1(service: tuple[Stub, aioredis.Redis]) -> None:
    stub, _ = service
    request = _alias("vad är klockan", user="anna")
    request.tiers.append(types_pb2.CACHE_TIER_L2_SEMANTIC)
    error = await invalid(stub.Lookup(request))
    assert "alias" in (error.details() or "")
