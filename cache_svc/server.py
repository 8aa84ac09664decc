"""Wiring of the cache service: build dependencies, the server, health; serve until stopped."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from alice.cache.v1 import cache_service_pb2, cache_service_pb2_grpc
from alice.runtime.server import ServiceHost
from alice.runtime.telemetry import Telemetry, setup_logging, setup_telemetry
from cache_svc.cache import Cache
from cache_svc.config import Config
from cache_svc.service import CacheServicer
from cache_svc.store import RedisStore

SERVICE = cache_service_pb2.DESCRIPTOR.services_by_name["CacheService"].full_name
log = logging.getLogger(__name__)


@dataclass
class CacheApp:
    """A started cache service and what it owns; `close` releases all of it."""

    host: ServiceHost
    store: RedisStore
    cache: Cache
    monitor: asyncio.Task[None]

    async def close(self) -> None:
        self.monitor.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.monitor
        await self.store.aclose()


async def build(config: Config, telemetry: Telemetry) -> CacheApp:
    """A started host with the servicer wired.

    Health is SERVING even while Redis is down: the router keeps calling the cache, which answers fast misses
    and drops stores (Stats.redis_up says why); a NOT_SERVING cache would only turn those into errors.
    """
    store = RedisStore(config.redis, tracer_provider=telemetry.provider)
    cache = Cache(store, config.policy(), config.l2, config.limits, telemetry.tracer, meter=telemetry.meter)
    host = ServiceHost(config.server, telemetry, [SERVICE])
    servicer = CacheServicer(cache, config.limits)
    cache_service_pb2_grpc.add_CacheServiceServicer_to_server(servicer, host.server)  # type: ignore[no-untyped-call,unused-ignore]
    if not await store.ping():
        log.warning("redis at %s does not answer yet; serving misses until it does", config.redis.url)
    monitor = asyncio.create_task(store.monitor(), name="redis-monitor")
    await host.start()
    await host.set_serving()
    return CacheApp(host, store, cache, monitor)


async def serve(config: Config) -> None:
    setup_logging(config.server.service_name, config.server.log_level, config.server.log_format)
    telemetry = setup_telemetry(config.telemetry)
    app = await build(config, telemetry)

    async def close() -> None:
        await app.close()
        telemetry.shutdown()

    await app.host.run_until_stopped(close)
