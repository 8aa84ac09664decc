"""Client-side round robin, proven locally: two real NLU processes behind one multi-address target.

This is what the router does in Kubernetes with `dns:///nlu-headless:50052` (the DNS name resolves to every
ready pod); here the static `ipv4:` resolver stands in for DNS. The count per process is an honest server-side
observable: each process exports one SERVER span per Parse call to an OTLP receiver run by this test.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.trace.v1 import trace_pb2

from alice.local.mesh import wait_serving
from alice.local.redis_server import free_port
from alice.nlu.v1 import nlu_service_pb2, nlu_service_pb2_grpc
from alice.runtime.channels import open_channel
from alice.runtime.config import ClientSettings, Env
from alice.runtime.telemetry import Telemetry

NLU_SERVICE = nlu_service_pb2.DESCRIPTOR.services_by_name["NluService"].full_name
PARSE = f"/{NLU_SERVICE}/Parse"
TEXTS = ("vad är klockan", "boka möte med Anna imorgon kl 14", "hur blir vädret i Göteborg på lördag",
         "sätt en timer på tio minuter", "skriv ett mejl till lisa@example.se om mötet")
CALLS = 200
CONCURRENCY = 4


class SpanCounter(trace_service_pb2_grpc.TraceServiceServicer):
    """A minimal OTLP trace receiver: counts SERVER spans of NluService/Parse per `service.name`."""

    def __init__(self) -> None:
        self.parse_calls: Counter[str] = Counter()

    async def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        for resource_spans in request.resource_spans:
            service = next((a.value.string_value for a in resource_spans.resource.attributes
                            if a.key == "service.name"), "?")
            for scope_spans in resource_spans.scope_spans:
                self.parse_calls[service] += sum(
                    1 for span in scope_spans.spans
                    if span.name == PARSE and span.kind == trace_pb2.Span.SPAN_KIND_SERVER
                )
        return trace_service_pb2.ExportTraceServiceResponse()

    async def wait_until(self, done: Callable[[Counter[str]], bool], timeout_s: float = 15.0) -> dict[str, int]:
        """The counts once `done(counts)` holds (spans arrive in batches); fails after `timeout_s`."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not done(self.parse_calls):
            if asyncio.get_running_loop().time() > deadline:
                pytest.fail(f"spans still missing after {timeout_s} s: {dict(self.parse_calls)}")
            await asyncio.sleep(0.05)
        return dict(self.parse_calls)


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[SpanCounter, int]]:
    counter = SpanCounter()
    server = grpc.aio.server()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(counter, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield counter, port
    await server.stop(None)


@pytest.fixture
def start_nlu(tmp_path: Path) -> Iterator[Callable[[str, int], subprocess.Popen[bytes]]]:
    """Start `python -m nlu_svc` (the real service) on a free loopback port, exporting spans to `otlp_port`."""
    processes: list[subprocess.Popen[bytes]] = []

    def start(name: str, otlp_port: int) -> subprocess.Popen[bytes]:
        port = free_port()
        env = {
            **os.environ, "GRPC_HOST": "127.0.0.1", "GRPC_PORT": str(port), "DRAIN_DELAY_S": "0",
            "GRACE_PERIOD_S": "1", "LOG_LEVEL": "WARNING", "NLU_THREADS": "1", "OTEL_SERVICE_NAME": name,
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{otlp_port}", "OTEL_BSP_SCHEDULE_DELAY": "100",
        }
        with (tmp_path / f"{name}.log").open("wb") as log:
            process = subprocess.Popen([sys.executable, "-m", "nlu_svc"], env=env, stdout=log, stderr=log)
        process.port = port  # type: ignore[attr-defined]
        processes.append(process)
        return process

    yield start
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def parse_load(stub: Any, calls: int,
                     on_progress: Callable[[int], None] | None = None) -> list[grpc.StatusCode]:
    """`calls` Parse calls on an asyncio NluServiceStub, CONCURRENCY at a time; the codes of the failed ones."""
    failures: list[grpc.StatusCode] = []
    now = Timestamp()
    now.GetCurrentTime()
    done = 0
    next_call = iter(range(calls))

    async def worker() -> None:
        nonlocal done
        for i in next_call:
            try:
                request = nlu_service_pb2.ParseRequest(text=TEXTS[i % len(TEXTS)], reference_time=now)
                await stub.Parse(request, timeout=5.0)
            except grpc.aio.AioRpcError as error:
                failures.append(error.code())
            done += 1
            if on_progress is not None:
                on_progress(done)

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return failures


async def test_calls_spread_over_both_processes_and_survive_a_kill(
    receiver: tuple[SpanCounter, int],
    start_nlu: Callable[[str, int], subprocess.Popen[bytes]],
    make_telemetry: Callable[[str], Telemetry],
) -> None:
    counter, otlp_port = receiver
    first, second = start_nlu("nlu-a", otlp_port), start_nlu("nlu-b", otlp_port)
    for process in (first, second):
        await asyncio.to_thread(wait_serving, f"127.0.0.1:{process.port}", 60.0, process)  # type: ignore[attr-defined]

    target = f"ipv4:127.0.0.1:{first.port},127.0.0.1:{second.port}"  # type: ignore[attr-defined]
    settings = ClientSettings.from_env(Env({}))
    channel = open_channel(target, [NLU_SERVICE], settings, make_telemetry("rr-client"))
    try:
        stub = nlu_service_pb2_grpc.NluServiceStub(channel)

        failures = await parse_load(stub, CALLS)
        assert failures == []
        served = await counter.wait_until(lambda counts: sum(counts.values()) >= CALLS)
        assert set(served) == {"nlu-a", "nlu-b"}, served
        # round_robin picks the next READY subchannel per call: close to half each.
        assert min(served.values()) >= 0.35 * CALLS, served

        # Kill one process a quarter into the next load run: calls in flight on it fail with UNAVAILABLE
        # before any response, so the channel's retry policy replays them on the survivor.
        def kill_second(done: int) -> None:
            if done == CALLS // 4 and second.poll() is None:
                second.send_signal(signal.SIGKILL)
                # Blocks the loop until it is gone, so no call is sent to it in between.
                second.wait(timeout=10)

        before = counter.parse_calls["nlu-a"]
        failures = await parse_load(stub, CALLS, on_progress=kill_second)
        assert second.returncode == -signal.SIGKILL
        assert failures == [], f"{len(failures)} calls failed beyond the retry policy: {Counter(failures)}"
        # Every call after the kill went to the survivor, except those the killed process had answered already
        # (at most the other CONCURRENCY - 1 in flight; its unflushed spans died with it).
        after_kill = CALLS - CALLS // 4
        await counter.wait_until(lambda counts: counts["nlu-a"] - before >= after_kill - (CONCURRENCY - 1))
    finally:
        await channel.close(grace=None)
