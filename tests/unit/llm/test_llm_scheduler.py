"""Admission control: one generation at a time, a bounded queue, deadlines while waiting."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from alice.runtime.errors import DeadlineExceeded, ResourceExhausted
from llm_svc.scheduler import QueueMetrics, Scheduler


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


async def test_queue_depth_and_rejections_are_metrics(scrape_metrics: Callable[[int], Any]) -> None:
    from alice.runtime.config import TelemetrySettings
    from alice.runtime.telemetry import setup_telemetry

    telemetry = setup_telemetry(TelemetrySettings("alice-llm-test", None, 1.0, False, False, metrics_port=0))
    try:
        scheduler = Scheduler("m", concurrency=1, max_queue=1, instruments=QueueMetrics.create(telemetry.meter))
        await scheduler.acquire(None)
        waiter = asyncio.create_task(scheduler.acquire(None))
        await asyncio.sleep(0)
        with pytest.raises(ResourceExhausted):
            await scheduler.acquire(None)
        waiting = await asyncio.to_thread(scrape_metrics, telemetry.metrics_port)
        scheduler.release()
        await waiter
        with pytest.raises(DeadlineExceeded):
            await scheduler.acquire(time.monotonic() + 0.01)
        scheduler.release()
        done = await asyncio.to_thread(scrape_metrics, telemetry.metrics_port)
    finally:
        telemetry.shutdown()
    assert waiting.value("alice_llm_queue_depth", gen_ai_request_model="m") == 1
    assert done.value("alice_llm_queue_depth", gen_ai_request_model="m") == 0
    rejections = "alice_llm_queue_rejections_total"
    assert done.value(rejections, gen_ai_request_model="m", alice_llm_reason="busy") == 1
    assert done.value(rejections, gen_ai_request_model="m", alice_llm_reason="deadline") == 1
