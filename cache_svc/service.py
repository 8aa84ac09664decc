"""Cache servicer: translates protos to the domain and back."""

from __future__ import annotations

from typing import Any

import grpc

from alice.cache.v1 import cache_service_pb2 as pb
from alice.cache.v1 import cache_service_pb2_grpc
from alice.common.v1 import types_pb2
from alice.runtime.errors import InvalidArgument, Unavailable
from alice.taxonomy import TaxonomyError, intent_name, slots_from_proto, tier_name
from cache_svc.cache import Cache, Failure, LookupResult, Request, StoreOutcome, StoreResult
from cache_svc.config import Limits
from cache_svc.store import StoreUnavailable

_OUTCOMES = {
    StoreOutcome.STORED: pb.STORE_OUTCOME_STORED,
    StoreOutcome.SKIPPED_POLICY: pb.STORE_OUTCOME_SKIPPED_POLICY,
    StoreOutcome.DROPPED_UNAVAILABLE: pb.STORE_OUTCOME_DROPPED_UNAVAILABLE,
}
_TIERS = {"l1": types_pb2.CACHE_TIER_L1_EXACT, "l2": types_pb2.CACHE_TIER_L2_SEMANTIC,
          "l3": types_pb2.CACHE_TIER_L3_NEGATIVE}
DELETE_TIMEOUT_S = 5.0
"""How long a deletion may take when the caller sets no deadline."""
_REPLY_RESERVE_S = 0.05
"""Kept back from the caller's deadline so that UNAVAILABLE reaches it rather than DEADLINE_EXCEEDED."""


def _delete_timeout(context: grpc.aio.ServicerContext[Any, Any]) -> float:
    """A deletion's budget: the caller's deadline (less a reserve for the reply), capped at DELETE_TIMEOUT_S."""
    remaining = context.time_remaining()
    if remaining is None:
        return DELETE_TIMEOUT_S
    return max(0.001, min(DELETE_TIMEOUT_S, remaining - _REPLY_RESERVE_S))


def to_request(query: pb.CacheQuery) -> Request:
    """Proto query -> domain request; INVALID_ARGUMENT for an unknown or unspecified intent."""
    try:
        intent = intent_name(query.intent)
    except TaxonomyError:
        raise InvalidArgument(f"query.intent {query.intent} is unknown or unspecified") from None
    return Request(
        intent=intent,
        slots=slots_from_proto(query.slots),
        text=query.text,
        user_id=query.user_id,
        answer_version=query.answer_version,
        embedding=tuple(query.embedding),
        embedding_model=query.embedding_model,
        reference_date=_date(query),
    )


def _date(query: pb.CacheQuery) -> str:
    if not query.HasField("reference_date"):
        return ""
    d = query.reference_date
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}"


def _tiers(tiers: list[int]) -> set[str]:
    names = {tier_name(t) for t in tiers}
    if "" in names:
        raise InvalidArgument("tiers holds an unspecified or unknown tier")
    return names


def to_lookup_response(result: LookupResult) -> pb.LookupResponse:
    response = pb.LookupResponse(hit=result.hit, rejected_by=result.rejected_by)
    if result.hit:
        response.tier = _TIERS[result.tier]
        response.age.FromNanoseconds(int(result.age_s * 1e9))
        response.similarity = result.similarity
    elif result.rejected_by:
        response.similarity = result.similarity
    if result.answer is not None:
        response.answer.ParseFromString(result.answer)
    if result.failure is not None:
        response.failure.CopyFrom(pb.FailureEntry(downstream=result.failure.downstream, code=result.failure.code,
                                                  message=result.failure.message))
    return response


def _store_response(result: StoreResult, cls: type[pb.StoreResponse] | type[pb.StoreFailureResponse]
                    ) -> pb.StoreResponse | pb.StoreFailureResponse:
    response = cls(outcome=_OUTCOMES[result.outcome])
    if result.outcome is StoreOutcome.STORED:
        response.ttl.FromNanoseconds(int(result.ttl_s * 1e9))
    return response


