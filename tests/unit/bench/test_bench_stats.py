"""Bench statistics: percentiles, success, hit-rate denominators, tool scores, phase splitting, SLO margins."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from alice.bench.monitor import memory_growth, new_transitions
from alice.bench.report import CONTRACT_KEYS, ordered
from alice.bench.slo import STANDARD_SLO, Objective, SloError, check_slo, load_slo
from alice.bench.stats import Outcome, cacheable_intent, hit_rates, offered_rate, split_phases, summarize
from alice.cli.common import latency_summary
from router_svc import messages


def outcome(i: int = 0, *, sent: float = 0.0, latency: float = 100.0, code: str = "OK", answer: str = "Svar.",
            expected: str | None = "weather.lookup", intent: str | None = None, tool: str | None = None,
            expected_tool: str | None = None, tier: str | None = None, route: str = "fast") -> Outcome:
    return Outcome(index=i, item_id=f"t{i}", user="u1", expected_intent=expected, expected_tool=expected_tool,
                   sent_s=sent, latency_ms=latency, code=code, deadline_ms=1000.0,
                   answer=answer if code == "OK" else "", route=route if code == "OK" else None,
                   intent=intent or expected, tool=tool, cache_tier=tier)


@pytest.mark.parametrize(
    ("values", "expected"),
    [([], {"p50": 0.0, "p95": 0.0, "p99": 0.0}),
     ([7.0], {"p50": 7.0, "p95": 7.0, "p99": 7.0}),
     ([float(v) for v in range(1, 101)], {"p50": 50.0, "p95": 95.0, "p99": 99.0}),
     ([float(v) for v in range(20, 0, -1)], {"p50": 10.0, "p95": 19.0, "p99": 20.0})],
    ids=["empty", "one", "1-100", "unsorted-20"],
)
def test_percentiles_are_nearest_rank(values: list[float], expected: dict[str, float]) -> None:
    assert latency_summary(values) == expected


@pytest.mark.parametrize(
    ("kwargs", "success"),
    [({}, True),
     ({"latency": 1500.0}, False),
     ({"code": "UNAVAILABLE"}, False),
     ({"answer": ""}, False),
     ({"answer": messages.UNAVAILABLE}, False),
     ({"answer": messages.TOOL_STORAGE_UNAVAILABLE}, False),
     ({"answer": messages.NOT_UNDERSTOOD}, True)],
    ids=["answer", "past-deadline", "error", "empty", "cannot-answer", "storage-down", "not-understood-is-a-reply"],
)
def test_success_is_a_valid_answer_within_the_deadline(kwargs: dict[str, object], success: bool) -> None:
    assert outcome(**kwargs).success is success  # type: ignore[arg-type]


def test_cacheable_comes_from_the_cache_policy() -> None:
    for intent in ("time.now", "timer.set", "calendar.create_draft", "calendar.move", "email.create_draft"):
        assert cacheable_intent(intent) is False
    for intent in ("weather.lookup", "info.query", "calendar.list", "memory.query", "greeting.hello"):
        assert cacheable_intent(intent) is True
    assert cacheable_intent(None) is None


def test_hit_rate_denominators() -> None:
    outcomes = [
        outcome(0, expected="weather.lookup", tier="l1"),
        outcome(1, expected="weather.lookup"),
        outcome(2, expected="info.query", tier="l2"),
        outcome(8, expected="info.query", tier="l3"),  # a remembered failure is not a hit
        outcome(3, expected="info.query", code="DEADLINE_EXCEEDED"),  # an error is a cacheable miss
        outcome(4, expected="time.now"),
        outcome(5, expected="timer.set"),
        outcome(6, expected=None, intent="info.query", tier="l1"),  # no label: the understood intent
        outcome(7, expected=None, intent=None, code="INVALID_ARGUMENT"),  # unknown intent: only in "all"
    ]
    cacheable, everything, n_cacheable = hit_rates(outcomes)
    assert n_cacheable == 6
    assert cacheable == pytest.approx(3 / 6)
    assert everything == pytest.approx(3 / 9)
    assert hit_rates([]) == (0.0, 0.0, 0)


def test_summary_has_tool_scores_errors_and_routes() -> None:
    outcomes = [
        outcome(0, expected="weather.lookup", expected_tool="weather.lookup", tool="weather.lookup", latency=50),
        outcome(1, expected="time.now", expected_tool="time.now", tool="weather.lookup", latency=70),
        outcome(2, expected="info.query", expected_tool=None, tool=None, route="planner", latency=900),
        outcome(3, expected="time.now", expected_tool="time.now", code="UNAVAILABLE", latency=5),
    ]
    kpis = summarize(outcomes, elapsed_s=2.0)
    assert kpis["n"] == 4
    assert kpis["tool_accuracy"] == pytest.approx(2 / 4)
    assert kpis["tool_precision"] == pytest.approx(1 / 2)
    assert kpis["errors_by_code"] == {"UNAVAILABLE": 1}
    assert kpis["by_route"]["fast"]["n"] == 2 and kpis["by_route"]["planner"]["n"] == 1
    assert kpis["success_rate"] == pytest.approx(3 / 4)
    assert kpis["achieved_rate"] == pytest.approx(3 / 2.0)


def test_phases_split_on_event_times() -> None:
    outcomes = [outcome(i, sent=float(i)) for i in range(10)]
    phases = split_phases(outcomes, [3.0, 6.0])
    assert [o.index for o in phases["before"]] == [0, 1, 2]
    assert [o.index for o in phases["during"]] == [3, 4, 5]
    assert [o.index for o in phases["after"]] == [6, 7, 8, 9]
    single = split_phases(outcomes, [4.0])
    assert len(single["before"]) == 4 and len(single["during"]) == 6 and single["after"] == []
    assert split_phases(outcomes, [])["before"] == outcomes


def test_offered_rate_counts_intervals() -> None:
    assert offered_rate([0.0, 0.5, 1.0, 1.5, 2.0]) == pytest.approx(2.0)
    assert offered_rate([1.0]) == 0.0


def test_standard_slo_file_and_margins() -> None:
    objectives = {o.name: o for o in load_slo(STANDARD_SLO)}
    assert set(objectives) == {"p95_latency_ms", "tool_precision", "success_rate", "cache_hit_rate"}
    result = {"latency_ms": {"p95": 620.0}, "tool_precision": 0.95, "success_rate": 0.99, "cache_hit_rate": 0.5}
    table, passed = check_slo(list(objectives.values()), result)
    assert not passed
    assert table["p95_latency_ms"] == {"target": 500.0, "op": "<", "value": 620.0, "passed": False,
                                       "margin": -120.0, "margin_pct": -24.0}
    assert table["tool_precision"]["passed"] and table["tool_precision"]["margin"] == pytest.approx(0.05)
    assert table["success_rate"]["passed"]  # >= is inclusive
    assert table["cache_hit_rate"]["margin"] == pytest.approx(-0.1)


def test_bad_slo_files_are_errors(tmp_path: Path) -> None:
    bad = tmp_path / "slo.json"
    bad.write_text('{"objectives": {"x": {"metric": "n", "op": "~", "target": 1}}}')
    with pytest.raises(SloError, match="objective 'x'"):
        load_slo(bad)
    with pytest.raises(SloError, match=r"has no latency_ms\.p90"):
        Objective("p90", "latency_ms.p90", "<", 1.0).value({"latency_ms": {"p95": 1.0}})


def test_result_keys_follow_the_contract() -> None:
    result = {key: 0 for key in CONTRACT_KEYS} | {"extra": 1}
    assert list(ordered(result)) == [*CONTRACT_KEYS, "extra"]
    with pytest.raises(KeyError, match="slo"):
        ordered({k: v for k, v in result.items() if k != "slo"})


def test_new_breaker_transitions_by_overlap() -> None:
    assert new_transitions(["a", "b"], ["a", "b", "c"]) == ["c"]
    assert new_transitions(["a", "b", "c"], ["b", "c", "d"]) == ["d"]  # bounded list dropped its oldest
    assert new_transitions(["a"], ["a"]) == []
    assert new_transitions([], ["x"]) == ["x"]


def test_memory_growth_after_warmup() -> None:
    rows = [(float(t), 100_000 if t < 30 else 200_000 + t, 20) for t in range(0, 120, 5)]
    growth = memory_growth(rows, warmup_s=30.0, limit_pct=5.0)
    assert growth["passed"] is True and 0 < growth["growth_pct"] < 1  # warm-up doubling is not counted
    leaking = [(float(t), 100_000 + 1_000 * t, 20) for t in range(0, 120, 5)]
    assert memory_growth(leaking, warmup_s=30.0, limit_pct=5.0)["passed"] is False
    assert memory_growth(rows[:2], warmup_s=30.0, limit_pct=5.0)["passed"] is None


def test_outcome_is_serialisable() -> None:
    assert dataclasses.asdict(outcome())["code"] == "OK"
