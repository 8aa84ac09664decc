"""Per-user token-bucket rate limiting as a gRPC server interceptor, with bounded memory."""

from __future__ import annotations

import contextvars
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from alice.runtime.auth import OPEN_METHOD_PREFIXES, current_identity, is_open_method, wrap_handler


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBucketLimiter:
    """One token bucket per key: `rate_per_s` tokens a second, at most `burst` saved up.

    Memory is bounded: a bucket that has refilled completely is indistinguishable from a new one, so idle
    keys are evicted (least recently used first) as calls arrive; beyond `max_keys` the least recently used
    key is evicted even if not full, which can only make the limiter more lenient, never block anyone wrongly.
    """

    def __init__(self, rate_per_s: float, burst: float, *, max_keys: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if rate_per_s <= 0 or burst < 1 or max_keys < 1:
            raise ValueError("rate_per_s must be > 0, burst >= 1 and max_keys >= 1")
        self.rate_per_s, self.burst, self._max_keys = rate_per_s, float(burst), max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._refill_s = self.burst / rate_per_s

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str) -> float:
        """Spend one token of `key`: 0.0 when allowed, else the seconds until a token is available."""
        now = self._clock()
        self._evict(now)
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            bucket = _Bucket(self.burst, now)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate_per_s)
            bucket.updated = now
        self._buckets[key] = bucket  # most recently used last
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate_per_s

    def _evict(self, now: float) -> None:
        while self._buckets:
            key, bucket = next(iter(self._buckets.items()))
            if now - bucket.updated >= self._refill_s or len(self._buckets) >= self._max_keys:
                del self._buckets[key]
            else:
                break


def caller_key(context: grpc.aio.ServicerContext[Any, Any]) -> str:
    """The verified user, or with authentication off the peer's address (all a server knows then)."""
    identity = current_identity()
    if identity is not None:
        return "user:" + identity.user_id
    peer = context.peer() or "unknown"
    # "ipv4:10.0.0.7:53412" -> the host, so one client cannot dodge the limit by opening new connections.
    return "peer:" + peer.rsplit(":", 1)[0]


class RateLimitInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """RESOURCE_EXHAUSTED with a retry hint (message and `retry-after` trailing metadata, in whole seconds)
    once a caller has used up its bucket. Must come after AuthInterceptor, which establishes who the caller is."""

    def __init__(self, limiter: TokenBucketLimiter, open_prefixes: Sequence[str] = OPEN_METHOD_PREFIXES) -> None:
        self._limiter = limiter
        self._open = tuple(open_prefixes)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(handler_call_details)
        if handler is None or is_open_method(handler_call_details.method, self._open):
            return handler
        limiter = self._limiter

        async def check(context: grpc.aio.ServicerContext[Any, Any]) -> contextvars.Token[Any] | None:
            wait_s = limiter.take(caller_key(context))
            if wait_s > 0:
                retry = max(1, math.ceil(wait_s))
                await context.abort(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"rate limit: at most {limiter.rate_per_s:g} requests per second per user (bursts of "
                    f"{limiter.burst:g}); retry in {retry} s",
                    trailing_metadata=(("retry-after", str(retry)),),
                )
            return None

        return wrap_handler(handler, check)
