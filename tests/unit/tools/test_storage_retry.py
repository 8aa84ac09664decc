"""The tool layer's Redis retry policy: back-off bounded by the budget; only lost connections and timeouts retried."""

from __future__ import annotations

import pytest
import redis.asyncio.retry
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from router_svc.tools.base import RETRY_BASE_S, RETRY_CAP_S, retries_within, storage_retry

BUDGETS = [
    pytest.param(0.001, id="below-first-sleep"),
    pytest.param(0.02, id="one-sleep"),
    pytest.param(0.25, id="quarter-second"),
    pytest.param(1.0, id="default-tool-budget"),
    pytest.param(2.5, id="long"),
    pytest.param(60.0, id="max-tool-budget"),
]


def longest_sleep(failures: int) -> float:
    return min(RETRY_CAP_S, RETRY_BASE_S * 2.0**failures)


@pytest.mark.parametrize("budget_s", BUDGETS)
def test_retries_fill_the_budget_without_passing_it(budget_s: float) -> None:
    retries = retries_within(budget_s)
    assert sum(longest_sleep(k) for k in range(1, retries + 1)) <= budget_s
    assert sum(longest_sleep(k) for k in range(1, retries + 2)) > budget_s  # one more would not fit


def test_a_budget_shorter_than_the_first_sleep_allows_no_retry() -> None:
    assert retries_within(0.0) == 0
    assert retries_within(RETRY_BASE_S * 2 - 1e-9) == 0


@pytest.mark.parametrize(
    ("base_s", "cap_s"), [pytest.param(0.0, 0.1, id="zero-base"), pytest.param(0.01, 0.0, id="zero-cap")]
)
def test_a_back_off_that_cannot_grow_is_refused(base_s: float, cap_s: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        retries_within(1.0, base_s, cap_s)


class Flaky:
    """An operation that fails with `error` `failures` times, then answers."""

    def __init__(self, error: Exception, failures: int) -> None:
        self.error, self.failures, self.calls = error, failures, 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "PONG"


async def ignore(_error: Exception) -> None:
    return None


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The back-off sleeps redis-py's Retry asks for, recorded instead of slept."""
    slept: list[float] = []

    async def record(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(redis.asyncio.retry, "sleep", record)
    return slept


@pytest.mark.parametrize("budget_s", BUDGETS)
async def test_an_unreachable_redis_is_given_up_on_within_the_budget(budget_s: float, sleeps: list[float]) -> None:
    retry = storage_retry(budget_s)
    for _ in range(20):  # the jitter is random: the bound must hold for every draw
        sleeps.clear()
        operation = Flaky(RedisConnectionError("Connection refused"), failures=10**6)
        with pytest.raises(RedisConnectionError):
            await retry.call_with_retry(operation, ignore)
        assert operation.calls == retries_within(budget_s) + 1
        assert sum(sleeps) <= budget_s


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(RedisConnectionError("Connection refused"), id="connection"),
        pytest.param(RedisTimeoutError("Timeout reading from socket"), id="timeout"),
    ],
)
async def test_a_restart_shorter_than_the_budget_is_ridden_out(error: Exception, sleeps: list[float]) -> None:
    operation = Flaky(error, failures=3)
    assert await storage_retry(1.0).call_with_retry(operation, ignore) == "PONG"
    assert operation.calls == 4
    assert len(sleeps) == 3


async def test_a_command_error_is_not_retried(sleeps: list[float]) -> None:
    operation = Flaky(ResponseError("WRONGTYPE"), failures=1)
    with pytest.raises(ResponseError):
        await storage_retry(1.0).call_with_retry(operation, ignore)
    assert operation.calls == 1
    assert sleeps == []
