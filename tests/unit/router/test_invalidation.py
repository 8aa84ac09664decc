"""PendingInvalidations: background retry of a failed cache invalidation, with a fake clock and a fake cache."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint

from router_svc.config import InvalidationRetry
from router_svc.downstream import DownstreamError
from router_svc.invalidation import PendingInvalidations

SETTINGS = InvalidationRetry(first_delay_s=0.5, max_delay_s=8.0, give_up_after_s=60.0, attempt_timeout_s=1.0)


class Clock:
    """Fake monotonic time: `sleep` moves it forward at once (and lets other tasks run)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


class Cache:
    """Fails the first `failures` invalidations (UNAVAILABLE), then deletes; records (user, time) per call."""

    def __init__(self, clock: Clock, failures: float = 0) -> None:
        self.clock, self.failures = clock, failures
        self.calls: list[tuple[str, float]] = []
        self.gate: asyncio.Event | None = None
        """When set, a call waits for it (a slow cache)."""

    async def invalidate(self, user_id: str, timeout_s: float) -> None:
        assert timeout_s == SETTINGS.attempt_timeout_s
        self.calls.append((user_id, self.clock.now))
        if self.gate is not None:
            await self.gate.wait()
        if len(self.calls) <= self.failures:
            raise DownstreamError("cache", "UNAVAILABLE", "redis is down")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


def pending_for(cache: Cache, clock: Clock, reader: InMemoryMetricReader) -> PendingInvalidations:
    """The jitter picks the top of its range, so the delays are exact."""
    meter = MeterProvider(metric_readers=[reader]).get_meter("test")
    return PendingInvalidations(cache, SETTINGS, meter=meter, clock=clock, sleep=clock.sleep,
                                jitter=lambda low, high: high)


@pytest.fixture
async def closing() -> AsyncIterator[list[PendingInvalidations]]:
    """Every PendingInvalidations a test registers is closed afterwards, even when the test fails."""
    made: list[PendingInvalidations] = []
    yield made
    for pending in made:
        await pending.aclose()


async def until(condition: Callable[[], bool]) -> None:
    """Let the retry loops run (the fake clock moves only when they sleep) until `condition` holds."""
    for _ in range(10_000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition never held")


async def settle(pending: PendingInvalidations, user: str) -> None:
    await until(lambda: not pending.pending(user))


def counts(reader: InMemoryMetricReader, name: str, label: str) -> dict[str, int]:
    data = reader.get_metrics_data()
    assert data is not None
    return {str(point.attributes[label]): int(point.value)
            for resource in data.resource_metrics for scope in resource.scope_metrics for metric in scope.metrics
            if metric.name == name for point in metric.data.data_points
            if isinstance(point, NumberDataPoint) and point.attributes}


async def test_a_failed_invalidation_is_retried_with_exponential_backoff_until_it_succeeds(
        clock: Clock, reader: InMemoryMetricReader, closing: list[PendingInvalidations]) -> None:
    cache = Cache(clock, failures=5)
    pending = pending_for(cache, clock, reader)
    closing.append(pending)
    pending.add("u1")
    assert pending.pending("u1")
    await settle(pending, "u1")
    assert clock.sleeps == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]  # doubling, capped at max_delay_s
    assert [user for user, _ in cache.calls] == ["u1"] * 6
    assert counts(reader, "alice.router.invalidation.retries", "alice.invalidation.outcome") == {"failed": 5, "ok": 1}


async def test_the_backoff_is_jittered_between_half_and_all_of_it(clock: Clock, closing: list[PendingInvalidations]
                                                                  ) -> None:
    ranges: list[tuple[float, float]] = []

    def jitter(low: float, high: float) -> float:
        ranges.append((low, high))
        return low

    pending = PendingInvalidations(Cache(clock, failures=2), SETTINGS, clock=clock, sleep=clock.sleep, jitter=jitter)
    closing.append(pending)
    pending.add("u1")
    await settle(pending, "u1")
    assert ranges == [(0.25, 0.5), (0.5, 1.0), (1.0, 2.0)]
    assert clock.sleeps == [0.25, 0.5, 1.0]


