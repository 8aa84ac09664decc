"""A real Prometheus server (Debian's `prometheus`) scrapes the router's metrics endpoint."""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from fakes import FakeCache, FakeLlm, FakeNlu, FakeTools, start_fake

from alice.local.redis_server import free_port
from alice.router.v1 import router_service_pb2 as pb
from alice.router.v1 import router_service_pb2_grpc as pb_grpc
from alice.runtime.config import TelemetrySettings
from alice.runtime.telemetry import Telemetry, setup_telemetry
from router_svc.config import Config
from router_svc.server import build

PROMETHEUS = shutil.which("prometheus")
pytestmark = pytest.mark.skipif(PROMETHEUS is None, reason="Debian's prometheus package is not installed")


@pytest.fixture(scope="module")
async def router_with_metrics(make_telemetry: Callable[[str], Telemetry]) -> AsyncIterator[tuple[int, int]]:
    hosts = [await start_fake("alice-nlu", FakeNlu(), make_telemetry("alice-nlu")),
             await start_fake("alice-cache", FakeCache(), make_telemetry("alice-cache")),
             await start_fake("alice-llm", FakeLlm(), make_telemetry("alice-llm"))]
    telemetry = setup_telemetry(TelemetrySettings("alice-router", None, 1.0, False, False, metrics_port=0))
    config = Config.from_env({"GRPC_PORT": "0", "AUTH_MODE": "none", "NLU_ADDR": f"127.0.0.1:{hosts[0].port}",
                              "CACHE_ADDR": f"127.0.0.1:{hosts[1].port}", "LLM_ADDR": f"127.0.0.1:{hosts[2].port}"})
    router = await build(config, telemetry, tools=FakeTools())
    yield router.host.port, telemetry.metrics_port
    await router.host.shutdown(router.close)
    telemetry.shutdown()
    for host in hosts:
        await host.shutdown()


def _query(api: str, expression: str) -> list[dict[str, Any]]:
    url = f"{api}/api/v1/query?{urllib.parse.urlencode({'query': expression})}"
    with urllib.request.urlopen(url, timeout=5) as response:
        result: list[dict[str, Any]] = json.load(response)["data"]["result"]
        return result


async def test_prometheus_scrapes_router_request_metrics(router_with_metrics: tuple[int, int]) -> None:
    router_port, metrics_port = router_with_metrics
    async with grpc.aio.insecure_channel(f"127.0.0.1:{router_port}") as channel:
        stub = pb_grpc.RouterServiceStub(channel)
        for text in ("vad är klockan", "väder i göteborg på fredag", "väder i göteborg på fredag"):
            await stub.Ask(pb.AskRequest(text=text, user_id="u1"), timeout=5)
    workdir = Path(tempfile.mkdtemp(prefix="alice-prom-"))
    (workdir / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: alice-router\n    static_configs: [{{targets: ['127.0.0.1:{metrics_port}']}}]\n")
    web = free_port()
    assert PROMETHEUS is not None
    process = await asyncio.create_subprocess_exec(
        PROMETHEUS, f"--config.file={workdir / 'prometheus.yml'}", f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{web}", stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    api = f"http://127.0.0.1:{web}"
    try:
        deadline = time.monotonic() + 60
        series: list[dict[str, Any]] = []
        while time.monotonic() < deadline and not series:
            await asyncio.sleep(1)
            try:
                series = await asyncio.to_thread(_query, api, "alice_router_request_duration_milliseconds_count")
            except OSError:
                continue
        routes = {s["metric"]["alice_route"]: float(s["value"][1]) for s in series}
        assert routes == {"fast": 2.0, "cache": 1.0}
        breakers = await asyncio.to_thread(_query, api, "alice_breaker_state")
        assert {s["metric"]["alice_breaker_name"] for s in breakers} == {"nlu", "cache", "llm.micro", "llm.planner"}
        buckets = await asyncio.to_thread(_query, api, "alice_router_request_duration_milliseconds_bucket")
        assert {s["metric"]["le"] for s in buckets} >= {"1.0", "5000.0", "+Inf"}
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)
