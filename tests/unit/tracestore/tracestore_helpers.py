"""Span builders shared by the trace store's tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from alice.tracestore.store import SpanRecord

MS = 1_000_000
NOW_NS = 1_773_133_200_000_000_000
"""2026-03-10T09:00:00Z: a fixed clock, so retention by age is deterministic."""

SpanFactory = Callable[..., SpanRecord]
RequestTrace = Callable[..., list[SpanRecord]]


def make_span(trace: str, span_id: str, parent: str = "", start_ms: float = 0.0, duration_ms: float = 1.0, *,
              name: str | None = None, service: str = "alice-router", kind: str = "INTERNAL", status: str = "UNSET",
              base_ns: int = NOW_NS - 60_000 * MS, **attributes: Any) -> SpanRecord:
    """A span with readable short ids (padded to full length); `alice__route=` becomes `alice.route`."""
    start = base_ns + int(start_ms * MS)
    return SpanRecord(trace.ljust(32, "0"), span_id.ljust(16, "0"), parent.ljust(16, "0") if parent else "",
                      service, name or f"op-{span_id}", kind, start, start + int(duration_ms * MS), status, "",
                      {key.replace("__", "."): value for key, value in attributes.items()}, [])


def request_trace(trace: str = "a1", base_ns: int = NOW_NS - 60_000 * MS, route: str = "fast",
                  tool_ms: float = 20.0) -> list[SpanRecord]:
    """A 10-span router request: NLU and the alias lookup in parallel, then route and tool (root 40 ms)."""
    span = make_span
    return [
        span(trace, "01", "", 0, 20 + tool_ms, name="/alice.router.v1.RouterService/Ask", kind="SERVER",
             base_ns=base_ns, alice__route=route, alice__intent="time.now"),
        span(trace, "02", "01", 0.2, 12, name="router.nlu", base_ns=base_ns),
        span(trace, "03", "02", 0.3, 11.5, name="/alice.nlu.v1.NluService/Parse", kind="CLIENT", base_ns=base_ns),
        span(trace, "04", "03", 0.6, 10.8, name="/alice.nlu.v1.NluService/Parse", kind="SERVER",
             service="alice-nlu", base_ns=base_ns),
        span(trace, "05", "04", 0.8, 8, name="nlu.classify", service="alice-nlu", base_ns=base_ns),
        span(trace, "06", "01", 0.2, 3, name="router.cache_alias", base_ns=base_ns),
        span(trace, "07", "06", 0.3, 2.8, name="/alice.cache.v1.CacheService/Lookup", kind="CLIENT", base_ns=base_ns),
        span(trace, "08", "07", 0.5, 2.2, name="/alice.cache.v1.CacheService/Lookup", kind="SERVER",
             service="alice-cache", base_ns=base_ns),
        span(trace, "09", "01", 12.5, 0.1, name="router.route", base_ns=base_ns),
        span(trace, "0a", "01", 12.7, tool_ms, name="router.tool", base_ns=base_ns, alice__tool="time.now"),
    ]
