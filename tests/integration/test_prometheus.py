"""A real Prometheus server (Debian's `prometheus`) scrapes the router, the real NLU and the real cache.

The LLM here is a fake, so its GenAI metrics are checked on its /metrics endpoint in
tests/unit/llm/test_llm_engine.py and test_llm_scheduler.py instead.
"""

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
import redis.asyncio as aioredis
from fakes import FakeLlm, FakeTools, start_fake

from alice.local.redis_server import RedisServer, free_port
from alice.router.v1 import router_service_pb2 as pb
from alice.router.v1 import router_service_pb2_grpc as pb_grpc
from alice.runtime.config import TelemetrySettings
from alice.runtime.telemetry import Telemetry, setup_telemetry
from cache_svc import server as cache_server
from cache_svc.config import Config as CacheConfig
from nlu_svc import server as nlu_server
from nlu_svc.config import Config as NluConfig
from router_svc.config import Config
from router_svc.server import build

PROMETHEUS = shutil.which("prometheus")
pytestmark = pytest.mark.skipif(PROMETHEUS is None, reason="Debian's prometheus package is not installed")
REDIS_DB = 7
"""A database of the session's Redis of its own, emptied first, so entries of other tests cannot answer here."""


def _telemetry(name: str) -> Telemetry:
    return setup_telemetry(TelemetrySettings(name, None, 1.0, False, False, metrics_port=0))


@pytest.fixture(scope="module")
async def mesh_with_metrics(redis_server: RedisServer, make_telemetry: Callable[[str], Telemetry]
                            ) -> AsyncIterator[tuple[int, dict[str, int]]]:
    """The router, the real NLU and the real cache (each with a scrape endpoint), and a fake LLM.

    Yields the router's port and the metrics port of each service.
    """
    redis_url = f"{redis_server.url}/{REDIS_DB}"
    client = aioredis.Redis.from_url(redis_url)
    await client.flushdb()
    await client.aclose()
    telemetry = {name: _telemetry(f"alice-{name}") for name in ("router", "nlu", "cache")}
    llm = await start_fake("alice-llm", FakeLlm(), make_telemetry("alice-llm"))
    nlu = await nlu_server.build(NluConfig.from_env({"GRPC_PORT": "0", "DRAIN_DELAY_S": "0"}), telemetry["nlu"])
    cache = await cache_server.build(CacheConfig.from_env({"GRPC_PORT": "0", "DRAIN_DELAY_S": "0",
                                                           "REDIS_URL": redis_url}), telemetry["cache"])
    config = Config.from_env({"GRPC_PORT": "0", "AUTH_MODE": "none", "NLU_ADDR": f"127.0.0.1:{nlu.port}",
                              "CACHE_ADDR": f"127.0.0.1:{cache.host.port}", "LLM_ADDR": f"127.0.0.1:{llm.port}"})
    router = await build(config, telemetry["router"], tools=FakeTools())
    yield router.host.port, {name: t.metrics_port for name, t in telemetry.items()}
    await router.host.shutdown(router.close)
    await cache.host.shutdown(cache.close)
    await nlu.stop()
    await llm.shutdown()
    for t in telemetry.values():
        t.shutdown()


def _query(api: str, expression: str) -> list[dict[str, Any]]:
    url = f"{api}/api/v1/query?{urllib.parse.urlencode({'query': expression})}"
    with urllib.request.urlopen(url, timeout=5) as response:
        result: list[dict[str, Any]] = json.load(response)["data"]["result"]
        return result


def _by(series: list[dict[str, Any]], label: str) -> dict[str, float]:
    return {s["metric"].get(label, ""): float(s["value"][1]) for s in series}


async def test_prometheus_scrapes_router_nlu_and_cache_metrics(mesh_with_metrics: tuple[int, dict[str, int]]
                                                               ) -> None:
    router_port, metrics_ports = mesh_with_metrics
    async with grpc.aio.insecure_channel(f"127.0.0.1:{router_port}") as channel:
        stub = pb_grpc.RouterServiceStub(channel)
        for text in ("vad är klockan", "väder i göteborg på fredag", "väder i göteborg på fredag"):
            await stub.Ask(pb.AskRequest(text=text, user_id="u1"), timeout=5)
    workdir = Path(tempfile.mkdtemp(prefix="alice-prom-"))
    jobs = "".join(f"  - job_name: alice-{name}\n    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"
                   for name, port in metrics_ports.items())
    (workdir / "prometheus.yml").write_text(f"global: {{scrape_interval: 1s}}\nscrape_configs:\n{jobs}")
    web = free_port()
    assert PROMETHEUS is not None
    process = await asyncio.create_subprocess_exec(
        PROMETHEUS, f"--config.file={workdir / 'prometheus.yml'}", f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{web}", stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    api = f"http://127.0.0.1:{web}"
    try:
        # Every job scraped at least once: then each service's series are there.
        deadline = time.monotonic() + 60
        jobs_up: dict[str, float] = {}
        while time.monotonic() < deadline and len(jobs_up) < len(metrics_ports):
            await asyncio.sleep(1)
            try:
                jobs_up = {job: up for job, up in _by(await asyncio.to_thread(_query, api, "up"), "job").items()
                           if up == 1.0}
            except OSError:
                continue
        assert set(jobs_up) == {f"alice-{name}" for name in metrics_ports}

        async def query(expression: str) -> list[dict[str, Any]]:
            return await asyncio.to_thread(_query, api, expression)

        routes = _by(await query("alice_router_request_duration_milliseconds_count"), "alice_route")
        assert routes == {"fast": 2.0, "cache": 1.0}
        breakers = await query("alice_breaker_state")
        assert {s["metric"]["alice_breaker_name"] for s in breakers} == {"nlu", "cache", "llm.micro", "llm.planner"}
        buckets = await query("alice_router_request_duration_milliseconds_bucket")
        assert {s["metric"]["le"] for s in buckets} >= {"1.0", "5000.0", "+Inf"}

        # NLU: parses and confidence per intent (the third request may be answered by the alias before its parse).
        parses = _by(await query("sum by (alice_intent) (alice_nlu_confidence_count)"), "alice_intent")
        assert set(parses) == {"time.now", "weather.lookup"} and parses["weather.lookup"] >= 1
        confidence = await query('alice_nlu_confidence_bucket{alice_intent="weather.lookup"}')
        assert {s["metric"]["le"] for s in confidence} >= {"0.5", "0.9", "1.0", "+Inf"}
        assert await query("alice_nlu_parse_duration_milliseconds_count")

        # Cache: the alias hit of the repeated question, misses before it, the stored weather answer.
        alias = _by(await query('alice_cache_lookups_total{alice_cache_key="alias",alice_cache_tier="l1"}'),
                    "alice_cache_result")
        assert alias["hit"] == 1.0 and alias["miss"] >= 2.0
        assert _by(await query('alice_cache_lookups_total{alice_cache_key="canonical"}'), "alice_cache_result")
        stores = _by(await query('alice_cache_stores_total{alice_cache_tier="l1"}'), "alice_cache_outcome")
        assert stores["stored"] >= 1.0
        latency = await query('alice_cache_lookup_duration_milliseconds_bucket{alice_cache_tier="l1"}')
        assert {s["metric"]["le"] for s in latency} >= {"1.0", "5000.0", "+Inf"}
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)
