"""Async circuit breaker with count- or time-based windows, after resilience4j."""

from __future__ import annotations

import asyncio
import enum
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar

__all__ = [
    "BreakerConfig",
    "BreakerSnapshot",
    "CircuitBreaker",
    "CircuitOpenError",
    "Clock",
    "Permit",
    "State",
    "Transition",
]

T = TypeVar("T")

# Enough history to see a flapping breaker in a snapshot without growing without bound.
_TRANSITION_HISTORY = 10


class State(enum.Enum):
    """Breaker state."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class Clock(Protocol):
    """Monotonic time source in seconds; injected so tests can drive time."""

    def __call__(self) -> float: ...


@dataclass(frozen=True)
class BreakerConfig:
    """Breaker settings after resilience4j's CircuitBreakerConfig; rates are in (0, 1]."""

    window_type: Literal["count", "time"] = "count"
    window_size: int = 20
    minimum_calls: int = 10
    failure_rate_threshold: float = 0.5
    slow_call_rate_threshold: float = 0.8
    # Below the usual per-hop deadlines, so a dependency that keeps nearly timing out
    # trips the breaker before it eats whole request budgets.
    slow_call_duration_s: float = 2.0
    wait_in_open_s: float = 5.0
    half_open_permitted_calls: int = 3
    # 0 waits for all probes forever (the resilience4j default); a positive value
    # re-opens a breaker whose probes were acquired with try_acquire() and never recorded.
    max_wait_in_half_open_s: float = 0.0

    def __post_init__(self) -> None:
        if self.window_type not in ("count", "time"):
            raise ValueError(f"window_type must be 'count' or 'time', got {self.window_type!r}")
        if self.window_size < 1:
            raise ValueError(f"window_size must be >= 1, got {self.window_size}")
        if self.minimum_calls < 1:
            raise ValueError(f"minimum_calls must be >= 1, got {self.minimum_calls}")
        if self.window_type == "count" and self.minimum_calls > self.window_size:
            # A count window never holds more than window_size calls: it could never open.
            raise ValueError(
                f"minimum_calls ({self.minimum_calls}) must not exceed window_size "
                f"({self.window_size}) for a count-based window"
            )
        for field, rate in (
            ("failure_rate_threshold", self.failure_rate_threshold),
            ("slow_call_rate_threshold", self.slow_call_rate_threshold),
        ):
            if not 0.0 < rate <= 1.0:
                raise ValueError(f"{field} must be in (0, 1], got {rate}")
        if not self.slow_call_duration_s > 0.0:
            raise ValueError(f"slow_call_duration_s must be > 0, got {self.slow_call_duration_s}")
        if not self.wait_in_open_s > 0.0:
            raise ValueError(f"wait_in_open_s must be > 0, got {self.wait_in_open_s}")
        if self.half_open_permitted_calls < 1:
            raise ValueError(f"half_open_permitted_calls must be >= 1, got {self.half_open_permitted_calls}")
        if not self.max_wait_in_half_open_s >= 0.0:
            raise ValueError(f"max_wait_in_half_open_s must be >= 0, got {self.max_wait_in_half_open_s}")


@dataclass(frozen=True)
class Transition:
    """One state change, for logs, metrics and snapshots."""

    from_state: State
    to_state: State
    at: float
    reason: str


@dataclass(frozen=True)
class BreakerSnapshot:
    """Point-in-time view; rates cover the window (half-open: the probes; open: what tripped it)."""

    name: str
    state: State
    failure_rate: float
    slow_call_rate: float
    calls_in_window: int
    successes: int
    failures: int
    slow_calls: int
    ignored: int
    rejected: int
    transitions: tuple[Transition, ...]


class CircuitOpenError(Exception):
    """Raised instead of calling a dependency whose breaker does not permit the call."""

    def __init__(self, name: str, state: State, remaining_s: float) -> None:
        super().__init__(f"circuit {name!r} is {state.value}; retry in {remaining_s:.3f}s")
        self.name = name
        self.state = state
        self.remaining_s = remaining_s


@dataclass
class _Stats:
    """Outcome counts for one window or one round of half-open probes."""

    calls: int = 0
    failures: int = 0
    slow: int = 0

    def add(self, failed: bool, slow: bool) -> None:
        self.calls += 1
        self.failures += failed
        self.slow += slow


class _CountWindow:
    """The last `size` recorded calls."""

    def __init__(self, size: int) -> None:
        self._outcomes: deque[tuple[bool, bool]] = deque(maxlen=size)
        self._stats = _Stats()

    def record(self, failed: bool, slow: bool, now: float) -> None:
        if len(self._outcomes) == self._outcomes.maxlen:
            old_failed, old_slow = self._outcomes[0]
            self._stats.calls -= 1
            self._stats.failures -= old_failed
            self._stats.slow -= old_slow
        self._outcomes.append((failed, slow))
        self._stats.add(failed, slow)

    def stats(self, now: float) -> _Stats:
        return _Stats(self._stats.calls, self._stats.failures, self._stats.slow)


