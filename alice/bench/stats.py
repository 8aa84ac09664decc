"""Bench statistics: success, tool scores, cache hit rates with their denominators, errors, routes, phases."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from alice.cli.common import latency_summary
from alice.cli.scoring import ToolScore
from alice.taxonomy import NEVER_CACHE
from router_svc import messages

NOT_ANSWERS: frozenset[str] = frozenset({messages.UNAVAILABLE, messages.TOOL_STORAGE_UNAVAILABLE})
"""Router replies that say nothing could be answered: a reply, but not a valid answer."""

PHASES = ("before", "during", "after")
ANSWER_TIERS: frozenset[str] = frozenset({"l1", "l2"})
"""Cache tiers that serve a stored answer; "l3" replays a remembered failure, which is not a hit."""


def cacheable_intent(intent: str | None) -> bool | None:
    """Whether the cache policy (alice.taxonomy.NEVER_CACHE) allows caching `intent`; None when unknown."""
    if not intent:
        return None
    return intent not in NEVER_CACHE


@dataclass(frozen=True)
class Outcome:
    """What happened to one request of the bench."""

    index: int
    item_id: str
    user: str
    expected_intent: str | None
    expected_tool: str | None
    sent_s: float
    """Seconds from the start of the run to when the request was due (open loop) or sent (closed loop)."""
    latency_ms: float
    """From due/sent time to the reply or error, as the user waits."""
    code: str
    """gRPC status code name; "OK" for a reply."""
    deadline_ms: float
    answer: str = ""
    route: str | None = None
    intent: str | None = None
    tool: str | None = None
    cache_tier: str | None = None
    degradations: tuple[str, ...] = ()
    server_ms: float | None = None
    """The router's own time for the request (its reply's latency.total_ms); the rest is network and client."""

    @property
    def ok(self) -> bool:
        return self.code == "OK"

    @property
    def valid(self) -> bool:
        """A reply that answers: OK, non-empty, and not the router's "cannot answer now"."""
        return self.ok and bool(self.answer.strip()) and self.answer not in NOT_ANSWERS

    @property
    def success(self) -> bool:
        return self.valid and self.latency_ms <= self.deadline_ms

    @property
    def hit(self) -> bool:
        return self.ok and self.cache_tier in ANSWER_TIERS

    @property
    def cacheable(self) -> bool | None:
        """By the file's expected intent; by the understood intent when the file gives none."""
        known = cacheable_intent(self.expected_intent)
        return known if known is not None else cacheable_intent(self.intent)


def hit_rates(outcomes: Sequence[Outcome]) -> tuple[float, float, int]:
    """(hit rate over cacheable requests, hit rate over all requests, number of cacheable requests).

    Denominators count every request sent, errors included (an error is not a hit); a request is cacheable
    when the cache policy allows caching its intent.
    """
    cacheable = [o for o in outcomes if o.cacheable]
    hits_cacheable = sum(o.hit for o in cacheable)
    hits_all = sum(o.hit for o in outcomes)
    return (hits_cacheable / len(cacheable) if cacheable else 0.0,
            hits_all / len(outcomes) if outcomes else 0.0, len(cacheable))


def tool_score(outcomes: Iterable[Outcome]) -> ToolScore:
    """Tool accuracy and precision against the file; an error counts as no tool call."""
    score = ToolScore()
    for o in outcomes:
        score.add(o.expected_tool, o.tool if o.ok else None, {}, {})
    return score


def summarize(outcomes: Sequence[Outcome], elapsed_s: float | None = None) -> dict[str, Any]:
    """The contract's KPIs for a set of outcomes (all of a run, or one phase)."""
    n = len(outcomes)
    score = tool_score(outcomes)
    cacheable_rate, all_rate, n_cacheable = hit_rates(outcomes)
    by_route: dict[str, list[float]] = defaultdict(list)
    for o in outcomes:
        if o.ok:
            by_route[o.route or "unknown"].append(o.latency_ms)
    errors = Counter(o.code for o in outcomes if not o.ok)
    span = elapsed_s if elapsed_s is not None else _span_s(outcomes)
    return {
        "n": n,
        "success_rate": sum(o.success for o in outcomes) / n if n else 0.0,
        "answered_rate": sum(o.ok for o in outcomes) / n if n else 0.0,
        "tool_accuracy": score.tool_accuracy,
        "tool_precision": score.tool_precision,
        "tool_calls": score.calls,
        "cache_hit_rate": cacheable_rate,
        "cache_hit_rate_all": all_rate,
        "cacheable_requests": n_cacheable,
        "hits_by_tier": dict(sorted(Counter(o.cache_tier for o in outcomes if o.ok and o.cache_tier).items())),
        "latency_ms": latency_summary([o.latency_ms for o in outcomes]),
        "by_route": {route: {"n": len(values), "latency_ms": latency_summary(values)}
                     for route, values in sorted(by_route.items())},
        "errors_by_code": dict(sorted(errors.items())),
        "past_deadline": sum(o.latency_ms > o.deadline_ms for o in outcomes),
        "not_answered": sum(o.ok and not o.valid for o in outcomes),
        "degradations": dict(sorted(Counter(d for o in outcomes for d in o.degradations).items())),
        "achieved_rate": sum(o.ok for o in outcomes) / span if span > 0 else 0.0,
    }


def _span_s(outcomes: Sequence[Outcome]) -> float:
    if not outcomes:
        return 0.0
    start = min(o.sent_s for o in outcomes)
    end = max(o.sent_s + o.latency_ms / 1000 for o in outcomes)
    return end - start


def offered_rate(sent_s: Sequence[float]) -> float:
    """Requests per second actually offered: intervals between the first and last send."""
    if len(sent_s) < 2:
        return 0.0
    span = max(sent_s) - min(sent_s)
    return (len(sent_s) - 1) / span if span > 0 else 0.0


def split_phases(outcomes: Sequence[Outcome], event_times_s: Sequence[float]) -> dict[str, list[Outcome]]:
    """Before the first fault event, during (first to last event), after the last one, by due/sent time.

    With a single event (a kill never undone) "during" runs to the end and "after" is empty.
    """
    phases: dict[str, list[Outcome]] = {phase: [] for phase in PHASES}
    if not event_times_s:
        phases["before"] = list(outcomes)
        return phases
    first, last = min(event_times_s), max(event_times_s)
    for o in outcomes:
        if o.sent_s < first:
            phases["before"].append(o)
        elif o.sent_s < last or first == last:
            phases["during"].append(o)
        else:
            phases["after"].append(o)
    return phases


def windows(outcomes: Sequence[Outcome], width_s: float) -> list[tuple[float, Mapping[str, float]]]:
    """Per time window (by due/sent time): p95 latency, cacheable hit rate, success rate, count."""
    if not outcomes or width_s <= 0:
        return []
    buckets: dict[int, list[Outcome]] = defaultdict(list)
    for o in outcomes:
        buckets[int(o.sent_s // width_s)].append(o)
    rows: list[tuple[float, Mapping[str, float]]] = []
    for key in sorted(buckets):
        group = buckets[key]
        rate, _, _ = hit_rates(group)
        rows.append(((key + 0.5) * width_s, {
            "n": float(len(group)),
            "p95_ms": latency_summary([o.latency_ms for o in group])["p95"],
            "cache_hit_rate": rate,
            "success_rate": sum(o.success for o in group) / len(group),
        }))
    return rows
