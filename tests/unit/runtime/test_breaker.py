"""Unit tests for the circuit breaker, driven by a fake clock."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any, Literal

import pytest

from alice.runtime.breaker import (
    BreakerConfig,
    CircuitBreaker,
    CircuitOpenError,
    State,
    Transition,
)


class FakeClock:
    """Monotonic clock that only moves when a test says so."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


CONFIG = BreakerConfig(
    window_type="count",
    window_size=10,
    minimum_calls=4,
    failure_rate_threshold=0.5,
    slow_call_rate_threshold=0.5,
    slow_call_duration_s=1.0,
    wait_in_open_s=5.0,
    half_open_permitted_calls=2,
)


class DependencyError(Exception):
    """Stand-in for a dependency error."""


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def events() -> list[Transition]:
    return []


@pytest.fixture
def breaker(clock: FakeClock, events: list[Transition]) -> CircuitBreaker:
    return CircuitBreaker("nlu", CONFIG, clock=clock, on_transition=events.append)


def succeed(breaker: CircuitBreaker, n: int = 1) -> None:
    for _ in range(n):
        breaker.try_acquire().success()


def fail(breaker: CircuitBreaker, n: int = 1) -> None:
    for _ in range(n):
        breaker.try_acquire().failure(DependencyError())


def slow_success(breaker: CircuitBreaker, clock: FakeClock, n: int = 1) -> None:
    for _ in range(n):
        permit = breaker.try_acquire()
        clock.advance(CONFIG.slow_call_duration_s + 0.5)
        permit.success()


def trip(breaker: CircuitBreaker) -> None:
    fail(breaker, CONFIG.minimum_calls)
    assert breaker.state is State.OPEN


def to_half_open(breaker: CircuitBreaker, clock: FakeClock) -> None:
    trip(breaker)
    clock.advance(CONFIG.wait_in_open_s)
    assert breaker.state is State.HALF_OPEN


@pytest.mark.parametrize(
    ("successes", "failures", "expected"),
    [
        pytest.param(2, 2, State.OPEN, id="rate-equal-threshold-opens"),
        pytest.param(1, 3, State.OPEN, id="rate-above-threshold-opens"),
        pytest.param(3, 1, State.CLOSED, id="rate-below-threshold-stays-closed"),
    ],
)
def test_closed_to_open_on_failure_rate(
    breaker: CircuitBreaker, successes: int, failures: int, expected: State
) -> None:
    succeed(breaker, successes)
    fail(breaker, failures)
    assert breaker.state is expected


def test_closed_to_open_on_slow_call_rate(breaker: CircuitBreaker, clock: FakeClock) -> None:
    succeed(breaker, 2)
    slow_success(breaker, clock, 2)
    snap = breaker.snapshot()
    assert snap.state is State.OPEN
    assert snap.slow_call_rate == 0.5
    assert snap.failure_rate == 0.0
    assert "slow-call rate" in snap.transitions[-1].reason


def test_call_exactly_at_slow_threshold_is_not_slow(breaker: CircuitBreaker, clock: FakeClock) -> None:
    for _ in range(CONFIG.minimum_calls):
        permit = breaker.try_acquire()
        clock.advance(CONFIG.slow_call_duration_s)
        permit.success()
    assert breaker.state is State.CLOSED
    assert breaker.snapshot().slow_calls == 0


def test_stays_closed_under_minimum_calls(breaker: CircuitBreaker) -> None:
    fail(breaker, CONFIG.minimum_calls - 1)
    snap = breaker.snapshot()
    assert snap.state is State.CLOSED
    assert snap.failure_rate == 1.0
    assert snap.calls_in_window == CONFIG.minimum_calls - 1


def test_count_window_forgets_old_calls(breaker: CircuitBreaker) -> None:
    succeed(breaker, 7)
    fail(breaker, 3)
    assert breaker.snapshot().failure_rate == 0.3
    # Ten more successes slide every failure out of the count window.
    succeed(breaker, 10)
    snap = breaker.snapshot()
    assert snap.calls_in_window == CONFIG.window_size
    assert snap.failure_rate == 0.0
    assert snap.failures == 3


def test_open_rejects_fast(breaker: CircuitBreaker, clock: FakeClock) -> None:
    trip(breaker)
    clock.advance(2.0)
    with pytest.raises(CircuitOpenError) as info:
        breaker.try_acquire()
    assert info.value.name == "nlu"
    assert info.value.state is State.OPEN
    assert info.value.remaining_s == pytest.approx(3.0)
    assert breaker.snapshot().rejected == 1


@pytest.mark.asyncio
async def test_open_call_never_invokes_fn(breaker: CircuitBreaker) -> None:
    trip(breaker)
    invoked = False

    async def fn() -> int:
        nonlocal invoked
        invoked = True
        return 1

    with pytest.raises(CircuitOpenError):
        await breaker.call(fn)
    assert not invoked


