"""k6 side of `alice bench --k6`: its CSV rows as outcomes, its summary, the run order, the pooled comparison."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from alice.bench.k6compare import (
    ASK,
    K6_SCRIPT,
    REPLY_METRIC,
    compare,
    diff_pct,
    k6_percentiles,
    k6_report,
    k6_table,
    parse_samples,
    run_order,
    side_summary,
    write_outcomes,
)
from alice.bench.stats import Outcome
from alice.bench.traffic import TrafficItem

HEADER = ("metric_name,timestamp,metric_value,check,error,error_code,expected_response,group,method,name,proto,"
          "scenario,service,status,subproto,tls_version,url,extra_tags,metadata")
# Rows as k6 v1.1.0 writes them with K6_CSV_TIME_FORMAT=unix_micro: the first is a reflection call (no seq).
ASK_ROW = ("grpc_req_duration,{at},{ms},,,,,,Ask,/alice.router.v1.RouterService/Ask,,closed,"
           "alice.router.v1.RouterService,{status},,,127.0.0.1:50051/alice.router.v1.RouterService/Ask,,seq={seq}")
REPLY_ROW = "alice_reply_server_ms,{at},{ms},,,,,,,,,closed,,,,,,{tags},seq={seq}"
CSV = [
    HEADER,
    "grpc_req_duration,1795654427000000,1.518949,,,,,,,,,closed,,12,,,,,",
    ASK_ROW.format(at=1795654427050000, ms=24.144787, status=0, seq=1),
    REPLY_ROW.format(at=1795654427050100, ms=16.199805, tags="tier=CACHE_TIER_L1_EXACT&route=ROUTE_CACHE", seq=1),
    ASK_ROW.format(at=1795654427100000, ms=40.0, status=0, seq=0),
    REPLY_ROW.format(at=1795654427100100, ms=30.5, tags="route=ROUTE_FAST&tier=CACHE_TIER_UNSPECIFIED", seq=0),
    ASK_ROW.format(at=1795654432060000, ms=5000.0, status=4, seq=2),
    REPLY_ROW.format(at=1795654432060100, ms=0, tags="tier=&route=", seq=2),
    "iteration_duration,1795654427100200,40.6,,,,,,,,,closed,,,,,,,seq=0",
    "data_sent,1795654427100300,710.000000,,,,,,,,,closed,,,,,,,seq=0",
]
ITEMS = [TrafficItem(line=1, id="a", text="väder i göteborg", user="u2", intent="weather.lookup"),
         TrafficItem(line=2, id="b", text="hej", user="u3", intent="greeting.hello")]


def test_csv_rows_become_one_outcome_per_ask_in_sequence_order() -> None:
    outcomes = parse_samples(CSV, ITEMS, deadline_s=5.0)
    assert [o.index for o in outcomes] == [0, 1, 2]
    fast, cached, late = outcomes
    assert (fast.item_id, fast.user, fast.expected_intent) == ("a", "u2", "weather.lookup")
    assert (cached.item_id, late.item_id) == ("b", "a")  # the sequence wraps around the items
    assert (fast.code, fast.latency_ms, fast.route, fast.cache_tier, fast.server_ms) == ("OK", 40.0, "fast", None, 30.5)
    assert (cached.route, cached.cache_tier) == ("cache", "l1") and cached.server_ms == pytest.approx(16.199805)
    assert (late.code, late.route, late.server_ms, late.deadline_ms) == ("DEADLINE_EXCEEDED", None, None, 5000.0)
    # Send times from the samples' end times minus their durations, relative to the first send.
    assert cached.sent_s == pytest.approx(0.0)
    assert fast.sent_s == pytest.approx(0.05 - 0.04 + 0.024144787, abs=1e-6)


def test_no_ask_rows_give_no_outcomes() -> None:
    assert parse_samples([HEADER, CSV[1]], ITEMS) == []


def test_an_unknown_enum_name_is_kept_visible() -> None:
    rows = [HEADER, CSV[2], CSV[3].replace("ROUTE_CACHE", "ROUTE_FUTURE")]
    assert parse_samples(rows, ITEMS)[0].route == "unknown(ROUTE_FUTURE)"


def _summary(metrics: dict[str, object]) -> str:
    return json.dumps({"metrics": metrics})


def test_k6_own_percentiles_prefer_the_ask_only_submetric() -> None:
    ask = {"values": {"p(50)": 20.0, "p(95)": 60.0, "p(99)": 90.12345}}
    everything = {"values": {"p(50)": 1.0, "p(95)": 2.0, "p(99)": 3.0}}
    assert k6_percentiles(_summary({"grpc_req_duration": everything, f"grpc_req_duration{{name:{ASK}}}": ask})) == {
        "p50": 20.0, "p95": 60.0, "p99": 90.123}
    assert k6_percentiles(_summary({"grpc_req_duration": everything})) == {"p50": 1.0, "p95": 2.0, "p99": 3.0}


def test_the_script_tags_what_the_parser_reads() -> None:
    script = K6_SCRIPT.read_text(encoding="utf-8")
    for needle in (REPLY_METRIC, "metadata.seq", "route:", "tier:", ASK.lstrip("/"), "iterationInTest", "REQUESTS",
                   "CHECKS"):
        assert needle in script, needle


@pytest.mark.parametrize(
    ("rounds", "order"),
    [(1, ["k6", "alice"]),
     (2, ["alice", "k6", "k6", "alice"]),
     (3, ["alice", "k6", "k6", "alice", "k6", "alice"]),
     (4, ["alice", "k6", "k6", "alice"] * 2)],
    ids=["one", "two", "three", "four"],
)
def test_runs_alternate_in_abba_blocks_and_end_with_alice(rounds: int, order: list[str]) -> None:
    assert run_order(rounds) == order
    assert order.count("alice") == order.count("k6") == rounds


def test_no_rounds_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        run_order(0)


def _outcome(i: int, latency: float, server: float | None = None, code: str = "OK", route: str | None = "fast",
             tier: str | None = None) -> Outcome:
    return Outcome(index=i, item_id=str(i), user="u1", expected_intent=None, expected_tool=None, sent_s=i * 0.01,
                   latency_ms=latency, code=code, deadline_ms=5000.0, route=route if code == "OK" else None,
                   cache_tier=tier, server_ms=server)


def test_side_summary_splits_router_time_from_the_rest() -> None:
    outcomes = [_outcome(0, 10.0, 7.0, tier="l1", route="cache"), _outcome(1, 30.0, 25.0),
                _outcome(2, 5000.0, code="DEADLINE_EXCEEDED")]
    summary = side_summary(outcomes)
    assert summary["n"] == 3
    assert summary["latency_ms"] == {"p50": 30.0, "p95": 5000.0, "p99": 5000.0}
    assert summary["server_ms"] == {"p50": 7.0, "p95": 25.0, "p99": 25.0}
    assert summary["outside_ms"] == {"p50": 3.0, "p95": 5.0, "p99": 5.0}
    assert summary["by_route"] == {"cache": {"n": 1, "latency_ms": {"p50": 10.0, "p95": 10.0, "p99": 10.0}},
                                   "fast": {"n": 1, "latency_ms": {"p50": 30.0, "p95": 30.0, "p99": 30.0}}}
    assert summary["hits_by_tier"] == {"l1": 1}
    assert summary["errors_by_code"] == {"DEADLINE_EXCEEDED": 1}


def test_report_pools_each_clients_runs() -> None:
    order = run_order(2)
    runs = [[_outcome(0, 20.0, 15.0)], [_outcome(0, 22.0, 16.0)], [_outcome(0, 26.0, 20.0)], [_outcome(0, 30.0, 24.0)]]
    notes: list[dict[str, Any]] = [{"client_cpu_ms_per_request": 1.0}, {"exit_code": 0}, {"exit_code": 0}, {}]
    report = k6_report(order, runs, notes)
    assert report["alice"]["n"] == report["k6"]["n"] == 2
    assert report["alice"]["latency_ms"]["p50"] == 20.0 and report["k6"]["latency_ms"]["p50"] == 22.0
    assert report["compare"]["p99"] == {"alice": 30.0, "k6": 26.0, "diff_pct": -13.3}
    assert [run["client"] for run in report["runs"]] == order
    assert report["runs"][1]["exit_code"] == 0 and report["runs"][0]["client_cpu_ms_per_request"] == 1.0
    table = k6_table(report)
    assert "alice k6 k6 alice" in table and "-13.3%" in table and "run 4 alice" in table


@pytest.mark.parametrize(("alice", "k6", "expected"), [(100.0, 90.0, -10.0), (32.457, 27.517, -15.2), (0.0, 5.0, 0.0)],
                         ids=["minus-10", "old-run", "zero"])
def test_difference_is_relative_to_alice(alice: float, k6: float, expected: float) -> None:
    assert diff_pct(alice, k6) == expected
    assert compare({"p50": alice, "p95": alice, "p99": alice}, {"p50": k6, "p95": k6, "p99": k6})["p95"]["diff_pct"] \
        == expected


def test_outcomes_are_written_one_line_each_into_a_new_folder(tmp_path: Path) -> None:
    path = tmp_path / "report" / "alice-run1-outcomes.jsonl"
    write_outcomes(path, [_outcome(0, 20.0, 15.0), _outcome(1, 5000.0, code="DEADLINE_EXCEEDED")])
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [(row["index"], row["code"], row["server_ms"]) for row in rows] == [(0, "OK", 15.0),
                                                                              (1, "DEADLINE_EXCEEDED", None)]
