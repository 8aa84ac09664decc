"""Small in-process fakes of the NLU, cache and LLM services, for router and runtime tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field

import grpc

from alice.cache.v1 import cache_service_pb2 as cache_pb
from alice.cache.v1 import cache_service_pb2_grpc as cache_grpc
from alice.common.v1 import types_pb2
from alice.llm.v1 import llm_service_pb2 as llm_pb
from alice.llm.v1 import llm_service_pb2_grpc as llm_grpc
from alice.nlu.v1 import nlu_service_pb2 as nlu_pb
from alice.nlu.v1 import nlu_service_pb2_grpc as nlu_grpc
from alice.runtime.config import ServerSettings
from alice.runtime.server import ServiceHost
from alice.runtime.telemetry import Telemetry
from alice.taxonomy import CacheTier, Intent, Route
from router_svc.pipeline import AskInput, ToolOutcome


def settings(name: str, port: int = 0, grace_s: float = 2.0, drain_delay_s: float = 0.0,
             require_deadline: bool = False) -> ServerSettings:
    return ServerSettings(service_name=name, host="127.0.0.1", port=port, grace_s=grace_s,
                          drain_delay_s=drain_delay_s, max_message_bytes=1 << 20, max_concurrent_streams=100,
                          log_level="INFO", log_format="text", require_deadline=require_deadline)


class FakeNlu(nlu_grpc.NluServiceServicer):
    """Weather for texts with "väder", time otherwise; a fixed embedding."""

    def __init__(self) -> None:
        self.delay_s = 0.0
        self.calls = 0

    async def Parse(self, request: nlu_pb.ParseRequest, context: grpc.aio.ServicerContext) -> nlu_pb.ParseResponse:
        self.calls += 1
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if "väd" in request.text:
            slots = types_pb2.Slots(city="Göteborg", date=types_pb2.LocalDate(year=2026, month=3, day=13))
            return nlu_pb.ParseResponse(intent=Intent.INTENT_WEATHER_LOOKUP, confidence=0.97, slots=slots,
                                        route_hint=Route.ROUTE_FAST)
        if "huvudstad" in request.text:
            return nlu_pb.ParseResponse(intent=Intent.INTENT_INFO_QUERY, confidence=0.9,
                                        route_hint=Route.ROUTE_PLANNER)
        return nlu_pb.ParseResponse(intent=Intent.INTENT_TIME_NOW, confidence=0.99, route_hint=Route.ROUTE_FAST)

    async def Embed(self, request: nlu_pb.EmbedRequest, context: grpc.aio.ServicerContext) -> nlu_pb.EmbedResponse:
        return nlu_pb.EmbedResponse(embedding=[1.0, 0.0, 0.0], model="fake")


@dataclass
class FakeCache(cache_grpc.CacheServiceServicer):
    """An exact dictionary cache keyed on the text alias and on (intent, slots); like the real one, it never
    stores time.now answers."""

    entries: dict[bytes, cache_pb.CachedAnswer] = field(default_factory=dict)
    lookups: int = 0
    stores: int = 0

    @staticmethod
    def _key(query: cache_pb.CacheQuery) -> bytes:
        if not query.intent:
            return b"alias:" + query.text.lower().encode() + query.reference_date.SerializeToString()
        return query.intent.to_bytes(2, "big") + query.slots.SerializeToString(deterministic=True)

    async def Lookup(self, request: cache_pb.LookupRequest, context: grpc.aio.ServicerContext
                     ) -> cache_pb.LookupResponse:
        self.lookups += 1
        answer = self.entries.get(self._key(request.query))
        if answer is None or CacheTier.CACHE_TIER_L1_EXACT not in request.tiers:
            return cache_pb.LookupResponse(hit=False)
        return cache_pb.LookupResponse(hit=True, tier=CacheTier.CACHE_TIER_L1_EXACT, similarity=1.0, answer=answer)

    async def Store(self, request: cache_pb.StoreRequest, context: grpc.aio.ServicerContext) -> cache_pb.StoreResponse:
        self.stores += 1
        if request.query.intent == Intent.INTENT_TIME_NOW:
            return cache_pb.StoreResponse(outcome=cache_pb.STORE_OUTCOME_SKIPPED_POLICY)
        self.entries[self._key(request.query)] = request.answer
        alias = cache_pb.CacheQuery(text=request.query.text, reference_date=request.query.reference_date)
        self.entries[self._key(alias)] = request.answer
        return cache_pb.StoreResponse(outcome=cache_pb.STORE_OUTCOME_STORED)


class FakeLlm(llm_grpc.LlmServiceServicer):
    async def GenerateStream(self, request: llm_pb.GenerateStreamRequest, context: grpc.aio.ServicerContext
                             ) -> AsyncIterator[llm_pb.GenerateStreamResponse]:
        for piece in ("Huvudstaden ", "är Oslo."):
            yield llm_pb.GenerateStreamResponse(delta=piece)
        yield llm_pb.GenerateStreamResponse(stats=llm_pb.GenerationStats(model="fake", ttft_ms=5, total_ms=10))


class FakeTools:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, object], str]] = []

    async def run(self, intent: str, args: Mapping[str, object], request: AskInput,
                  timeout_s: float) -> ToolOutcome:
        self.calls.append((intent, dict(args), request.user_id))
        if intent == "time.now":
            return ToolOutcome(reply=f"Klockan är {request.now:%H:%M}.")
        return ToolOutcome(reply="Det blir soligt i Göteborg på fredag.")


async def start_fake(name: str, servicer: object, telemetry: Telemetry) -> ServiceHost:
    """A started, SERVING in-process server for one fake servicer."""
    adders = {FakeNlu: (nlu_grpc.add_NluServiceServicer_to_server, "alice.nlu.v1.NluService"),
              FakeCache: (cache_grpc.add_CacheServiceServicer_to_server, "alice.cache.v1.CacheService"),
              FakeLlm: (llm_grpc.add_LlmServiceServicer_to_server, "alice.llm.v1.LlmService")}
    add, service = adders[type(servicer)]
    host = ServiceHost(settings(name), telemetry, [service])
    add(servicer, host.server)
    await host.start()
    await host.set_serving()
    return host