def test_open_to_half_open_after_wait(breaker: CircuitBreaker, clock: FakeClock, events: list[Transition]) -> None:
    trip(breaker)
    clock.advance(CONFIG.wait_in_open_s - 0.001)
    assert breaker.snapshot().state is State.OPEN
    clock.advance(0.001)
    assert breaker.state is State.HALF_OPEN
    assert events[-1] == Transition(State.OPEN, State.HALF_OPEN, clock.now, events[-1].reason)


def test_half_open_limits_concurrent_probes(breaker: CircuitBreaker, clock: FakeClock) -> None:
    to_half_open(breaker, clock)
    probes = [breaker.try_acquire() for _ in range(CONFIG.half_open_permitted_calls)]
    with pytest.raises(CircuitOpenError) as info:
        breaker.try_acquire()
    assert info.value.state is State.HALF_OPEN
    # A probe that ends without a verdict hands its slot back.
    probes[0].ignore()
    breaker.try_acquire()
    with pytest.raises(CircuitOpenError):
        breaker.try_acquire()
    assert breaker.state is State.HALF_OPEN


def test_half_open_to_closed_when_probes_succeed(breaker: CircuitBreaker, clock: FakeClock) -> None:
    to_half_open(breaker, clock)
    probes = [breaker.try_acquire() for _ in range(CONFIG.half_open_permitted_calls)]
    probes[0].success()
    assert breaker.state is State.HALF_OPEN
    probes[1].success()
    snap = breaker.snapshot()
    assert snap.state is State.CLOSED
    assert snap.calls_in_window == 0, "closing starts a fresh window"


@pytest.mark.parametrize(
    "outcome",
    [pytest.param("failure", id="failed-probe"), pytest.param("slow", id="slow-probe")],
)
def test_half_open_to_open_when_probes_fail(breaker: CircuitBreaker, clock: FakeClock, outcome: str) -> None:
    to_half_open(breaker, clock)
    breaker.try_acquire().success()
    if outcome == "failure":
        fail(breaker)
    else:
        slow_success(breaker, clock)
    assert breaker.state is State.OPEN
    with pytest.raises(CircuitOpenError) as info:
        breaker.try_acquire()
    assert info.value.remaining_s == pytest.approx(CONFIG.wait_in_open_s)


def test_half_open_max_wait_reopens(clock: FakeClock) -> None:
    config = replace(CONFIG, max_wait_in_half_open_s=10.0)
    breaker = CircuitBreaker("llm", config, clock=clock)
    to_half_open(breaker, clock)
    breaker.try_acquire()  # a probe that is never recorded
    clock.advance(10.0)
    assert breaker.state is State.OPEN


def test_stale_permit_does_not_count_in_new_state(breaker: CircuitBreaker, clock: FakeClock) -> None:
    early = breaker.try_acquire()
    to_half_open(breaker, clock)
    # A failure of a call started while CLOSED must not be taken as a probe verdict.
    early.failure()
    assert breaker.state is State.HALF_OPEN
    assert breaker.snapshot().failures == CONFIG.minimum_calls + 1


@pytest.mark.parametrize(
    ("window_type", "advance", "expected"),
    [
        pytest.param("time", 9.0, State.OPEN, id="time-within-window"),
        pytest.param("time", 10.0, State.CLOSED, id="time-expired"),
        pytest.param("count", 10.0, State.OPEN, id="count-ignores-age"),
    ],
)
def test_time_window_expiry(
    clock: FakeClock,
    window_type: Literal["count", "time"],
    advance: float,
    expected: State,
) -> None:
    config = replace(CONFIG, window_type=window_type, window_size=10)
    breaker = CircuitBreaker("cache", config, clock=clock)
    fail(breaker, CONFIG.minimum_calls - 1)
    clock.advance(advance)
    fail(breaker)
    assert breaker.state is expected


def test_time_window_drops_whole_seconds(clock: FakeClock) -> None:
    breaker = CircuitBreaker("cache", replace(CONFIG, window_type="time", window_size=3), clock=clock)
    clock.now = 100.9
    fail(breaker)
    clock.now = 101.5
    succeed(breaker, 2)
    clock.now = 102.99
    assert breaker.snapshot().calls_in_window == 3
    clock.now = 103.0
    snap = breaker.snapshot()
    assert (snap.calls_in_window, snap.failure_rate) == (2, 0.0)
    clock.now = 104.0
    assert breaker.snapshot().calls_in_window == 0


@pytest.mark.asyncio
async def test_cancellation_is_not_counted(breaker: CircuitBreaker) -> None:
    started = asyncio.Event()

    async def hang() -> None:
        started.set()
        await asyncio.Event().wait()

    for _ in range(CONFIG.minimum_calls):
        task = asyncio.create_task(breaker.call(hang))
        await started.wait()
        started.clear()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    snap = breaker.snapshot()
    assert snap.state is State.CLOSED
    assert (snap.calls_in_window, snap.failures, snap.ignored) == (
        0,
        0,
        CONFIG.minimum_calls,
    )


