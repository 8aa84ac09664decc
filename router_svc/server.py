"""Wiring of the router: channels, breakers, quota, tools, pipeline, monitoring; serve until stopped."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import grpc
import httpx
import redis.asyncio as aioredis
from opentelemetry import trace

from alice.cache.v1 import cache_service_pb2, cache_service_pb2_grpc
from alice.llm.v1 import llm_service_pb2
from alice.nlu.v1 import nlu_service_pb2
from alice.router.v1 import router_service_pb2, router_service_pb2_grpc
from alice.runtime.auth import ApiKeyVerifier, AuthInterceptor, JwtVerifier, Verifier, VerifierChain
from alice.runtime.breaker import BreakerConfig, CircuitBreaker, State, Transition
from alice.runtime.channels import open_channel
from alice.runtime.config import ConfigError
from alice.runtime.errors import Unavailable
from alice.runtime.ratelimit import RateLimitInterceptor, TokenBucketLimiter
from alice.runtime.redis_tracing import TracedRedis, traced
from alice.runtime.server import ServiceHost
from alice.runtime.telemetry import Telemetry, setup_logging, setup_telemetry
from router_svc.config import AuthSettings, Config
from router_svc.downstream import CacheClient, LlmClient, NluClient, is_failure
from router_svc.invalidation import PendingInvalidations
from router_svc.monitoring import Monitor
from router_svc.pipeline import Pipeline, ToolRunner
from router_svc.quota import MicroQuota
from router_svc.service import ForgetCache, ForgetTools, MonitoringServicer, RouterServicer
from router_svc.tools import forget_user
from router_svc.tools.base import storage_retry

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


def build_verifier(settings: AuthSettings) -> Verifier | None:
    """The verifier chain AUTH_MODE asks for (None when authentication is explicitly off)."""
    verifiers: list[Verifier] = []
    try:
        if settings.mode in ("api_key", "both") and settings.api_keys_file is not None:
            verifiers.append(ApiKeyVerifier.from_file(settings.api_keys_file))
        if settings.mode in ("jwt", "both"):
            verifiers.append(JwtVerifier.from_files(
                issuer=settings.issuer, audience=settings.audience, jwks_file=settings.jwks_file,
                public_key_file=settings.jwt_public_key_file, algorithms=settings.jwt_algorithms,
                leeway_s=settings.leeway_s))
    except ValueError as error:
        raise ConfigError(str(error)) from None
    return VerifierChain(verifiers) if verifiers else None


def security_interceptors(settings: AuthSettings) -> list[grpc.aio.ServerInterceptor]:  # type: ignore[type-arg]
    """Authentication first (it establishes the caller), then the per-caller rate limit."""
    verifier = build_verifier(settings)
    limiter = TokenBucketLimiter(settings.rate_per_s, settings.rate_burst)
    auth = [AuthInterceptor(verifier)] if verifier is not None else []
    return [*auth, RateLimitInterceptor(limiter)]


def _forget_cache(channel: grpc.aio.Channel) -> ForgetCache:
    stub = cache_service_pb2_grpc.CacheServiceStub(channel)  # type: ignore[no-untyped-call,unused-ignore]

    async def forget(user_id: str, timeout_s: float) -> int:
        # Not behind the breaker and with no fallback: Forget must either delete or say it did not.
        try:
            reply = await stub.Invalidate(cache_service_pb2.InvalidateRequest(user_id=user_id), timeout=timeout_s)
        except grpc.aio.AioRpcError as error:
            raise Unavailable(f"the cache did not delete the cached answers ({error.code().name}); "
                              "call Forget again") from None
        return int(reply.removed)

    return forget


async def build(config: Config, telemetry: Telemetry, tools: ToolRunner | None = None,
                forget_tools: ForgetTools | None = None) -> Router:
    """A started, SERVING router wired to its downstreams.

    `tools` replaces the Redis tool layer (tests); `forget_tools` then deletes a user's data in it.
    """
    interceptors = security_interceptors(config.auth)  # unreadable key files fail here, before anything opens
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

        redis_client = traced(TracedRedis.from_url(
            config.redis_url,
            socket_timeout=config.redis_timeout_s,
            socket_connect_timeout=config.redis_timeout_s,
            retry=storage_retry(config.budgets.tool_s),  # rides out a Redis restart inside the tool budget
        ), telemetry.provider)
        http = httpx.AsyncClient(timeout=httpx.Timeout(config.budgets.tool_s))
        tools = RedisToolRunner(redis_client, http, config.weather_base_url)
        storage = redis_client

        async def forget_tools_in_redis(user_id: str, timeout_s: float) -> int:
            return await forget_user(storage, user_id, timeout_s=timeout_s)

        forget_tools = forget_tools_in_redis
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
        clarify_min_confidence=config.clarify_min_confidence,
        invalidations=PendingInvalidations(cache, config.invalidation_retry, tracer=telemetry.tracer,
                                           meter=telemetry.meter),
    )
    monitor = Monitor(config.stats_window, config.slo, quota, list(breakers.values()), telemetry.meter)
    host = ServiceHost(config.server, telemetry, [ROUTER, MONITORING],
                       interceptors=interceptors)
    if not config.auth.enabled:
        log.warning("AUTH_MODE=none: callers are not authenticated and the request body names the user")
    router_service_pb2_grpc.add_RouterServiceServicer_to_server(
        RouterServicer(pipeline, monitor, max_chars=config.max_text_chars,
                       default_timeout_s=config.budgets.request_s, auth_required=config.auth.enabled,
                       forget_tools=forget_tools, forget_cache=_forget_cache(channels["cache"])), host.server)
    router_service_pb2_grpc.add_MonitoringServiceServicer_to_server(
        MonitoringServicer(monitor, auth_required=config.auth.enabled), host.server)
    await host.start()
    # SERVING once the downstream channels connect (bounded: degraded modes cover a missing one later).
    for name, channel in channels.items():
        try:
            await asyncio.wait_for(channel.channel_ready(), timeout=5.0)
        except TimeoutError:
            log.warning("%s not reachable at start; serving in degraded mode", name)
    await host.set_serving()

    async def close() -> None:
        await pipeline.aclose()  # first: the invalidation retries stop before the cache channel closes
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

