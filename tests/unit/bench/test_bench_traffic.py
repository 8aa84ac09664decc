"""Traffic parsing, Poisson schedule determinism, fault parsing, knee search logic."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from alice.bench.faults import FaultError, FaultEvent, parse_faults
from alice.bench.knee import find_knee, rotate
from alice.bench.runner import Plan, RunResult, poisson_arrivals
from alice.bench.stats import Outcome
from alice.bench.traffic import TrafficItem, cycle, load_traffic, parse_traffic

STANDARD = Path(__file__).resolve().parents[3] / "data" / "traffic" / "standard.jsonl"


def test_traffic_lines_parse_with_defaults() -> None:
    items, problems = parse_traffic([
        '{"id": "t1", "user": "u07", "session": "s1", "text": "väder i sthlm imorgon", "intent": "weather.lookup",'
        ' "tool": "weather.lookup", "slots": {"city": "Stockholm"}}',
        "",
        '{"text": "vad är klockan"}',
    ])
    assert problems == []
    assert items[0] == TrafficItem(line=1, id="t1", text="väder i sthlm imorgon", user="u07", session="s1",
                                   intent="weather.lookup", tool="weather.lookup", slots={"city": "Stockholm"})
    assert items[1].user == "u1" and items[1].id == "line3" and items[1].line == 3 and items[1].tool is None


@pytest.mark.parametrize(
    ("line", "why"),
    [('{"id": "x", "text": "hej"', "not JSON"), ("plain text", "not JSON"), ('["text"]', "not a JSON object"),
     ('{"id": "x"}', "missing text"), ('{"txt": "hej"}', "missing text"), ("{'text': 'hej'}", "not JSON"),
     ('{"text": 5}', "text is not a string"), ('{"text": "hej", "user": 7}', "user of the wrong type")],
    ids=["truncated", "plain", "array", "no-text", "misspelled-key", "single-quoted", "text-number", "user-number"],
)
def test_malformed_lines_are_reported_with_line_numbers_and_skipped(line: str, why: str) -> None:
    items, problems = parse_traffic(['{"text": "hej"}', line, '{"text": "hallå"}'], "f.jsonl")
    assert [i.text for i in items] == ["hej", "hallå"]
    assert len(problems) == 1 and problems[0].startswith("f.jsonl:2: ") and why in problems[0]


def test_empty_text_is_kept_for_the_router_to_reject() -> None:
    items, problems = parse_traffic(['{"text": ""}'])
    assert problems == [] and items[0].text == ""


def test_standard_traffic_file() -> None:
    items, problems = load_traffic(STANDARD)
    assert len(items) >= 1000 and len({i.user for i in items}) >= 20
    assert [p.split(":")[1] for p in problems] == ["141", "392", "613", "847", "1071"]


def test_cycle_wraps_only_with_loop() -> None:
    items = [TrafficItem(line=i, id=str(i), text="x") for i in range(3)]
    assert [i.id for i in cycle(items, wrap=False)] == ["0", "1", "2"]
    assert [i.id for i in itertools.islice(cycle(items, wrap=True), 7)] == ["0", "1", "2", "0", "1", "2", "0"]
    assert list(cycle([], wrap=True)) == []


def test_poisson_schedule_is_deterministic_with_a_seed() -> None:
    first = list(itertools.islice(poisson_arrivals(5.0, seed=7), 2000))
    again = list(itertools.islice(poisson_arrivals(5.0, seed=7), 2000))
    other = list(itertools.islice(poisson_arrivals(5.0, seed=8), 2000))
    assert first == again and first != other
    assert first[0] == 0.0 and all(b > a for a, b in itertools.pairwise(first))
    # Mean gap 1/rate: 1999 gaps of mean 0.2 s, within a few standard errors.
    assert first[-1] / 1999 == pytest.approx(0.2, rel=0.08)
    with pytest.raises(ValueError, match="positive"):
        next(poisson_arrivals(0.0, seed=1))


def test_plan_needs_one_load_model() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        Plan(items=[], rate=1.0, concurrency=2)
    with pytest.raises(ValueError, match="--loop needs --duration"):
        Plan(items=[], rate=1.0, loop=True)


def test_fault_specs_parse() -> None:
    events = parse_faults("restart-nlu@20s,kill-nlu@10s,stop-redis@1m,start-redis@90,llm-slow:1500@500ms,"
                          "fill-llm-queue:8@30s")
    assert events[0] == FaultEvent("llm-slow", "llm", 0.5, 1500)
    assert [e.label for e in events[1:]] == ["kill-nlu@10s", "restart-nlu@20s", "fill-llm-queue:8@30s",
                                             "stop-redis@60s", "start-redis@90s"]


@pytest.mark.parametrize("spec", ["kill-nlu", "explode-nlu@1s", "kill-mongo@1s", "kill-nlu:3@1s", "kill-nlu@x"],
                         ids=["no-time", "bad-action", "bad-service", "stray-arg", "bad-time"])
def test_bad_fault_specs_are_errors(spec: str) -> None:
    with pytest.raises(FaultError):
        parse_faults(spec)


def _result(p95_ms: float, n: int = 20) -> RunResult:
    outcomes = [Outcome(index=i, item_id=str(i), user="u1", expected_intent="info.query", expected_tool=None,
                        sent_s=i * 0.1, latency_ms=p95_ms, code="OK", deadline_ms=5000, answer="ok", route="fast")
                for i in range(n)]
    return RunResult(outcomes, elapsed_s=n * 0.1, sent_s=[o.sent_s for o in outcomes])


async def test_knee_search_finds_the_highest_rate_under_the_slo() -> None:
    seen: list[float] = []

    async def step(plan: Plan) -> RunResult:
        assert plan.rate is not None
        seen.append(plan.rate)
        return _result(100.0 if plan.rate <= 3.0 else 900.0)  # capacity is 3 requests per second

    items = [TrafficItem(line=i, id=str(i), text="x") for i in range(5)]
    knee = await find_knee(step, Plan(items=items, rate=1.0, duration_s=1.0), 500.0, say=lambda _: None)
    assert seen[:4] == [1.0, 1.5, 2.25, 3.375]
    assert 2.25 <= knee["highest_sustainable_rate"] <= 3.0
    assert knee["first_unsustainable_rate"] > 3.0
    assert len(knee["steps"]) == 6


def test_rotate_continues_the_file() -> None:
    items = [TrafficItem(line=i, id=str(i), text="x") for i in range(4)]
    assert [i.id for i in rotate(Plan(items=items, rate=1.0), 6).items] == ["2", "3", "0", "1"]
