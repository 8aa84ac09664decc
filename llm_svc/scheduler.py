"""Admission control per model: at most `concurrency` generations at once, a bounded wait queue, deadlines."""

from __future__ import annotations

import asyncio
import time

from alice.runtime.errors import DeadlineExceeded, ResourceExhausted


class Scheduler:
    """A semaphore with a bounded number of waiters.

    `acquire` fails fast with RESOURCE_EXHAUSTED when `max_queue` callers already wait, and with
    DEADLINE_EXCEEDED when the caller's deadline passes while waiting. The holder calls `release` exactly
    once, when the generation has really stopped (for the embedded back end: when its worker thread is done).
    """

    def __init__(self, name: str, concurrency: int = 1, max_queue: int = 4) -> None:
        if concurrency < 1 or max_queue < 0:
            raise ValueError("concurrency must be >= 1 and max_queue >= 0")
        self.name = name
        self._slots = asyncio.Semaphore(concurrency)
        self._max_queue = max_queue
        self._waiting = 0

    @property
    def waiting(self) -> int:
        return self._waiting

    async def acquire(self, deadline: float | None) -> float:
        """Wait for a slot; returns the time spent waiting in ms. `deadline` is on the time.monotonic() clock."""
        started = time.monotonic()
        if not self._slots.locked():
            await self._slots.acquire()
            return (time.monotonic() - started) * 1000
        if self._waiting >= self._max_queue:
            raise ResourceExhausted(f"model {self.name} is busy: {self._waiting} requests already queued")
        timeout = None if deadline is None else deadline - started
        if timeout is not None and timeout <= 0:
            raise DeadlineExceeded(f"deadline passed before model {self.name} was free")
        self._waiting += 1
        try:
            await asyncio.wait_for(self._slots.acquire(), timeout)
        except TimeoutError:
            raise DeadlineExceeded(f"deadline passed while waiting for model {self.name}") from None
        finally:
            self._waiting -= 1
        return (time.monotonic() - started) * 1000

    def release(self) -> None:
        self._slots.release()
