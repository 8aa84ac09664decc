"""A booking whose cache invalidation fails, with real processes: the stale calendar answer is not served, and the
router deletes it in the background once the cache's Redis takes writes again.

The cache has a Redis of its own here (the tools keep the mesh's), so a write stall (`CLIENT PAUSE ... WRITE`)
hits only the cache: the booking is stored, its invalidation fails, and the cache still reads (serves) the
calendar answer from before the booking.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import pytest
import redis
from faultload import ask

from alice.cache.v1 import cache_service_pb2 as cache_pb
from alice.cache.v1 import cache_service_pb2_grpc as cache_grpc
from alice.common.v1 import types_pb2
from alice.local.mesh import LocalMesh
from alice.local.redis_server import RedisServer, free_port
from alice.router.v1 import router_service_pb2 as pb
from alice.runtime.auth import DevCredentials
from alice.taxonomy import CacheTier
from cache_svc import keys

USER = "u57"
LIST = "Vad har jag i kalendern imorgon?"
BOOK_ANNA = "Boka möte med Anna imorgon kl 14"
BOOK_BERTIL = "Boka möte med Bertil imorgon kl 16"


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalMesh, RedisServer]]:
    cache_redis = RedisServer().start()
    # No LLM: calendar intents never need one. A short "Redis down" back-off in the cache: after a stalled
    # write it reads again within a few ms, as it does on a loaded machine.
    env = {"LLM_ADDR": f"127.0.0.1:{free_port()}", "CACHE_REDIS_BACKOFF_MIN_S": "0.05",
           "CACHE_REDIS_BACKOFF_MAX_S": "0.2"}
    try:
        with LocalMesh(services=("nlu", "cache", "router"), env=env, auth_dir=tmp_path_factory.mktemp("credentials"),
                       quiet=True, start_timeout_s=120) as started:
            started.restart_service("cache", extra_env={"REDIS_URL": cache_redis.url})
            yield started, cache_redis
    finally:
        cache_redis.close()


def _stale_alias_hit(mesh: LocalMesh) -> cache_pb.LookupResponse:
    """The cache's own answer to the user's calendar question as the router's text-alias lookup asks it."""
    query = cache_pb.CacheQuery(text=LIST, user_id=USER, answer_version="v1",
                                reference_date=types_pb2.LocalDate(year=2026, month=3, day=10))
    with grpc.insecure_channel(mesh.address("cache")) as channel:
        reply: cache_pb.LookupResponse = cache_grpc.CacheServiceStub(channel).Lookup(
            cache_pb.LookupRequest(query=query, tiers=[CacheTier.CACHE_TIER_L1_EXACT]), timeout=5)
    return reply


def _cached_calendar_keys(storage: redis.Redis) -> list[bytes]:
    return list(storage.scan_iter(match=f"{keys.PREFIX}:{{u:{USER}}}:l1*", count=1000))


def test_a_failed_invalidation_serves_no_stale_answer_and_is_retried(
        mesh: tuple[LocalMesh, RedisServer]) -> None:
    local, cache_redis = mesh
    credentials = local.credentials
    assert isinstance(credentials, DevCredentials)
    deadline = time.monotonic() + 10
    while pb.DEGRADATION_CACHE_BYPASSED in ask(local, credentials, "hej", USER).degradations:
        assert time.monotonic() < deadline, "the router never reached the restarted cache"
        time.sleep(0.1)

    assert "Anna" in ask(local, credentials, BOOK_ANNA, USER).answer
    assert "Anna" in ask(local, credentials, LIST, USER).answer
    cached = ask(local, credentials, LIST, USER)
    assert cached.cache_tier == CacheTier.CACHE_TIER_L1_EXACT and "Anna" in cached.answer

    storage = redis.Redis.from_url(cache_redis.url)
    try:
        storage.client_pause(10_000, all=False)  # writes only: the cache still reads its entries
        try:
            booked = ask(local, credentials, BOOK_BERTIL, USER)
            assert "Bertil" in booked.answer and pb.DEGRADATION_TOOL_UNAVAILABLE not in booked.degradations, booked
            deadline = time.monotonic() + 5
            while not (stale := _stale_alias_hit(local)).hit:  # the cache marks Redis down briefly after a stall
                assert time.monotonic() < deadline, "the cache never served its entry again"
                time.sleep(0.02)
            assert "Anna" in stale.answer.text and "Bertil" not in stale.answer.text  # stale, and served

            fresh = ask(local, credentials, LIST, USER)

            assert fresh.cache_tier == CacheTier.CACHE_TIER_UNSPECIFIED, fresh
            assert "Anna" in fresh.answer and "Bertil" in fresh.answer, fresh
            assert _cached_calendar_keys(storage), "the stale entry is gone already: nothing was bypassed"
        finally:
            storage.client_unpause()

        # Redis takes writes again: the router's background retry deletes the stale entry.
        deadline = time.monotonic() + 15
        while _cached_calendar_keys(storage):
            assert time.monotonic() < deadline, "the invalidation was not retried"
            time.sleep(0.1)
    finally:
        storage.close()
    assert "Bertil" in ask(local, credentials, LIST, USER).answer
    again = ask(local, credentials, LIST, USER)  # cached again once the invalidation went through
    assert again.cache_tier == CacheTier.CACHE_TIER_L1_EXACT and "Bertil" in again.answer
