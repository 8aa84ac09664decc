"""Redis stopped and started again under load, with real processes: Redis, NLU, cache, router, weather replay.

What "answers continue" means here: every request gets an OK reply before its deadline (no error status);
requests that need no stored user data (weather, clock, greetings) get valid answers throughout; requests that
read a user's stored data (calendar, memory) get the router's honest "cannot reach your data" reply marked
TOOL_UNAVAILABLE while Redis is down. The cache cannot hit while Redis is down (it answers fast misses and
drops stores), and serves hits again once Redis is back; what users stored before the stop is still there
(append-only file, as in Kubernetes).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import pytest
from faultload import ask, run_with_faults, standard_items

from alice.cache.v1 import cache_service_pb2 as cache_pb
from alice.cache.v1 import cache_service_pb2_grpc as cache_grpc
from alice.local.mesh import LocalMesh
from alice.local.redis_server import free_port
from alice.router.v1 import router_service_pb2 as pb
from alice.runtime.auth import DevCredentials
from alice.taxonomy import CacheTier
from router_svc import messages

PERSONAL = ("calendar.list", "memory.query")
SHARED = ("weather.lookup", "time.now", "greeting.hello")


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMesh]:
    # No LLM: these intents never need one (the router's LLM routes are the slow-LLM test's subject).
    with LocalMesh(services=("nlu", "cache", "router"), env={"LLM_ADDR": f"127.0.0.1:{free_port()}"},
                   auth_dir=tmp_path_factory.mktemp("credentials"), replay_weather=True, quiet=True,
                   start_timeout_s=120) as started:
        yield started


def _redis_up(mesh: LocalMesh) -> bool:
    with grpc.insecure_channel(mesh.address("cache")) as channel:
        stats: cache_pb.StatsResponse = cache_grpc.CacheServiceStub(channel).Stats(cache_pb.StatsRequest(), timeout=5)
    return stats.redis_up


def test_redis_stop_and_start_under_load(mesh: LocalMesh) -> None:
    credentials = mesh.credentials
    assert isinstance(credentials, DevCredentials)
    items = standard_items((*SHARED, *PERSONAL), per_intent=12)
    for item in items[:20]:  # warm the cache, so "before" has hits to lose
        ask(mesh, credentials, item.text, item.user)
    booked = ask(mesh, credentials, "boka möte med Zlatan imorgon kl 16", "u23")
    assert "Zlatan" in booked.answer and pb.DEGRADATION_TOOL_UNAVAILABLE not in booked.degradations, booked

    run = run_with_faults(mesh, credentials, items, rate=8, duration_s=12, faults="stop-redis@3s,start-redis@7s")

    assert [entry["event"] for entry in run.schedule.log] == ["stop-redis@3s", "start-redis@7s"]
    assert run.summary("before")["hits_by_tier"].get("l1", 0) > 0
    for phase in ("before", "during", "after"):
        summary = run.summary(phase)
        assert summary["n"] > 0, phase
        assert summary["errors_by_code"] == {}, phase  # no INTERNAL, no UNAVAILABLE, no DEADLINE_EXCEEDED
        assert summary["past_deadline"] == 0, phase
    for outcome in run.outcomes:
        if outcome.expected_intent in SHARED:
            assert outcome.valid, outcome  # nothing that needs no stored user data stops being answered

    stopped, started = run.schedule.log[0]["finished_s"], run.schedule.log[1]["started_s"]
    outage = [o for o in run.outcomes if stopped <= o.sent_s and o.sent_s + o.latency_ms / 1000 < started]
    assert outage and not any(o.hit for o in outage)  # the cache is really gone: no hits without Redis
    personal = [o for o in outage if o.expected_intent in PERSONAL]
    assert personal, "the outage saw no personal requests"
    for outcome in personal:
        assert outcome.answer == messages.TOOL_STORAGE_UNAVAILABLE, outcome
        assert "TOOL_UNAVAILABLE" in outcome.degradations, outcome

    # Back again: the cache's monitor notices Redis, the cache stores and hits, the tools read user data.
    deadline = time.monotonic() + 20
    while not _redis_up(mesh):
        assert time.monotonic() < deadline, "the cache did not see Redis come back"
        time.sleep(0.2)
    question = next(item for item in items if item.intent == "weather.lookup")
    ask(mesh, credentials, question.text, question.user)
    again = ask(mesh, credentials, question.text, question.user)
    assert again.cache_tier == CacheTier.CACHE_TIER_L1_EXACT
    memory = next(item for item in items if item.intent == "memory.query")
    assert ask(mesh, credentials, memory.text, memory.user).answer != messages.TOOL_STORAGE_UNAVAILABLE
    # No data lost: the draft booked before the stop is still in the user's calendar.
    assert "Zlatan" in ask(mesh, credentials, "vad har jag inbokat imorgon", "u23").answer
