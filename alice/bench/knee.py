"""Capacity: raise the open-loop rate until P95 crosses the SLO; the highest rate still under it is the knee."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from alice.bench.runner import Plan, RunResult
from alice.bench.stats import offered_rate, summarize

RunStep = Callable[[Plan], Awaitable[RunResult]]


def rotate(plan: Plan, offset: int) -> Plan:
    """The plan starting `offset` items into the file, so each step continues the traffic where the last ended."""
    if not plan.items:
        return plan
    offset %= len(plan.items)
    return dataclasses.replace(plan, items=[*plan.items[offset:], *plan.items[:offset]])


async def find_knee(run_step: RunStep, base: Plan, p95_target_ms: float, start_rate: float = 1.0,
                    factor: float = 1.5, max_rate: float = 200.0, refine_steps: int = 2, min_requests: int = 60,
                    say: Callable[[str], None] = print) -> dict[str, Any]:
    """Steps of `base.duration_s` at rising rates (×`factor`), then bisection between the last good and first bad.

    A step is sustainable when its P95 stays under the target; success and achieved rate are recorded too.
    A step lasts long enough for about `min_requests` arrivals, so a P95 is never read off a handful of requests.
    Cache state carries over between steps, as in a live system; each step continues the file.
    """
    steps: list[dict[str, Any]] = []
    sent = 0

    async def step(rate: float) -> bool:
        nonlocal sent
        duration = max(base.duration_s or 0.0, min_requests / rate)
        plan = dataclasses.replace(base, rate=rate, concurrency=None, loop=True, duration_s=duration)
        result = await run_step(rotate(plan, sent))
        sent += len(result.outcomes)
        kpis = summarize(result.outcomes, result.elapsed_s)
        ok = bool(result.outcomes) and kpis["latency_ms"]["p95"] < p95_target_ms
        steps.append({"rate": round(rate, 3), "duration_s": round(duration, 1),
                      "offered_rate": round(offered_rate(result.sent_s), 3),
                      "achieved_rate": round(kpis["achieved_rate"], 3), "n": kpis["n"],
                      "p95_ms": kpis["latency_ms"]["p95"], "p99_ms": kpis["latency_ms"]["p99"],
                      "success_rate": round(kpis["success_rate"], 4),
                      "cache_hit_rate": round(kpis["cache_hit_rate"], 4), "sustainable": ok})
        say(f"knee: {rate:.2f}/s -> p95 {kpis['latency_ms']['p95']:.0f} ms, success "
            f"{kpis['success_rate']:.3f} {'ok' if ok else 'over'}")
        return ok

    good: float | None = None
    bad: float | None = None
    rate = start_rate
    while rate <= max_rate:
        if await step(rate):
            good = rate
            rate *= factor
        else:
            bad = rate
            break
    if good is None and bad is not None:
        # Even the start rate is too much: walk down instead.
        rate = bad / 2
        while rate >= 0.05 and good is None:
            if await step(rate):
                good = rate
            else:
                bad = rate
                rate /= 2
    for _ in range(refine_steps if good is not None and bad is not None else 0):
        assert good is not None and bad is not None
        middle = (good + bad) / 2
        if await step(middle):
            good = middle
        else:
            bad = middle
    return {"highest_sustainable_rate": round(good, 3) if good is not None else 0.0,
            "first_unsustainable_rate": round(bad, 3) if bad is not None else None,
            "p95_target_ms": p95_target_ms, "step_duration_s": base.duration_s, "steps": steps}
