"""Clients of the router's downstreams: every call has a deadline and goes through its circuit breaker."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import grpc

from alice.cache.v1 import cache_service_pb2 as cache_pb
from alice.cache.v1 import cache_service_pb2_grpc as cache_grpc
from alice.llm.v1 import llm_service_pb2 as llm_pb
from alice.llm.v1 import llm_service_pb2_grpc as llm_grpc
from alice.nlu.v1 import nlu_service_pb2 as nlu_pb
from alice.nlu.v1 import nlu_service_pb2_grpc as nlu_grpc
from alice.runtime.breaker import CircuitBreaker, CircuitOpenError

T = TypeVar("T")

# Codes that say the downstream is sick (count toward opening its breaker); the rest are the caller's fault.
FAILURE_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.UNIMPLEMENTED,
    }
)


def is_failure(error: BaseException) -> bool:
    """Breaker failure filter: transport and server trouble count, the caller's bad input does not."""
    if isinstance(error, grpc.aio.AioRpcError):
        return error.code() in FAILURE_CODES
    return isinstance(error, TimeoutError | OSError)


class DownstreamError(Exception):
    """A downstream call failed or was refused by its open breaker; `code` is the gRPC status name."""

    def __init__(self, downstream: str, code: str, message: str) -> None:
        super().__init__(f"{downstream}: {code}: {message}")
        self.downstream = downstream
        self.code = code
        self.message = message


async def guarded(breaker: CircuitBreaker, call: Callable[[], Awaitable[T]]) -> T:
    """Run `call` through `breaker`, turning refusals and RPC errors into DownstreamError."""
    try:
        return await breaker.call(call)
    except CircuitOpenError as error:
        raise DownstreamError(breaker.name, "UNAVAILABLE", f"circuit open ({error})") from None
    except grpc.aio.AioRpcError as error:
        raise DownstreamError(breaker.name, error.code().name, error.details() or "") from None


class NluClient:
    def __init__(self, channel: grpc.aio.Channel, breaker: CircuitBreaker) -> None:
        self._stub = nlu_grpc.NluServiceStub(channel)
        self.breaker = breaker

    async def parse(self, request: nlu_pb.ParseRequest, timeout_s: float) -> nlu_pb.ParseResponse:
        return await guarded(self.breaker, lambda: self._stub.Parse(request, timeout=timeout_s))

    async def embed(self, text: str, timeout_s: float) -> nlu_pb.EmbedResponse:
        return await guarded(self.breaker, lambda: self._stub.Embed(nlu_pb.EmbedRequest(text=text), timeout=timeout_s))


class CacheClient:
    def __init__(self, channel: grpc.aio.Channel, breaker: CircuitBreaker) -> None:
        self._stub = cache_grpc.CacheServiceStub(channel)
        self.breaker = breaker

    async def lookup(self, request: cache_pb.LookupRequest, timeout_s: float) -> cache_pb.LookupResponse:
        return await guarded(self.breaker, lambda: self._stub.Lookup(request, timeout=timeout_s))

    async def store(self, request: cache_pb.StoreRequest, timeout_s: float) -> cache_pb.StoreResponse:
        return await guarded(self.breaker, lambda: self._stub.Store(request, timeout=timeout_s))

    async def store_failure(self, request: cache_pb.StoreFailureRequest, timeout_s: float) -> None:
        await guarded(self.breaker, lambda: self._stub.StoreFailure(request, timeout=timeout_s))

    async def clear_failures(self, downstream: str, timeout_s: float) -> None:
        request = cache_pb.ClearFailuresRequest(downstream=downstream)
        await guarded(self.breaker, lambda: self._stub.ClearFailures(request, timeout=timeout_s))

    async def invalidate(self, user_id: str, timeout_s: float) -> None:
        request = cache_pb.InvalidateRequest(user_id=user_id)
        await guarded(self.breaker, lambda: self._stub.Invalidate(request, timeout=timeout_s))

    async def stats(self, timeout_s: float) -> cache_pb.StatsResponse:
        return await guarded(self.breaker, lambda: self._stub.Stats(cache_pb.StatsRequest(), timeout=timeout_s))


class LlmClient:
    """One channel to the LLM service, one breaker per model role (a slow planner must not stop micro)."""

    def __init__(self, channel: grpc.aio.Channel, micro: CircuitBreaker, planner: CircuitBreaker) -> None:
        self._stub = llm_grpc.LlmServiceStub(channel)
        self.breakers = {llm_pb.MODEL_ROLE_MICRO: micro, llm_pb.MODEL_ROLE_PLANNER: planner}

    async def select_tool(self, request: llm_pb.SelectToolRequest, timeout_s: float) -> llm_pb.SelectToolResponse:
        return await guarded(self.breakers[request.role], lambda: self._stub.SelectTool(request, timeout=timeout_s))

    async def generate_stream(
        self, request: llm_pb.GenerateRequest, timeout_s: float
    ) -> AsyncIterator[llm_pb.GenerateStreamResponse]:
        """Stream a generation; the breaker records the whole stream as one call."""
        breaker = self.breakers[request.role]
        try:
            permit = breaker.try_acquire()
        except CircuitOpenError as error:
            raise DownstreamError(breaker.name, "UNAVAILABLE", f"circuit open ({error})") from None
        try:
            call = self._stub.GenerateStream(llm_pb.GenerateStreamRequest(request=request), timeout=timeout_s)
            async for event in call:
                yield event
        except grpc.aio.AioRpcError as error:
            if is_failure(error):
                permit.failure(error)
            else:
                permit.success()
            raise DownstreamError(breaker.name, error.code().name, error.details() or "") from None
        except BaseException:
            permit.ignore()
            raise
        permit.success()
