"""Redis data access for the cache (redis.asyncio): pooled, short timeouts, a local "Redis down" state, no KEYS."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import redis.asyncio as aioredis
from opentelemetry import trace
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from alice.runtime.redis_tracing import TracedRedis, traced
from cache_svc.config import RedisSettings

log = logging.getLogger(__name__)

T = TypeVar("T")

Fields = dict[bytes, bytes]
"""A Redis hash as returned by HGETALL."""

# Answers of one request (L1 and L3 reads, a store) are a handful of commands: one round trip each.
_SCAN_BATCH = 500
_DELETE_ATTEMPTS = 3
"""Sweeps one deletion tries before Redis counts as unavailable (each command keeps the socket timeout)."""
_DELETE_RETRY_PAUSE_S = 0.05
_REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, TimeoutError, OSError)
"""What says Redis did not answer (as opposed to an answer we cannot use)."""


class StoreUnavailable(Exception):
    """Redis did not answer (or is known to be down and in back-off); the caller degrades, never waits."""


class CorruptData(Exception):
    """A key of ours holds something we did not write (wrong type or fields)."""


@dataclass(frozen=True)
class Candidate:
    """An L2 neighbour: the vector set it lives in, its element (the entry key), cosine and attributes."""

    set_key: str
    element: str
    similarity: float
    attributes: str | None


@dataclass(frozen=True)
class VectorWrite:
    """Add `element` with `vector` (FP32 bytes) and JSON `attributes` to the set `set_key`."""

    set_key: str
    element: str
    vector: bytes
    attributes: str


class RedisStore:
    """The cache's only door to Redis.

    Every command has the pool's socket timeout. After a connection error or timeout the store is "down":
    calls fail at once with StoreUnavailable until a back-off delay has passed, then one call probes again.
    Deletions are the exception: they have no fallback, so they always try (see `delete_indexed`).
    `monitor()` pings in the background so `up` recovers without traffic. With a `tracer_provider`, every command and
    pipeline inside a trace is a CLIENT span (`alice.runtime.redis_tracing`).
    """

    def __init__(self, settings: RedisSettings, client: aioredis.Redis | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 tracer_provider: trace.TracerProvider | None = None) -> None:
        self._settings = settings
        self._clock = clock
        if client is None:
            # A blocking pool: a burst beyond max_connections waits (briefly) for a free connection instead of
            # failing with "Too many connections", which would look like Redis being down.
            pool = aioredis.BlockingConnectionPool.from_url(
                settings.url,
                max_connections=settings.max_connections,
                timeout=settings.socket_timeout_s,
                socket_timeout=settings.socket_timeout_s,
                socket_connect_timeout=settings.connect_timeout_s,
                # Never retry inside redis-py: the down state and the router's fallback handle a dead Redis.
                retry=Retry(NoBackoff(), 0),
                health_check_interval=0,
            )
            client = TracedRedis.from_pool(pool)
            if tracer_provider is not None:
                traced(client, tracer_provider)
        self._client = client
        self._up = True
        self._retry_at = 0.0
        self._backoff_s = settings.backoff_min_s
        self.on_state_change: Callable[[bool], None] | None = None

    @property
    def up(self) -> bool:
        return self._up

    @property
    def client(self) -> aioredis.Redis:
        return self._client

    async def aclose(self) -> None:
        await self._client.aclose()

    def _mark_down(self, error: BaseException) -> None:
        now = self._clock()
        if self._up:
            log.warning("redis unavailable (%s); answering misses, retrying in %.2f s", error, self._backoff_s)
            self._up = False
            if self.on_state_change:
                self.on_state_change(False)
        else:
            self._backoff_s = min(self._backoff_s * 2, self._settings.backoff_max_s)
        self._retry_at = now + self._backoff_s * random.uniform(0.8, 1.2)

    def _mark_up(self) -> None:
        if not self._up:
            log.info("redis is back")
            self._up = True
            if self.on_state_change:
                self.on_state_change(True)
        self._backoff_s = self._settings.backoff_min_s

    async def _run(self, operation: Callable[[], Awaitable[T]]) -> T:
        if not self._up and self._clock() < self._retry_at:
            raise StoreUnavailable("redis is down (backing off)")
        # Belt and braces over the socket timeout: a connect plus a read can take two timeouts.
        budget = self._settings.connect_timeout_s + self._settings.socket_timeout_s * 2
        try:
            async with asyncio.timeout(budget):
                result = await operation()
        except _REDIS_DOWN as error:
            self._mark_down(error)
            raise StoreUnavailable(str(error) or type(error).__name__) from error
        self._mark_up()
        return result

    async def ping(self) -> bool:
        """True when Redis answers now (also updates the down state)."""
        try:
            await self._run(self._client.ping)
        except StoreUnavailable:
            return False
        return True

    async def monitor(self) -> None:
        """Ping forever: every interval while up, at the back-off schedule while down."""
        while True:
            if self._up:
                await asyncio.sleep(self._settings.health_interval_s)
            else:
                await asyncio.sleep(max(0.01, self._retry_at - self._clock()))
            await self.ping()

    # --- reads -------------------------------------------------------------------------------------------

    async def read_pair(self, first: str, second: str | None) -> tuple[Fields | None, Fields | None]:
        """HGETALL of two keys in one round trip (L1 entry and L3 failure); CorruptData when one is foreign."""

        async def run() -> list[Any]:
            pipe = self._client.pipeline(transaction=False)
            pipe.hgetall(first)
            if second is not None:
                pipe.hgetall(second)
            return list(await pipe.execute(raise_on_error=False))

        results = await self._run(run)
        return _fields(results[0]), (_fields(results[1]) if second is not None else None)

    async def read(self, key: str) -> Fields | None:
        result = await self._run(lambda: self._pipe_one(key))
        return _fields(result)

    async def _pipe_one(self, key: str) -> Any:
        pipe = self._client.pipeline(transaction=False)
        pipe.hgetall(key)
        return (await pipe.execute(raise_on_error=False))[0]

    async def similar(self, set_keys: Sequence[str], vector: bytes, count: int) -> tuple[list[Candidate], int]:
        """Nearest elements over several small vector sets (one round trip); also the number of foreign sets."""
        if not set_keys:
            return [], 0

        async def run() -> list[Any]:
            pipe = self._client.pipeline(transaction=False)
            for key in set_keys:
                pipe.execute_command("VSIM", key, "FP32", vector, "WITHSCORES", "WITHATTRIBS", "COUNT", count)
            return list(await pipe.execute(raise_on_error=False))

        results = await self._run(run)
        candidates: list[Candidate] = []
        corrupt = 0
        for key, result in zip(set_keys, results, strict=True):
            if isinstance(result, ResponseError):
                if "WRONGTYPE" in str(result) or "dimension" in str(result).lower():
                    corrupt += 1
                    continue
                raise result
            if isinstance(result, Exception):
                raise result
            try:
                candidates.extend(_parse_vsim(key, result))
            except CorruptData:
                corrupt += 1
        candidates.sort(key=lambda c: c.similarity, reverse=True)
        return candidates[: count * 2], corrupt

    # --- writes ------------------------------------------------------------------------------------------

    async def write_entry(self, key: str, fields: Mapping[str, bytes | str | int], ttl_s: float,
                          indexes: Iterable[str], index_ttl_s: float, vectors: Sequence[VectorWrite] = ()) -> None:
        """Replace the hash at `key` with a TTL, add it to index sets, and add its vectors (one round trip)."""

        async def run() -> list[Any]:
            pipe = self._client.pipeline(transaction=False)
            pipe.delete(key)
            pipe.hset(key, mapping=cast("Mapping[Any, Any]", fields))
            pipe.pexpire(key, max(1, int(ttl_s * 1000)))
            for index in indexes:
                pipe.sadd(index, key)
                pipe.pexpire(index, int(index_ttl_s * 1000))
            for write in vectors:
                # No CAS: Redis 8.2.3 replays a VADD ... CAS from the append-only file on a client that may not
                # block and aborts at start (aof.c:1656 assertion, reproduced here), so a durable Redis could
                # not restart. The buckets hold at most a few hundred vectors; the insert is cheap in-line.
                pipe.execute_command("VADD", write.set_key, "FP32", write.vector, write.element,
                                     "SETATTR", write.attributes)
                # The set lives as long as its newest entry; older elements are pruned when found expired.
                pipe.pexpire(write.set_key, max(1, int(ttl_s * 1000)))
                for index in indexes:
                    pipe.sadd(index, write.set_key)
            return list(await pipe.execute(raise_on_error=False))

        results = await self._run(run)
        errors = [r for r in results if isinstance(r, Exception)]
        if errors:
            raise CorruptData(f"write to {key} failed: {errors[0]}")

    async def set_sizes(self, set_keys: Sequence[str]) -> list[int]:
        """VCARD of several vector sets in one round trip (0 for a missing or foreign key)."""

        async def run() -> list[Any]:
            pipe = self._client.pipeline(transaction=False)
            for key in set_keys:
                pipe.execute_command("VCARD", key)
            return list(await pipe.execute(raise_on_error=False))

        return [r if isinstance(r, int) else 0 for r in await self._run(run)]

    async def remove_element(self, set_key: str, element: str) -> None:
        """Drop a vector-set element whose entry expired or is foreign."""
        await self._run(lambda: self._client.execute_command("VREM", set_key, element))  # type: ignore[no-untyped-call,unused-ignore]

    async def delete(self, key: str) -> None:
        await self._run(lambda: self._client.delete(key))

    async def delete_indexed(self, indexes: Sequence[str], count_prefix: str, *, timeout_s: float) -> int:
        """Delete every key listed in the index sets and the sets; returns how many deleted keys contain
        `count_prefix` (entries, not the vector sets or indexes around them).

        A deletion has no fallback, so unlike reads and stores it ignores the "down" back-off (one slow command
        on a loaded machine leaves that mark while Redis answers again) and repeats a sweep that hit a timeout
        or connection error, within `timeout_s`: deleting is idempotent. StoreUnavailable means no attempt got
        through; some keys may be gone by then, and a repeated call deletes the rest.
        """
        removed = 0

        async def sweep() -> None:
            nonlocal removed
            for index in indexes:
                cursor = 0
                while True:
                    cursor, members = await self._client.sscan(index, cursor=cursor, count=_SCAN_BATCH)
                    if members:
                        pipe = self._client.pipeline(transaction=False)
                        names = [m.decode() if isinstance(m, bytes) else str(m) for m in members]
                        for name in names:
                            pipe.delete(name)
                        deleted = await pipe.execute(raise_on_error=False)
                        removed += sum(1 for name, d in zip(names, deleted, strict=True)
                                       if d == 1 and count_prefix in name)
                    if cursor == 0:
                        break
                await self._client.delete(index)

        try:
            async with asyncio.timeout(timeout_s):
                for attempt in range(1, _DELETE_ATTEMPTS + 1):
                    try:
                        await sweep()
                        break
                    except _REDIS_DOWN:
                        if attempt == _DELETE_ATTEMPTS:
                            raise
                        await asyncio.sleep(_DELETE_RETRY_PAUSE_S)
        except _REDIS_DOWN as error:
            self._mark_down(error)
            raise StoreUnavailable(str(error) or type(error).__name__) from error
        except ResponseError as error:
            raise CorruptData(str(error)) from error
        self._mark_up()
        return removed

    async def add_to_set(self, key: str, member: str) -> None:
        await self._run(lambda: self._client.sadd(key, member))

    async def members(self, key: str) -> list[str]:
        raw = await self._run(lambda: self._client.smembers(key))
        return sorted(m.decode() if isinstance(m, bytes) else str(m) for m in raw)


def _fields(result: Any) -> Fields | None:
    """HGETALL result -> fields, None for a missing key; CorruptData for a key of another type."""
    if isinstance(result, ResponseError):
        raise CorruptData(str(result))
    if isinstance(result, RedisError):
        raise result
    if isinstance(result, Exception):
        raise result
    if not result:
        return None
    if not isinstance(result, dict):
        raise CorruptData(f"unexpected HGETALL reply {type(result).__name__}")
    return {_b(k): _b(v) for k, v in result.items()}


def _b(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def _parse_vsim(set_key: str, result: Any) -> list[Candidate]:
    """VSIM WITHSCORES WITHATTRIBS reply (RESP2 flat list or the client's parsed dict) -> candidates."""
    if result is None:
        return []
    items: list[tuple[Any, Any, Any]] = []
    if isinstance(result, dict):
        for element, value in result.items():
            if isinstance(value, list | tuple) and len(value) == 2:
                items.append((element, value[0], value[1]))
            else:
                items.append((element, value, None))
    elif isinstance(result, list):
        if len(result) % 3:
            raise CorruptData("VSIM reply length is not a multiple of 3")
        items = [(result[i], result[i + 1], result[i + 2]) for i in range(0, len(result), 3)]
    else:
        raise CorruptData(f"unexpected VSIM reply {type(result).__name__}")
    candidates = []
    for element, score, attributes in items:
        try:
            # Vector Sets score is (1 + cosine) / 2.
            similarity = 2.0 * float(score) - 1.0
        except (TypeError, ValueError):
            raise CorruptData(f"VSIM score {score!r} is not a number") from None
        name = element.decode() if isinstance(element, bytes) else str(element)
        attrs = attributes.decode() if isinstance(attributes, bytes) else attributes
        candidates.append(Candidate(set_key, name, similarity, attrs if isinstance(attrs, str) else None))
    return candidates