@pytest.mark.asyncio
async def test_cancelled_probe_frees_its_slot(breaker: CircuitBreaker, clock: FakeClock) -> None:
    to_half_open(breaker, clock)

    async def hang() -> None:
        await asyncio.Event().wait()

    tasks = [asyncio.create_task(breaker.call(hang)) for _ in range(2)]
    await asyncio.sleep(0)
    with pytest.raises(CircuitOpenError):
        breaker.try_acquire()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    breaker.try_acquire().success()
    breaker.try_acquire().success()
    assert breaker.state is State.CLOSED


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("exc", "counts_as_failure"),
    [
        pytest.param(TimeoutError(), True, id="timeout-is-failure"),
        pytest.param(DependencyError(), True, id="dependency-error-is-failure"),
        pytest.param(KeyError("user"), False, id="filtered-error-is-success"),
    ],
)
async def test_is_failure_filter(clock: FakeClock, exc: Exception, counts_as_failure: bool) -> None:
    breaker = CircuitBreaker("nlu", CONFIG, clock=clock, is_failure=lambda e: not isinstance(e, KeyError))

    async def raise_it() -> None:
        raise exc

    for _ in range(CONFIG.minimum_calls):
        with pytest.raises(type(exc)):
            await breaker.call(raise_it)
    snap = breaker.snapshot()
    assert snap.state is (State.OPEN if counts_as_failure else State.CLOSED)
    assert (snap.failures, snap.successes) == (
        (CONFIG.minimum_calls, 0) if counts_as_failure else (0, CONFIG.minimum_calls)
    )


@pytest.mark.asyncio
async def test_call_returns_result_and_records_success(breaker: CircuitBreaker) -> None:
    async def answer() -> str:
        return "hej"

    assert await breaker.call(answer) == "hej"
    assert breaker.snapshot().successes == 1


def test_on_transition_sees_full_cycle(breaker: CircuitBreaker, clock: FakeClock, events: list[Transition]) -> None:
    to_half_open(breaker, clock)
    fail(breaker)
    succeed(breaker)  # second probe completes the round: 50% failures re-opens
    clock.advance(CONFIG.wait_in_open_s)
    succeed(breaker, CONFIG.half_open_permitted_calls)
    assert [(e.from_state, e.to_state) for e in events] == [
        (State.CLOSED, State.OPEN),
        (State.OPEN, State.HALF_OPEN),
        (State.HALF_OPEN, State.OPEN),
        (State.OPEN, State.HALF_OPEN),
        (State.HALF_OPEN, State.CLOSED),
    ]
    assert events[0].reason.startswith("failure rate 100%")
    assert events[0].at == 1000.0
    assert list(breaker.snapshot().transitions) == events


def test_transition_history_is_bounded(breaker: CircuitBreaker, clock: FakeClock) -> None:
    for _ in range(8):
        to_half_open(breaker, clock)
        succeed(breaker, CONFIG.half_open_permitted_calls)
    assert len(breaker.snapshot().transitions) == 10


def test_permit_records_once(breaker: CircuitBreaker) -> None:
    permit = breaker.try_acquire()
    permit.success()
    with pytest.raises(RuntimeError):
        permit.failure()
    assert breaker.snapshot().successes == 1


def test_reset(breaker: CircuitBreaker, events: list[Transition]) -> None:
    stale = breaker.try_acquire()
    trip(breaker)
    breaker.reset()
    stale.failure()
    snap = breaker.snapshot()
    assert snap.state is State.CLOSED
    assert (snap.calls_in_window, snap.rejected) == (0, 0)
    assert events[-1].to_state is State.CLOSED
    assert events[-1].reason == "reset"
    succeed(breaker)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        pytest.param({"window_type": "sliding"}, "window_type", id="window-type"),
        pytest.param({"window_size": 0}, "window_size", id="window-size"),
        pytest.param({"minimum_calls": 0}, "minimum_calls", id="minimum-calls"),
        pytest.param({"minimum_calls": 11}, "must not exceed", id="minimum-above-count-window"),
        pytest.param({"failure_rate_threshold": 0.0}, "failure_rate", id="failure-rate-zero"),
        pytest.param({"failure_rate_threshold": 1.5}, "failure_rate", id="failure-rate-high"),
        pytest.param(
            {"slow_call_rate_threshold": float("nan")},
            "slow_call_rate",
            id="slow-rate-nan",
        ),
        pytest.param({"slow_call_duration_s": 0.0}, "slow_call_duration", id="slow-duration"),
        pytest.param({"wait_in_open_s": -1.0}, "wait_in_open", id="wait-in-open"),
        pytest.param({"half_open_permitted_calls": 0}, "half_open", id="half-open-calls"),
        pytest.param({"max_wait_in_half_open_s": -1.0}, "max_wait", id="max-wait"),
    ],
)
def test_config_validation(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        replace(CONFIG, **overrides)


def test_time_window_allows_minimum_above_size() -> None:
    config = BreakerConfig(window_type="time", window_size=5, minimum_calls=50)
    assert config.minimum_calls == 50
