"""A short Redis restart with real processes: personal requests sent meanwhile still get real answers.

The router's Redis client retries a refused connection with a short jittered back-off inside the tool budget
(`router_svc.tools.base.storage_retry`), so a restart shorter than that budget costs the requests that meet it
latency, not their answer. What was stored before is still there afterwards (append-only file), and what was
booked while Redis restarted is stored exactly once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import pytest
import redis.asyncio as aioredis
from faultload import NOW, ask

from alice.cli.ask import build_request
from alice.local.mesh import LocalMesh
from alice.local.redis_server import free_port
from alice.router.v1 import router_service_pb2 as pb
from alice.router.v1 import router_service_pb2_grpc as pb_grpc
from alice.runtime.auth import DevCredentials, bearer_metadata
from router_svc import messages
from router_svc.tools import user_key

# The tools ride out an outage for at most their budget: the default 1 s covers about 0.8 s of outage. This
# restart (stop, 1 s, start) keeps Redis away for about 1.3 s, so the router gets the budget such a deployment sets.
TOOL_BUDGET_S = 2.5
RESTART_GAP_S = 1.0
SEND_EVERY_S = 0.05
LIST = "Vad har jag i kalendern imorgon?"
BOOK = "Boka möte med Anna imorgon kl 14"
OWNER = "u41"
"""Books before the restart and reads the calendar during it; every other sender books once, during it."""


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMesh]:
    # No LLM: calendar intents never need one.
    env = {"LLM_ADDR": f"127.0.0.1:{free_port()}", "TOOL_TIMEOUT_S": str(TOOL_BUDGET_S)}
    with LocalMesh(
        services=("nlu", "cache", "router"),
        env=env,
        auth_dir=tmp_path_factory.mktemp("credentials"),
        quiet=True,
        start_timeout_s=120,
    ) as started:
        yield started


@dataclass(frozen=True)
class Restart:
    down_s: float
    """When redis-server had exited (time.monotonic)."""
    up_s: float
    """When it answered PING again."""


@dataclass(frozen=True)
class Sent:
    user: str
    text: str
    sent_s: float
    reply: pb.AskResponse

    @property
    def degradations(self) -> list[str]:
        return [pb.Degradation.Name(d).removeprefix("DEGRADATION_") for d in self.reply.degradations]


def restart_redis(mesh: LocalMesh) -> Restart:
    assert mesh.redis is not None
    mesh.redis.stop()
    down_s = time.monotonic()
    time.sleep(RESTART_GAP_S)
    mesh.redis.start()
    return Restart(down_s, time.monotonic())


async def ask_through_restart(mesh: LocalMesh, credentials: DevCredentials) -> tuple[list[Sent], Restart]:
    """Alternate calendar reads by OWNER and bookings by new users every 50 ms, from shortly before Redis stops
    until shortly after it is back."""
    async with grpc.aio.insecure_channel(mesh.address("router")) as channel:
        stub = pb_grpc.RouterServiceStub(channel)

        async def one(n: int) -> Sent:
            user, text = (OWNER, LIST) if n % 2 == 0 else (f"r{n:03d}", BOOK)
            sent_s = time.monotonic()
            reply = await stub.Ask(
                build_request(text, user, now=NOW), timeout=5.0, metadata=bearer_metadata(credentials.bearer_for(user))
            )
            return Sent(user, text, sent_s, reply)

        async def restart_soon() -> Restart:
            await asyncio.sleep(0.3)
            return await asyncio.to_thread(restart_redis, mesh)

        restart = asyncio.create_task(restart_soon())
        calls: list[asyncio.Task[Sent]] = []
        stop_at: float | None = None
        while stop_at is None or time.monotonic() < stop_at:
            calls.append(asyncio.create_task(one(len(calls))))
            await asyncio.sleep(SEND_EVERY_S)
            if stop_at is None and restart.done():
                stop_at = time.monotonic() + 0.3
        return list(await asyncio.gather(*calls)), await restart


async def test_a_short_redis_restart_fails_no_personal_request(mesh: LocalMesh) -> None:
    credentials = mesh.credentials
    assert isinstance(credentials, DevCredentials)
    assert "Anna" in ask(mesh, credentials, BOOK, OWNER).answer
    assert "Anna" in ask(mesh, credentials, LIST, OWNER).answer

    sent, restart = await ask_through_restart(mesh, credentials)

    outage = [s for s in sent if restart.down_s <= s.sent_s < restart.up_s]
    assert {s.text for s in outage} == {LIST, BOOK}, "no read or no booking was sent while Redis was down"
    for s in sent:  # every call returned OK before its deadline (an error status would have raised)
        assert "TOOL_UNAVAILABLE" not in s.degradations, s
        assert s.reply.answer != messages.TOOL_STORAGE_UNAVAILABLE, s
        assert "Anna" in s.reply.answer, s  # the listing shows the earlier booking; a booking names Anna

    # Kept across the restart, and a booking retried after a lost connection is stored once.
    storage = aioredis.Redis.from_url(mesh.redis_url, decode_responses=True)
    try:
        for user in sorted({OWNER, *(s.user for s in sent)}):
            entries = await storage.hvals(user_key(user, "cal"))
            assert len(entries) == 1 and "Anna" in entries[0], (user, entries)
            assert await storage.zcard(user_key(user, "cal:start")) == 1, user
    finally:
        await storage.aclose()