class CacheServicer(cache_service_pb2_grpc.CacheServiceServicer):
    """The CacheService RPCs over the domain `Cache`."""

    def __init__(self, cache: Cache, limits: Limits) -> None:
        self._cache = cache
        self._limits = limits

    async def Lookup(self, request: pb.LookupRequest, context: grpc.aio.ServicerContext[Any, Any]) -> pb.LookupResponse:
        query = request.query
        if not query.intent and query.HasField("reference_date"):
            # Intent not known yet (the router asks in parallel with the NLU): the L1 text alias.
            if _tiers(list(request.tiers)) - {"l1"}:
                raise InvalidArgument("a lookup without intent consults only the L1 text alias (tiers: L1)")
            result = await self._cache.lookup_alias(query.text, _date(query), query.user_id, query.answer_version)
            return to_lookup_response(result)
        result = await self._cache.lookup(to_request(query), _tiers(list(request.tiers)))
        return to_lookup_response(result)

    async def Store(self, request: pb.StoreRequest, context: grpc.aio.ServicerContext[Any, Any]) -> pb.StoreResponse:
        if not request.HasField("answer"):
            raise InvalidArgument("answer is required")
        size = len(request.answer.text.encode())
        if size > self._limits.max_answer_bytes:
            raise InvalidArgument(f"answer.text is {size} bytes; at most {self._limits.max_answer_bytes}")
        result = await self._cache.store(to_request(request.query), request.answer.SerializeToString())
        response = _store_response(result, pb.StoreResponse)
        assert isinstance(response, pb.StoreResponse)
        return response

    async def StoreFailure(self, request: pb.StoreFailureRequest, context: grpc.aio.ServicerContext[Any, Any]
                           ) -> pb.StoreFailureResponse:
        failure = Failure(request.failure.downstream, request.failure.code, request.failure.message)
        result = await self._cache.store_failure(to_request(request.query), failure)
        response = _store_response(result, pb.StoreFailureResponse)
        assert isinstance(response, pb.StoreFailureResponse)
        return response

    async def ClearFailures(self, request: pb.ClearFailuresRequest, context: grpc.aio.ServicerContext[Any, Any]
                            ) -> pb.ClearFailuresResponse:
        try:
            removed = await self._cache.clear_failures(request.downstream, _delete_timeout(context))
        except StoreUnavailable as error:
            raise Unavailable(f"redis is unavailable: {error}") from None
        return pb.ClearFailuresResponse(removed=removed)

    async def Invalidate(self, request: pb.InvalidateRequest, context: grpc.aio.ServicerContext[Any, Any]
                         ) -> pb.InvalidateResponse:
        intent = ""
        if request.intent:
            try:
                intent = intent_name(request.intent)
            except TaxonomyError:
                raise InvalidArgument(f"intent {request.intent} is unknown") from None
        try:
            removed = await self._cache.invalidate(request.user_id, intent, _delete_timeout(context))
        except StoreUnavailable as error:
            raise Unavailable(f"redis is unavailable: {error}") from None
        return pb.InvalidateResponse(removed=removed)

    async def Stats(self, request: pb.StatsRequest, context: grpc.aio.ServicerContext[Any, Any]) -> pb.StatsResponse:
        snapshot = self._cache.snapshot(reset=request.reset)
        response = pb.StatsResponse(
            hits_by_tier=dict(snapshot.hits_by_tier), misses=snapshot.misses,
            rejections_by_guard=dict(snapshot.rejections_by_guard), stores=snapshot.stores,
            skipped=snapshot.skipped, dropped=snapshot.dropped, redis_up=snapshot.redis_up,
            corrupt_entries=snapshot.corrupt_entries,
        )
        for tier, summary in snapshot.lookup_latency.items():
            response.lookup_latency[tier].CopyFrom(pb.LatencySummary(
                count=summary.count, p50_ms=summary.p50_ms, p95_ms=summary.p95_ms, p99_ms=summary.p99_ms))
        return response
