"""A dead or slow OTLP collector never slows a request: the spans that cannot go out are dropped and counted."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from fakes import FakeNlu, start_fake
from google.protobuf.timestamp_pb2 import Timestamp

from alice.local.redis_server import free_port
from alice.nlu.v1 import nlu_service_pb2 as pb
from alice.nlu.v1 import nlu_service_pb2_grpc as pb_grpc
from alice.runtime.config import TelemetrySettings
from alice.runtime.telemetry import setup_telemetry


@pytest.fixture(params=["slow", "dead"])
def collector(request: pytest.FixtureRequest) -> Iterator[str]:
    """slow: a listener that never answers (the TCP handshake completes in the kernel backlog, then nothing);
    dead: a port nobody listens on."""
    if request.param == "dead":
        yield f"http://127.0.0.1:{free_port()}"
        return
    with socket.socket() as blackhole:
        blackhole.bind(("127.0.0.1", 0))
        blackhole.listen(64)
        yield f"http://127.0.0.1:{blackhole.getsockname()[1]}"


async def test_unreachable_collector_drops_and_counts_spans_without_slowing_requests(
        collector: str, monkeypatch: pytest.MonkeyPatch, scrape_metrics: Callable[[int], Any]) -> None:
    # A tiny queue so it overflows within a few requests while the exporter waits for the collector.
    monkeypatch.setenv("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", "true")
    telemetry = setup_telemetry(TelemetrySettings("alice-nlu", collector, 1.0, False, False, metrics_port=0,
                                                  export_delay_ms=50, export_queue_size=4, export_batch_size=2))
    host = await start_fake("alice-nlu", FakeNlu(), telemetry)
    try:
        stamp = Timestamp()
        stamp.GetCurrentTime()
        slowest = 0.0
        async with grpc.aio.insecure_channel(f"127.0.0.1:{host.port}") as channel:
            stub = pb_grpc.NluServiceStub(channel)
            for _ in range(30):
                started = time.monotonic()
                await stub.Parse(pb.ParseRequest(text="vad är klockan", reference_time=stamp), timeout=5)
                slowest = max(slowest, time.monotonic() - started)
        # The exporter waits up to its 2 s timeout per batch; a request that waited for it would show that.
        assert slowest < 1.0
        dropped = "alice_telemetry_spans_dropped_total"
        samples = await asyncio.to_thread(scrape_metrics, telemetry.metrics_port)
        assert samples.value(dropped, alice_telemetry_reason="queue_full") >= 10
        deadline = time.monotonic() + 10
        while samples.value(dropped, alice_telemetry_reason="export_failed") < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            samples = await asyncio.to_thread(scrape_metrics, telemetry.metrics_port)
        assert samples.value(dropped, alice_telemetry_reason="export_failed") >= 2
        # The SDK exporter's own self-metrics (opted in by the variable above) land in the same registry; it
        # counts a failed export before our count does, so it is never behind.
        failed_by_sdk = sum(value for name, labels, value in samples.samples
                            if name == "otel_sdk_exporter_span_exported_total" and "error_type" in labels)
        assert failed_by_sdk >= samples.value(dropped, alice_telemetry_reason="export_failed")
    finally:
        await host.shutdown()
        await asyncio.to_thread(telemetry.shutdown)  # joins the exporter thread, which still waits for the collector
