"""Users whose cache invalidation failed after their data changed: retried in the background, bypassed meanwhile."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from opentelemetry import metrics, trace

from router_svc.config import InvalidationRetry
from router_svc.downstream import DownstreamError

log = logging.getLogger(__name__)


class Invalidator(Protocol):
    """Deletes one user's cached personal answers (the cache client)."""

    async def invalidate(self, user_id: str, timeout_s: float) -> None: ...


@dataclass
class _Pending:
    deadline: float
    """`clock()` after which every entry the failed invalidation left has expired."""
    marks: int = 1
    """Failed invalidations so far; one that arrives while a retry is in flight makes its success not count."""
    task: asyncio.Task[None] | None = field(default=None, repr=False)


class PendingInvalidations:
    """Users whose cached personal answers may be stale because deleting them failed after a change.

    `add(user)` after a failed invalidation starts one background loop for that user (at most one: a later
    failure only extends it) that retries the invalidation with jittered exponential back-off. Until it
    succeeds, `bypass(user, step)` is True: the pipeline neither serves that user's personal answers from the
    cache nor stores new ones (shared answers such as weather are unaffected). The loop gives up once
    `give_up_after_s` (the cache's longest personal TTL) has passed since the last failure: every entry it
    was meant to delete has expired by then. `aclose()` cancels the loops (router shutdown).

    Limitation: the pending set lives in this router process. With several router replicas, another replica
    knows nothing of it and can still serve the stale answer until the retry succeeds (or the entry expires).
    """

    def __init__(self, cache: Invalidator, settings: InvalidationRetry, *, tracer: trace.Tracer | None = None,
                 meter: metrics.Meter | None = None, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 jitter: Callable[[float, float], float] = random.uniform) -> None:
        self._cache = cache
        self._settings = settings
        self._tracer = tracer or trace.NoOpTracer()
        self._clock, self._sleep, self._jitter = clock, sleep, jitter
        self._pending: dict[str, _Pending] = {}
        self._closed = False
        meter = meter or metrics.NoOpMeter("alice")
        self._attempts = meter.create_counter(
            "alice.router.invalidation.retries",
            description="Background retries of a failed cache invalidation, by outcome (ok, failed, gave_up)")
        self._bypassed = meter.create_counter(
            "alice.router.cache.pending_bypass",
            description="Cache lookups and stores of personal answers skipped while the user's invalidation "
                        "is pending, by step")
        meter.create_observable_gauge(
            "alice.router.invalidation.pending", callbacks=[self._observe_pending],
            description="Users whose cache invalidation is being retried in this router process")

    def _observe_pending(self, options: metrics.CallbackOptions) -> list[metrics.Observation]:
        return [metrics.Observation(len(self._pending))]

    def pending(self, user_id: str) -> bool:
        return user_id in self._pending

    def bypass(self, user_id: str, step: str) -> bool:
        """True (and counted) when `step` must skip the cache for this user's personal answer."""
        if user_id not in self._pending:
            return False
        self._bypassed.add(1, {"alice.cache.step": step})
        return True

    def add(self, user_id: str) -> None:
        """An invalidation of this user's cached answers failed: retry it in the background until it succeeds."""
        if self._closed:
            return
        deadline = self._clock() + self._settings.give_up_after_s
        entry = self._pending.get(user_id)
        if entry is not None:
            entry.deadline = max(entry.deadline, deadline)
            entry.marks += 1
            return
        entry = _Pending(deadline)
        self._pending[user_id] = entry
        # A context of its own: the retries outlive the request, so their spans start traces that link to it.
        cause = trace.get_current_span().get_span_context()
        entry.task = asyncio.get_running_loop().create_task(self._retry(user_id, entry, cause),
                                                            context=contextvars.Context())
        entry.task.add_done_callback(_log_crash)

    async def aclose(self) -> None:
        """Cancel every retry loop and wait for them to end; later `add` calls are ignored."""
        self._closed = True
        tasks = [entry.task for entry in self._pending.values() if entry.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._pending.clear()

    def _delay(self, failures: int) -> float:
        ceiling = min(self._settings.max_delay_s, self._settings.first_delay_s * 2 ** min(failures, 32))
        # Half to full back-off: many routers retrying after one cache outage do not come back in step.
        return self._jitter(ceiling / 2, ceiling)

    async def _retry(self, user_id: str, entry: _Pending, cause: trace.SpanContext) -> None:
        try:
            await self._retry_until_done(user_id, entry, cause)
        finally:
            # Here, not in a done callback: a failure `add`ed after the loop ended must start a new loop.
            if self._pending.get(user_id) is entry:
                del self._pending[user_id]

    async def _retry_until_done(self, user_id: str, entry: _Pending, cause: trace.SpanContext) -> None:
        failures = 0
        while True:
            await self._sleep(max(0.0, min(self._delay(failures), entry.deadline - self._clock())))
            marks = entry.marks
            with self._tracer.start_as_current_span(
                    "router.invalidate_retry", attributes={"alice.invalidation.attempt": failures + 1},
                    links=[trace.Link(cause)] if cause.is_valid else None) as span:
                try:
                    await self._cache.invalidate(user_id, self._settings.attempt_timeout_s)
                except DownstreamError as error:
                    span.set_attribute("alice.error", error.code)
                    failures += 1
                    if self._clock() >= entry.deadline:
                        self._attempts.add(1, {"alice.invalidation.outcome": "gave_up"})
                        log.warning("cache invalidation still failing after %d retries (%s); giving up, the "
                                    "cached answers it was meant to delete have expired", failures, error.code)
                        return
                    self._attempts.add(1, {"alice.invalidation.outcome": "failed"})
                    continue
            self._attempts.add(1, {"alice.invalidation.outcome": "ok"})
            if entry.marks == marks:
                log.info("cache invalidation succeeded after %d failed retries", failures)
                return
            # Another change failed to invalidate while this call ran: it may have missed that change's entries.
            failures = 0


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and (error := task.exception()) is not None:
        log.error("cache invalidation retry stopped by an unexpected error", exc_info=error)
