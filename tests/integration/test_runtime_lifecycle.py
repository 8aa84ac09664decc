"""Server bootstrap: health transitions, error mapping, graceful SIGTERM with in-flight calls completed."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from fakes import FakeNlu, settings
from grpc_health.v1 import health_pb2, health_pb2_grpc

from alice.nlu.v1 import nlu_service_pb2 as nlu_pb
from alice.nlu.v1 import nlu_service_pb2_grpc as nlu_grpc
from alice.runtime.errors import InvalidArgument, ResourceExhausted
from alice.runtime.server import ServiceHost
from alice.runtime.telemetry import Telemetry

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class Failing(FakeNlu):
    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    async def Parse(self, request: nlu_pb.ParseRequest, context: grpc.aio.ServicerContext) -> nlu_pb.ParseResponse:
        raise self.error


async def _health(port: int, service: str = "") -> int:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service),
                                                                timeout=2)
        return int(reply.status)


async def test_health_is_not_serving_until_ready_then_serving_then_draining(
        make_telemetry: Callable[[str], Telemetry]) -> None:
    host = ServiceHost(settings("alice-t", drain_delay_s=0.3), make_telemetry("alice-t"), ["alice.nlu.v1.NluService"])
    nlu_grpc.add_NluServiceServicer_to_server(FakeNlu(), host.server)
    port = await host.start()
    assert await _health(port) == NOT_SERVING
    assert await _health(port, "alice.nlu.v1.NluService") == NOT_SERVING
    await host.set_serving()
    assert await _health(port, "alice.nlu.v1.NluService") == SERVING
    shutdown = asyncio.create_task(host.shutdown())
    await asyncio.sleep(0.05)
    assert await _health(port) == NOT_SERVING  # still answering during the drain delay
    await shutdown


@pytest.mark.parametrize(
    ("error", "code"),
    [(InvalidArgument("text is empty"), grpc.StatusCode.INVALID_ARGUMENT),
     (ResourceExhausted("queue is full"), grpc.StatusCode.RESOURCE_EXHAUSTED)],
    ids=["invalid-argument", "resource-exhausted"],
)
async def test_service_errors_map_to_their_status(make_telemetry: Callable[[str], Telemetry], error: Exception,
                                                  code: grpc.StatusCode) -> None:
    host = ServiceHost(settings("alice-e"), make_telemetry("alice-e"), ["alice.nlu.v1.NluService"])
    nlu_grpc.add_NluServiceServicer_to_server(Failing(error), host.server)
    port = await host.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await nlu_grpc.NluServiceStub(channel).Parse(nlu_pb.ParseRequest(text="x"), timeout=2)
        assert raised.value.code() == code and raised.value.details() == str(error)
    finally:
        await host.shutdown()


def test_sigterm_drains_in_flight_calls_within_the_grace_period() -> None:
    here = Path(__file__).parent
    env = {**os.environ, "SLOW_S": "1.0", "GRACE_S": "5", "PYTHONPATH": f"{here}:{os.environ.get('PYTHONPATH', '')}"}
    process = subprocess.Popen([sys.executable, str(here / "slow_server.py")], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = nlu_grpc.NluServiceStub(channel).Parse.future(nlu_pb.ParseRequest(text="hej"), timeout=10)
            time.sleep(0.2)  # the call is in flight
            sent = time.monotonic()
            process.send_signal(signal.SIGTERM)
            time.sleep(0.1)
            health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
            assert health.status == NOT_SERVING
            assert call.result().intent  # completed, not cancelled
        assert process.wait(timeout=10) == 0
        assert time.monotonic() - sent < 5 + 0.5 + 1.0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


async def test_a_call_without_deadline_is_refused_when_required(make_telemetry: Callable[[str], Telemetry]) -> None:
    host = ServiceHost(settings("alice-d", require_deadline=True), make_telemetry("alice-d"),
                       ["alice.nlu.v1.NluService"])
    nlu_grpc.add_NluServiceServicer_to_server(FakeNlu(), host.server)
    port = await host.start()
    await host.set_serving()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = nlu_grpc.NluServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await stub.Parse(nlu_pb.ParseRequest(text="hej"))
            assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "deadline" in (raised.value.details() or "")
            assert (await stub.Parse(nlu_pb.ParseRequest(text="hej"), timeout=2)).intent
        assert await _health(port) == SERVING  # probes need no deadline
    finally:
        await host.shutdown()
