"""Wiring of the router: channels, breakers, quota, tools, pipeline, monitoring; serve until stopped."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
import redis.asyncio as aioredis
from opentelemetry import trace

from alice.cache.v1 import cache_service_pb2
from alice.llm.v1 import llm_service_pb2
from alice.nlu.v1 import nlu_service_pb2
from alice.router.v1 import router_service_pb2, router_service_pb2_grpc
from alice.runtime.breaker import BreakerConfig, CircuitBreaker, State, Transition
from alice.runtime.channels import open_channel
from alice.runtime.server import ServiceHost
from alice.runtime.telemetry import Telemetry, setup_logging, setup_telemetry
from router_svc.config import Config
from router_svc.downstream import CacheClient, LlmClient, NluClient, is_failure
from router_svc.monitoring import Monitor
from router_svc.pipeline import Pipeline, ToolRunner
from router_svc.quota import MicroQuota
from router_svc.service import MonitoringServicer, RouterServicer

log = logging.getLogger(__name__)

ROUTER = router_service_pb2.DESCRIPTOR.services_by_name["RouterService"].full_name
MONITORING = router_service_pb2.DESCRIPTOR.services_by_name["MonitoringService"].full_name
NLU = nlu_service_pb2.DESCRIPTOR.services_by_name["NluService"].full_name
CACHE = cache_service_pb2.DESCRIPTOR.services_by_name["CacheService"].full_name
LLM = llm_service_pb2.DESCRIPTOR.services_by_name["LlmService"].full_name


@dataclass
class Router:
    """A started router and what it owns (closed by `close`)."""

    host: ServiceHost
    monitor: Monitor
    breakers: dict[str, CircuitBreaker]
    close: Callable[[], Awaitable[None]]


def _on_transition(name: str, cache: Callable[[], CacheClient | None]) -> Callable[[Transition], None]:
    """Breaker transitions become log lines and span events; a recovered LLM clears its L3 failures."""

    def handle(transition: Transition) -> None:
        log.warning("breaker %s: %s -> %s (%s)", name, transition.from_state.name, transition.to_state.name,
                    transition.reason)
        trace.get_current_span().add_event("alice.breaker.transition", {
            "alice.breaker.name": name, "alice.breaker.from": transition.from_state.name.lower(),
            "alice.breaker.to": transition.to_state.name.lower(), "alice.breaker.reason": transition.reason})
        client = cache()
        if transition.to_state is State.CLOSED and name.startswith("llm") and client is not None:
            task = asyncio.get_running_loop().create_task(client.clear_failures(name, 0.5))
            # Retrieve the outcome so a failed clear is not reported as a lost exception; L3 entries expire anyway.
            task.add_done_callback(lambda t: t.cancelled() or t.exception())

    return handle


async def build(config: Config, telemetry: Telemetry, tools: ToolRunner | None = None) -> Router:
    """A started, SERVING router wired to its downstreams."""
    holder: dict[str, CacheClient] = {}

    def breaker(name: str, settings: BreakerConfig) -> CircuitBreaker:
        return CircuitBreaker(name, settings, on_transition=_on_transition(name, lambda: holder.get("cache")),
                              is_failure=is_failure)

    breakers = {
        "nlu": breaker("nlu", config.breaker),
        "cache": breaker("cache", config.breaker),
        "llm.micro": breaker("llm.micro", config.llm_breaker),
        "llm.planner": breaker("llm.planner", config.llm_breaker),
    }
    channels = {
        "nlu": open_channel(config.nlu_addr, [NLU], config.client, telemetry),
        "cache": open_channel(config.cache_addr, [CACHE], config.client, telemetry),
        "llm": open_channel(config.llm_addr, [LLM], config.client, telemetry),
    }
    cache = CacheClient(channels["cache"], breakers["cache"])
    holder["cache"] = cache
    redis_client: aioredis.Redis | None = None
    http: httpx.AsyncClient | None = None
    if tools is None:
        from router_svc.toolrunner import RedisToolRunner

        redis_client = aioredis.Redis.from_url(config.redis_url, socket_timeout=config.redis_timeout_s,
                                               socket_connect_timeout=config.redis_timeout_s)
        http = httpx.AsyncClient(timeout=httpx.Timeout(config.budgets.tool_s))
        tools = RedisToolRunner(redis_client, http, config.weather_base_url, telemetry.tracer)
    quota = MicroQuota(config.micro_max_share, config.quota_window)
    pipeline = Pipeline(
        nlu=NluClient(channels["nlu"], breakers["nlu"]),
        cache=cache,
        llm=LlmClient(channels["llm"], breakers["llm.micro"], breakers["llm.planner"]),
        tools=tools,
        quota=quota,
        tracer=telemetry.tracer,
        answer_version=config.answer_version,
        nlu_timeout_s=config.budgets.nlu_s,
        cache_timeout_s=config.budgets.cache_s,
        micro_timeout_s=config.budgets.micro_s,
        planner_timeout_s=config.budgets.planner_s,
        tool_timeout_s=config.budgets.tool_s,
        min_fast_confidence=config.min_fast_confidence,
    )
    monitor = Monitor(config.stats_window, config.slo, quota, list(breakers.values()), telemetry.meter)
    host = ServiceHost(config.server, telemetry, [ROUTER, MONITORING])
    router_service_pb2_grpc.add_RouterServiceServicer_to_server(
        RouterServicer(pipeline, monitor, max_chars=config.max_text_chars,
                       default_timeout_s=config.budgets.request_s), host.server)
    router_service_pb2_grpc.add_MonitoringServiceServicer_to_server(MonitoringServicer(monitor), host.server)
    await host.start()
    # SERVING once the downstream channels connect (bounded: degraded modes cover a missing one later).
    for name, channel in channels.items():
        try:
            await asyncio.wait_for(channel.channel_ready(), timeout=5.0)
        except TimeoutError:
            log.warning("%s not reachable at start; serving in degraded mode", name)
    await host.set_serving()

    async def close() -> None:
        for channel in channels.values():
            await channel.close(None)
        if redis_client is not None:
            await redis_client.aclose()
        if http is not None:
            await http.aclose()

    return Router(host, monitor, breakers, close)


async def serve(config: Config) -> None:
    setup_logging(config.server.service_name, config.server.log_level, config.server.log_format)
    telemetry = setup_telemetry(config.telemetry)
    router = await build(config, telemetry)

    async def close() -> None:
        await router.close()
        telemetry.shutdown()

    await router.host.run_until_stopped(close)