async def test_it_gives_up_once_the_longest_personal_ttl_has_passed(
        clock: Clock, reader: InMemoryMetricReader, closing: list[PendingInvalidations]) -> None:
    cache = Cache(clock, failures=float("inf"))
    pending = pending_for(cache, clock, reader)
    closing.append(pending)
    pending.add("u1")
    await settle(pending, "u1")
    # The last wait is cut to the deadline; one last try there, then the entries have expired anyway.
    assert clock.now == SETTINGS.give_up_after_s
    assert cache.calls[-1] == ("u1", SETTINGS.give_up_after_s)
    assert max(clock.sleeps) == SETTINGS.max_delay_s
    outcomes = counts(reader, "alice.router.invalidation.retries", "alice.invalidation.outcome")
    assert outcomes == {"failed": len(cache.calls) - 1, "gave_up": 1}


async def test_a_later_failure_extends_the_deadline(clock: Clock, reader: InMemoryMetricReader,
                                                   closing: list[PendingInvalidations]) -> None:
    cache = Cache(clock, failures=float("inf"))
    pending = pending_for(cache, clock, reader)
    closing.append(pending)
    pending.add("u1")
    await until(lambda: clock.now >= 30)
    marked_again = clock.now
    pending.add("u1")  # another change whose invalidation failed, half a minute later
    await settle(pending, "u1")
    assert clock.now == cache.calls[-1][1] == marked_again + SETTINGS.give_up_after_s


async def test_one_retry_loop_per_user(clock: Clock, reader: InMemoryMetricReader,
                                       closing: list[PendingInvalidations]) -> None:
    cache = Cache(clock)
    pending = pending_for(cache, clock, reader)
    closing.append(pending)
    before = len(asyncio.all_tasks())
    for user in ("u1", "u1", "u2", "u1"):
        pending.add(user)
    assert len(asyncio.all_tasks()) == before + 2
    await settle(pending, "u1")
    await settle(pending, "u2")
    assert sorted(user for user, _ in cache.calls) == ["u1", "u2"]  # one successful call each


async def test_a_failure_during_a_retry_in_flight_makes_it_retry_again(
        clock: Clock, reader: InMemoryMetricReader, closing: list[PendingInvalidations]) -> None:
    cache = Cache(clock)
    cache.gate = asyncio.Event()
    pending = pending_for(cache, clock, reader)
    closing.append(pending)
    pending.add("u1")
    await until(lambda: bool(cache.calls))
    pending.add("u1")  # a change whose invalidation failed while the retry's sweep was under way
    cache.gate.set()
    await settle(pending, "u1")
    assert len(cache.calls) == 2  # the first sweep may have missed that change's entries


async def test_bypass_holds_only_while_pending_and_is_counted(
        clock: Clock, reader: InMemoryMetricReader, closing: list[PendingInvalidations]) -> None:
    cache = Cache(clock, failures=1)
    cache.gate = asyncio.Event()
    pending = pending_for(cache, clock, reader)
    closing.append(pending)
    assert not pending.bypass("u1", "lookup")
    pending.add("u1")
    assert pending.bypass("u1", "lookup") and pending.bypass("u1", "store")
    assert not pending.bypass("u2", "lookup")  # other users are unaffected
    cache.gate.set()
    await settle(pending, "u1")
    assert not pending.bypass("u1", "lookup")
    assert counts(reader, "alice.router.cache.pending_bypass", "alice.cache.step") == {"lookup": 1, "store": 1}


async def test_close_cancels_the_loops_and_ignores_later_failures(
        clock: Clock, reader: InMemoryMetricReader) -> None:
    cache = Cache(clock, failures=float("inf"))
    cache.gate = asyncio.Event()  # a retry stuck in a slow call is cancelled too
    pending = pending_for(cache, clock, reader)
    before = asyncio.all_tasks()
    pending.add("u1")
    pending.add("u2")
    await until(lambda: len(cache.calls) == 2)
    await pending.aclose()
    assert asyncio.all_tasks() == before
    assert not pending.pending("u1") and not pending.pending("u2")
    pending.add("u3")
    assert not pending.pending("u3") and asyncio.all_tasks() == before