class _TimeWindow:
    """Calls of the last `size` whole seconds, aggregated into one bucket per second."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._buckets: deque[tuple[int, _Stats]] = deque()
        self._stats = _Stats()

    def _evict(self, now: float) -> None:
        oldest_kept = math.floor(now) - self._size + 1
        while self._buckets and self._buckets[0][0] < oldest_kept:
            _, old = self._buckets.popleft()
            self._stats.calls -= old.calls
            self._stats.failures -= old.failures
            self._stats.slow -= old.slow

    def record(self, failed: bool, slow: bool, now: float) -> None:
        self._evict(now)
        second = math.floor(now)
        if not self._buckets or self._buckets[-1][0] != second:
            self._buckets.append((second, _Stats()))
        self._buckets[-1][1].add(failed, slow)
        self._stats.add(failed, slow)

    def stats(self, now: float) -> _Stats:
        self._evict(now)
        return _Stats(self._stats.calls, self._stats.failures, self._stats.slow)


class Permit:
    """Permission for one call; record its outcome once: success, failure or ignore."""

    def __init__(self, breaker: CircuitBreaker, epoch: int, started_at: float) -> None:
        self._breaker = breaker
        self._epoch = epoch
        self._started_at = started_at
        self._done = False

    def success(self) -> None:
        self._finish(failed=False, ignored=False)

    def failure(self, exc: BaseException | None = None) -> None:
        # exc lets callers pass what they caught; the breaker only counts outcomes.
        self._finish(failed=True, ignored=False)

    def ignore(self) -> None:
        self._finish(failed=False, ignored=True)

    def _finish(self, *, failed: bool, ignored: bool) -> None:
        if self._done:
            raise RuntimeError("permit outcome already recorded")
        self._done = True
        self._breaker._record(self._epoch, self._started_at, failed=failed, ignored=ignored)


class CircuitBreaker:
    """Circuit breaker for one downstream dependency.

    Used from a single event loop: every state change happens in synchronous code with
    no await in between, so each one is atomic with respect to other tasks and no lock
    is needed. Do not share one instance between threads or event loops.
    """

    def __init__(
        self,
        name: str,
        config: BreakerConfig,
        clock: Clock = time.monotonic,
        on_transition: Callable[[Transition], None] | None = None,
        is_failure: Callable[[BaseException], bool] = lambda exc: True,
    ) -> None:
        self._name = name
        self._config = config
        self._clock = clock
        self._on_transition = on_transition
        self._is_failure = is_failure
        self._transitions: deque[Transition] = deque(maxlen=_TRANSITION_HISTORY)
        self._init_state()

    def _init_state(self) -> None:
        self._state = State.CLOSED
        # Bumped on every transition: a permit from an earlier epoch still counts in the
        # totals, but must not land in a window or probe round it was never part of.
        self._epoch = 0
        self._window = self._new_window()
        self._opened_at = 0.0
        self._half_opened_at = 0.0
        self._probes_issued = 0
        self._probes = _Stats()
        self._tripped_by = _Stats()
        self._successes = 0
        self._failures = 0
        self._slow = 0
        self._ignored = 0
        self._rejected = 0

    def _new_window(self) -> _CountWindow | _TimeWindow:
        if self._config.window_type == "count":
            return _CountWindow(self._config.window_size)
        return _TimeWindow(self._config.window_size)

    @property
    def name(self) -> str:
        return self._name

    @property
    def config(self) -> BreakerConfig:
        return self._config

    @property
    def state(self) -> State:
        self._advance(self._clock())
        return self._state

    def try_acquire(self) -> Permit:
        """Permit one call now, or raise CircuitOpenError without calling anything."""
        now = self._clock()
        self._advance(now)
        if self._state is State.OPEN:
            self._rejected += 1
            remaining = self._opened_at + self._config.wait_in_open_s - now
            raise CircuitOpenError(self._name, State.OPEN, max(remaining, 0.0))
        if self._state is State.HALF_OPEN:
            if self._probes_issued >= self._config.half_open_permitted_calls:
                self._rejected += 1
                raise CircuitOpenError(self._name, State.HALF_OPEN, 0.0)
            self._probes_issued += 1
        return Permit(self, self._epoch, now)

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Await fn() under the breaker; CircuitOpenError if the call is not permitted."""
        permit = self.try_acquire()
        try:
            result = await fn()
        except asyncio.CancelledError:
            # The caller gave up (deadline, shutdown): that says nothing about the dependency.
            permit.ignore()
            raise
        except Exception as exc:
            # As in resilience4j, an error is_failure rejects (say NOT_FOUND) proves the
            # dependency answered, so it counts as a success.
            if self._is_failure(exc):
                permit.failure(exc)
            else:
                permit.success()
            raise
        except BaseException:
            permit.ignore()
            raise
        permit.success()
        return result

    def snapshot(self) -> BreakerSnapshot:
        now = self._clock()
        self._advance(now)
        if self._state is State.CLOSED:
            stats = self._window.stats(now)
        elif self._state is State.HALF_OPEN:
            stats = self._probes
        else:
            stats = self._tripped_by
        return BreakerSnapshot(
            name=self._name,
            state=self._state,
            failure_rate=_rate(stats.failures, stats.calls),
            slow_call_rate=_rate(stats.slow, stats.calls),
            calls_in_window=stats.calls,
            successes=self._successes,
            failures=self._failures,
            slow_calls=self._slow,
            ignored=self._ignored,
            rejected=self._rejected,
            transitions=tuple(self._transitions),
        )

    def reset(self) -> None:
        """Return to a fresh CLOSED breaker (empty window, zero totals); keep history."""
        previous = self._state
        epoch = self._epoch
        self._init_state()
        self._epoch = epoch + 1
        if previous is not State.CLOSED:
            self._emit(previous, State.CLOSED, self._clock(), "reset")

    def _advance(self, now: float) -> None:
        """Apply the transitions that are due to time alone."""
        if self._state is State.OPEN and now - self._opened_at >= self._config.wait_in_open_s:
            self._transition(State.HALF_OPEN, now, "wait in open state elapsed")
        max_wait = self._config.max_wait_in_half_open_s
        if self._state is State.HALF_OPEN and max_wait > 0.0 and now - self._half_opened_at >= max_wait:
            self._tripped_by = self._probes
            self._transition(State.OPEN, now, "max wait in half-open state elapsed")

    def _record(self, epoch: int, started_at: float, *, failed: bool, ignored: bool) -> None:
        now = self._clock()
        self._advance(now)
        current = epoch == self._epoch
        if ignored:
            self._ignored += 1
            if current and self._state is State.HALF_OPEN:
                # Hand the probe slot back so another call can test the dependency.
                self._probes_issued -= 1
            return
        # Strictly longer than the threshold, as in resilience4j: a call that takes exactly the budget is not slow.
        slow = now - started_at > self._config.slow_call_duration_s
        self._failures += failed
        self._successes += not failed
        self._slow += slow
        if not current:
            return
        if self._state is State.CLOSED:
            self._window.record(failed, slow, now)
            stats = self._window.stats(now)
            if stats.calls >= self._config.minimum_calls:
                reason = self._exceeded(stats)
                if reason:
                    self._tripped_by = stats
                    self._transition(State.OPEN, now, reason)
        elif self._state is State.HALF_OPEN:
            self._probes.add(failed, slow)
            if self._probes.calls >= self._config.half_open_permitted_calls:
                reason = self._exceeded(self._probes)
                if reason:
                    self._tripped_by = self._probes
                    self._transition(State.OPEN, now, f"probes: {reason}")
                else:
                    self._transition(State.CLOSED, now, "probes succeeded")

    def _exceeded(self, stats: _Stats) -> str:
        """Why these stats should open the breaker, or an empty string."""
        failure_rate = _rate(stats.failures, stats.calls)
        if failure_rate >= self._config.failure_rate_threshold:
            limit = self._config.failure_rate_threshold
            return f"failure rate {failure_rate:.0%} >= {limit:.0%} over {stats.calls} calls"
        slow_rate = _rate(stats.slow, stats.calls)
        if slow_rate >= self._config.slow_call_rate_threshold:
            limit = self._config.slow_call_rate_threshold
            return f"slow-call rate {slow_rate:.0%} >= {limit:.0%} over {stats.calls} calls"
        return ""

    def _transition(self, to_state: State, now: float, reason: str) -> None:
        from_state = self._state
        self._state = to_state
        self._epoch += 1
        if to_state is State.OPEN:
            self._opened_at = now
        elif to_state is State.HALF_OPEN:
            self._half_opened_at = now
            self._probes_issued = 0
            self._probes = _Stats()
        else:
            self._window = self._new_window()
        self._emit(from_state, to_state, now, reason)

    def _emit(self, from_state: State, to_state: State, now: float, reason: str) -> None:
        transition = Transition(from_state, to_state, now, reason)
        self._transitions.append(transition)
        # Called once the state is consistent: a raising callback cannot corrupt it.
        if self._on_transition is not None:
            self._on_transition(transition)


def _rate(part: int, total: int) -> float:
    return part / total if total else 0.0
