"""Admission control: one generation at a time, a bounded queue, deadlines while waiting."""

from __future__ import annotations

import asyncio
import time

import pytest

from alice.runtime.errors import DeadlineExceeded, ResourceExhausted
from llm_svc.scheduler import Scheduler


async def test_queue_full_is_resource_exhausted() -> None:
    scheduler = Scheduler("m", concurrency=1, max_queue=1)
    await scheduler.acquire(None)
    waiter = asyncio.create_task(scheduler.acquire(None))
    await asyncio.sleep(0)
    assert scheduler.waiting == 1
    with pytest.raises(ResourceExhausted, match="busy"):
        await scheduler.acquire(None)
    scheduler.release()
    assert await waiter >= 0
    scheduler.release()


async def test_deadline_while_waiting_is_deadline_exceeded_and_frees_the_queue_place() -> None:
    scheduler = Scheduler("m", concurrency=1, max_queue=2)
    await scheduler.acquire(None)
    with pytest.raises(DeadlineExceeded):
        await scheduler.acquire(time.monotonic() + 0.02)
    assert scheduler.waiting == 0
    with pytest.raises(DeadlineExceeded):
        await scheduler.acquire(time.monotonic() - 1)
    scheduler.release()
    assert await scheduler.acquire(time.monotonic() + 1) < 1000
    scheduler.release()


async def test_zero_queue_admits_only_the_running_call() -> None:
    scheduler = Scheduler("m", concurrency=2, max_queue=0)
    await scheduler.acquire(None)
    await scheduler.acquire(None)
    with pytest.raises(ResourceExhausted):
        await scheduler.acquire(None)
    scheduler.release()
    scheduler.release()
