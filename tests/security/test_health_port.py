"""The plaintext health-only port next to a mutual-TLS service port: probes get health and nothing else."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from security_helpers import server_tls_env

from alice.nlu.v1 import nlu_service_pb2 as nlu_pb
from alice.nlu.v1 import nlu_service_pb2_grpc as nlu_grpc
from alice.runtime.config import ServerSettings, TlsSettings
from alice.runtime.server import ServiceHost
from alice.runtime.telemetry import Telemetry

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
NLU = "alice.nlu.v1.NluService"


class EchoNlu(nlu_grpc.NluServiceServicer):
    async def Parse(self, request: nlu_pb.ParseRequest, context: grpc.aio.ServicerContext[Any, Any]
                    ) -> nlu_pb.ParseResponse:
        return nlu_pb.ParseResponse(confidence=0.5)


def _settings(certs: dict[str, Path], drain_delay_s: float = 0.0) -> ServerSettings:
    tls = TlsSettings(certs["nlu"], certs["nlu-key"], certs["client-ca"])
    return ServerSettings("alice-nlu", "127.0.0.1", 0, 1.0, drain_delay_s, 1 << 20, 100, "INFO", "text", tls,
                          require_deadline=True, health_port=0)


@pytest.fixture
async def host(make_telemetry: Callable[[str], Telemetry], certs: dict[str, Path]) -> AsyncIterator[ServiceHost]:
    running = ServiceHost(_settings(certs, drain_delay_s=0.3), make_telemetry("alice-nlu"), [NLU])
    nlu_grpc.add_NluServiceServicer_to_server(EchoNlu(), running.server)  # type: ignore[abstract]
    await running.start()
    yield running
    assert running.health_server is not None
    # Stopping twice is harmless: some tests have already shut the host down.
    await running.server.stop(None)
    await running.health_server.stop(None)


async def _check(port: int, service: str = "") -> int:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service),
                                                                timeout=2)
    return int(reply.status)


def _mtls(certs: dict[str, Path]) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(root_certificates=certs["ca"].read_bytes(),
                                        private_key=certs["router-client-key"].read_bytes(),
                                        certificate_chain=certs["router-client"].read_bytes())


async def test_health_port_follows_readiness_and_drain(host: ServiceHost) -> None:
    assert host.health_port not in (0, host.port)
    assert await _check(host.health_port) == NOT_SERVING
    assert await _check(host.health_port, NLU) == NOT_SERVING
    await host.set_serving()
    assert await _check(host.health_port) == SERVING
    assert await _check(host.health_port, NLU) == SERVING
    shutdown = asyncio.create_task(host.shutdown())
    await asyncio.sleep(0.1)
    assert await _check(host.health_port) == NOT_SERVING  # during the drain delay, like the main port
    await shutdown
    with pytest.raises(grpc.aio.AioRpcError) as closed:  # stopped together with the main server
        await _check(host.health_port)
    assert closed.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_health_port_serves_nothing_but_health(host: ServiceHost) -> None:
    await host.set_serving()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{host.health_port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as parse:
            await nlu_grpc.NluServiceStub(channel).Parse(nlu_pb.ParseRequest(text="hej"), timeout=2)
        assert parse.value.code() == grpc.StatusCode.UNIMPLEMENTED
        with pytest.raises(grpc.aio.AioRpcError) as listing:
            stream = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=2)
            async for _ in stream:
                pass
        assert listing.value.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_main_port_still_requires_mutual_tls(host: ServiceHost, certs: dict[str, Path]) -> None:
    await host.set_serving()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{host.port}") as plaintext:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await health_pb2_grpc.HealthStub(plaintext).Check(health_pb2.HealthCheckRequest(), timeout=2)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    async with grpc.aio.secure_channel(f"127.0.0.1:{host.port}", _mtls(certs)) as channel:
        reply = await nlu_grpc.NluServiceStub(channel).Parse(nlu_pb.ParseRequest(text="hej"), timeout=2)
        assert reply.confidence == 0.5


async def test_health_port_must_be_free(make_telemetry: Callable[[str], Telemetry], certs: dict[str, Path],
                                        host: ServiceHost) -> None:
    """A port taken by someone else stops the start (no silent sharing: SO_REUSEPORT is off)."""
    clash = ServiceHost(replace(_settings(certs), health_port=host.health_port), make_telemetry("alice-nlu"), [NLU])
    with pytest.raises(RuntimeError, match="Failed to bind"):
        await clash.start()
    await clash.server.stop(None)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_the_real_nlu_configured_from_its_environment(make_telemetry: Callable[[str], Telemetry],
                                                           certs: dict[str, Path]) -> None:
    """The settings the tls component gives a pod, on the real NLU service: health on HEALTH_PORT, Parse over mTLS."""
    from nlu_svc.config import Config
    from nlu_svc.server import build

    health_port = _free_port()
    env = {"GRPC_PORT": "0", "HEALTH_PORT": str(health_port), "REQUIRE_DEADLINE": "true", "DRAIN_DELAY_S": "0",
           "GRACE_PERIOD_S": "1", **server_tls_env(certs, "nlu", mtls=True)}
    nlu = await build(Config.from_env(env), make_telemetry("alice-nlu"))
    try:
        assert nlu.host.health_port == health_port
        assert await _check(health_port, NLU) == SERVING
        request = nlu_pb.ParseRequest(text="Vad är klockan?")
        request.reference_time.GetCurrentTime()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{health_port}") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as parse:
                await nlu_grpc.NluServiceStub(channel).Parse(request, timeout=2)
            assert parse.value.code() == grpc.StatusCode.UNIMPLEMENTED
        async with grpc.aio.secure_channel(f"127.0.0.1:{nlu.port}", _mtls(certs)) as channel:
            reply = await nlu_grpc.NluServiceStub(channel).Parse(request, timeout=5)
            assert reply.intent and reply.confidence > 0
    finally:
        await nlu.stop()
