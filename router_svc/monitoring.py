"""Live operational view of the router: latency, success, errors, cache, routes, quota, breakers, SLOs."""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass

from opentelemetry import metrics

from alice.router.v1 import router_service_pb2 as pb
from alice.runtime.breaker import CircuitBreaker, State
from alice.runtime.stats import percentile
from alice.runtime.telemetry import Deferred
from router_svc.config import Slo
from router_svc.quota import MicroQuota


@dataclass(frozen=True)
class Outcome:
    route: str
    latency_ms: float
    ok: bool
    code: str
    """gRPC status name; "OK" for an answer."""
    cache_tier: str | None
    degradations: tuple[str, ...]
    tool_expected: bool | None = None


def _latency(values: Sequence[float]) -> pb.LatencyStats:
    return pb.LatencyStats(count=len(values), p50_ms=percentile(values, 50), p95_ms=percentile(values, 95),
                           p99_ms=percentile(values, 99))


class Monitor:
    """Keeps the last `window` outcomes (bounded memory) and totals since the last reset."""

    def __init__(self, window: int, slo: Slo, quota: MicroQuota, breakers: Sequence[CircuitBreaker],
                 meter: metrics.Meter | None = None) -> None:
        self._window = window
        self._slo = slo
        self._quota = quota
        self._breakers = list(breakers)
        meter = meter or metrics.NoOpMeter("alice")
        # The same outcomes as OpenTelemetry metrics (Prometheus scrape and OTLP).
        self._duration = Deferred(meter.create_histogram(
            "alice.router.request.duration", unit="ms", description="Ask latency inside the router"))
        self._cache_results = Deferred(meter.create_counter(
            "alice.router.cache.results", description="Requests by cache tier that answered (miss when none)"))
        self._degraded = Deferred(meter.create_counter(
            "alice.router.degradations", description="Fallbacks used, by kind"))
        meter.create_observable_gauge(
            "alice.breaker.state", callbacks=[self._breaker_states],
            description="Circuit breaker state: 0 closed, 1 half-open, 2 open")
        meter.create_observable_gauge(
            "alice.router.micro_quota.share", callbacks=[self._quota_share], unit="1",
            description="Share of micro-route decisions over the sliding window")
        self.reset()

    def _breaker_states(self, options: metrics.CallbackOptions) -> list[metrics.Observation]:
        level = {State.CLOSED: 0, State.HALF_OPEN: 1, State.OPEN: 2}
        return [metrics.Observation(level[b.state], {"alice.breaker.name": b.name}) for b in self._breakers]

    def _quota_share(self, options: metrics.CallbackOptions) -> list[metrics.Observation]:
        return [metrics.Observation(self._quota.share())]

    def reset(self) -> None:
        self._outcomes: deque[Outcome] = deque(maxlen=self._window)
        self._errors: Counter[str] = Counter()
        self._degradations: Counter[str] = Counter()
        self._started = time.monotonic()

    def record(self, outcome: Outcome) -> None:
        self._duration.record(outcome.latency_ms, {"alice.route": outcome.route, "rpc.grpc.status": outcome.code})
        if outcome.ok:
            self._cache_results.add(1, {"alice.cache.tier": outcome.cache_tier or "miss"})
        for kind in outcome.degradations:
            self._degraded.add(1, {"alice.degradation": kind})
        self._outcomes.append(outcome)
        if not outcome.ok:
            self._errors[outcome.code] += 1
        self._degradations.update(outcome.degradations)

    def status(self) -> pb.GetStatusResponse:
        outcomes = list(self._outcomes)
        answered = [o for o in outcomes if o.ok]
        reply = pb.GetStatusResponse(
            requests=len(outcomes),
            success_rate=len(answered) / len(outcomes) if outcomes else 1.0,
            latency=_latency([o.latency_ms for o in outcomes]),
        )
        routes = sorted({o.route for o in answered})
        for route in routes:
            reply.latency_by_route[route].CopyFrom(_latency([o.latency_ms for o in answered if o.route == route]))
            reply.route_shares[route] = sum(o.route == route for o in answered) / len(answered)
        reply.errors_by_code.update(self._errors)
        tiers = Counter(o.cache_tier for o in answered if o.cache_tier)
        reply.cache_hits_by_tier.update(tiers)
        reply.cache_misses = sum(1 for o in answered if not o.cache_tier)
        reply.degradations.update(self._degradations)
        quota = self._quota.snapshot()
        reply.quota.CopyFrom(pb.QuotaStatus(max_share=quota.max_share, window=quota.window, share=quota.share,
                                            overflowed=quota.rejected))
        for breaker in self._breakers:
            snap = breaker.snapshot()
            reply.breakers.add(
                name=snap.name, state=snap.state.name.lower(), failure_rate=snap.failure_rate,
                slow_call_rate=snap.slow_call_rate, calls_in_window=snap.calls_in_window, rejected=snap.rejected,
                transitions=[f"{t.from_state.name.lower()}->{t.to_state.name.lower()}: {t.reason}"
                             for t in snap.transitions],
            )
        hit_rate = sum(tiers.values()) / len(answered) if answered else 0.0
        for name, target, value, higher_is_better in (
            ("p95_latency_ms", self._slo.p95_ms, reply.latency.p95_ms, False),
            ("success_rate", self._slo.success_rate, reply.success_rate, True),
            ("cache_hit_rate", self._slo.cache_hit_rate, hit_rate, True),
        ):
            passed = value >= target if higher_is_better else value <= target
            reply.slos.add(name=name, target=target, value=value, passed=passed)
        return reply
