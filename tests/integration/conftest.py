"""Integration fixtures: the real router in-process with fake downstream services."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import grpc
import pytest
from fakes import FakeCache, FakeLlm, FakeNlu, FakeTools, start_fake

from alice.router.v1 import router_service_pb2_grpc as pb_grpc
from alice.runtime.telemetry import Telemetry
from router_svc.config import Config
from router_svc.server import Router, build


@pytest.fixture(scope="package")
async def fake_mesh(make_telemetry: Callable[[str], Telemetry]) -> AsyncIterator[dict[str, object]]:
    nlu, cache, llm, tools = FakeNlu(), FakeCache(), FakeLlm(), FakeTools()
    hosts = [await start_fake("alice-nlu", nlu, make_telemetry("alice-nlu")),
             await start_fake("alice-cache", cache, make_telemetry("alice-cache")),
             await start_fake("alice-llm", llm, make_telemetry("alice-llm"))]
    config = Config.from_env({
        "GRPC_PORT": "0", "NLU_ADDR": f"127.0.0.1:{hosts[0].port}", "CACHE_ADDR": f"127.0.0.1:{hosts[1].port}",
        "LLM_ADDR": f"127.0.0.1:{hosts[2].port}", "DRAIN_DELAY_S": "0",
        # These tests are about routing; authentication is tested in tests/security with it on.
        "AUTH_MODE": "none", "RATE_LIMIT_PER_S": "10000", "RATE_LIMIT_BURST": "10000",
    })
    router: Router = await build(config, make_telemetry("alice-router"), tools=tools)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{router.host.port}")
    yield {"port": router.host.port, "stub": pb_grpc.RouterServiceStub(channel), "nlu": nlu, "cache": cache,
           "tools": tools,
           "router": router, "channel": channel}
    await channel.close()
    await router.host.shutdown(router.close)
    for host in hosts:
        await host.shutdown()


