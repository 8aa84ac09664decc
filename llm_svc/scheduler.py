"""Admission control per model: at most `concurrency` generations at once, a bounded wait queue, deadlines."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from opentelemetry import metrics

from alice.runtime.errors import DeadlineExceeded, ResourceExhausted


@dataclass(frozen=True)
class QueueMetrics:
    """The schedulers' instruments: created once per service and shared by its schedulers."""

    depth: metrics.UpDownCounter
    rejections: metrics.Counter

    @classmethod
    def create(cls, meter: metrics.Meter) -> QueueMetrics:
        return cls(
            meter.create_up_down_counter("alice.llm.queue.depth", unit="{request}",
                                         description="Requests waiting for a generation slot"),
            meter.create_counter("alice.llm.queue.rejections", unit="{request}",
                                 description="Requests refused by admission control (busy: queue full; deadline)"),
        )


class Scheduler:
    """A semaphore with a bounded number of waiters.

    `acquire` fails fast with RESOURCE_EXHAUSTED when `max_queue` callers already wait, and with
    DEADLINE_EXCEEDED when the caller's deadline passes while waiting. The holder calls `release` exactly
    once, when the generation has really stopped (for the embedded back end: when its worker thread is done).
    """

    def __init__(self, name: str, concurrency: int = 1, max_queue: int = 4,
                 instruments: QueueMetrics | None = None) -> None:
        if concurrency < 1 or max_queue < 0:
            raise ValueError("concurrency must be >= 1 and max_queue >= 0")
        self.name = name
        self._slots = asyncio.Semaphore(concurrency)
        self._max_queue = max_queue
        self._waiting = 0
        self._instruments = instruments or QueueMetrics.create(metrics.NoOpMeter("alice"))
        self._labels = {"gen_ai.request.model": name}

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
            self._reject("busy")
            raise ResourceExhausted(f"model {self.name} is busy: {self._waiting} requests already queued")
        timeout = None if deadline is None else deadline - started
        if timeout is not None and timeout <= 0:
            self._reject("deadline")
            raise DeadlineExceeded(f"deadline passed before model {self.name} was free")
        self._waiting += 1
        self._instruments.depth.add(1, self._labels)
        try:
            await asyncio.wait_for(self._slots.acquire(), timeout)
        except TimeoutError:
            self._reject("deadline")
            raise DeadlineExceeded(f"deadline passed while waiting for model {self.name}") from None
        finally:
            self._waiting -= 1
            self._instruments.depth.add(-1, self._labels)
        return (time.monotonic() - started) * 1000

    def _reject(self, reason: str) -> None:
        self._instruments.rejections.add(1, self._labels | {"alice.llm.reason": reason})

    def release(self) -> None:
        self._slots.release()
