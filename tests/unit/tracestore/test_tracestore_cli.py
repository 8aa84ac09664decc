"""`alice trace list|show|stats`: output, filters, --json, and clear failures."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tracestore_helpers import MS, make_span, request_trace

from alice.cli import trace as cli
from alice.tracestore.store import TraceStore, waterfall


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "traces.db"
    now = time.time_ns()
    with TraceStore(path) as store:
        store.insert(request_trace("a1", base_ns=now - 5_000 * MS, route="fast"))
        store.insert(request_trace("b2", base_ns=now - 4_000 * MS, route="micro", tool_ms=900))
        store.insert([make_span("c3", "01", "", 0, 3, base_ns=now - 3_000 * MS, status="ERROR",
                                name="/alice.router.v1.RouterService/Ask", alice__route="planner")])
    yield path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_shows_newest_first_with_route_status_and_duration(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "list", "--db", str(db))
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0].split()[:6] == ["time", "duration", "spans", "status", "route", "trace"]
    assert "c3".ljust(32, "0") in lines[1] and "ERROR" in lines[1] and "planner" in lines[1]
    assert "b2".ljust(32, "0") in lines[2] and "920.00 ms" in lines[2] and "micro" in lines[2]
    assert "a1".ljust(32, "0") in lines[3] and "40.00 ms" in lines[3]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--slowest", "1"], ["b2"]),
        (["--route", "fast"], ["a1"]),
        (["--min-ms", "30"], ["b2", "a1"]),
        (["--errors"], ["c3"]),
        (["--since", "3500ms"], None),
        (["--since", "1h", "--limit", "2"], ["c3", "b2"]),
    ],
    ids=["slowest", "route", "min-ms", "errors", "bad-since", "since-limit"],
)
def test_list_filters_as_json(db: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                              expected: list[str] | None) -> None:
    code, out, err = run(capsys, "list", "--db", str(db), "--json", *args)
    if expected is None:
        assert code == 2
        assert "neither an age" in err
        return
    assert code == 0
    assert [t["trace_id"][:2] for t in json.loads(out)["traces"]] == expected


def test_show_prints_the_waterfall_with_the_critical_path(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "show", "a1".ljust(32, "0"), "--db", str(db))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith(f"trace {'a1'.ljust(32, '0')}  40.00 ms  10 spans  3 services  route fast")
    rows = [line for line in lines if "|" in line]
    assert len(rows) == 10
    assert rows[0].startswith("*") and "alice.route=fast" in rows[0]
    nested = next(row for row in rows if "nlu.classify" in row)
    assert "        nlu.classify" in nested  # depth 4: indented under its parents
    alias = next(row for row in rows if "router.cache_alias" in row)
    assert alias.startswith(" ")  # finished in parallel, off the critical path
    assert all(len(row.split("|")[1]) == cli.BAR_WIDTH for row in rows)


def test_show_accepts_a_prefix_and_prints_json(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "show", "b200", "--db", str(db), "--json")
    assert code == 0
    document = json.loads(out)
    assert document["trace_id"] == "b2".ljust(32, "0")
    assert len(document["spans"]) == 10
    assert sum(span["critical"] for span in document["spans"]) >= 2


@pytest.mark.parametrize("trace_id", ["f" * 32, "nope", "0"], ids=["unknown", "not-hex", "too-short"])
def test_show_unknown_trace_is_a_clear_not_found(db: Path, capsys: pytest.CaptureFixture[str], trace_id: str) -> None:
    code, out, err = run(capsys, "show", trace_id, "--db", str(db))
    assert code == 1
    assert out == ""
    assert "not found" in err


def test_missing_store_says_how_to_start_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for action in (["list"], ["show", "a" * 32], ["stats"]):
        code, _, err = run(capsys, *action, "--db", str(tmp_path / "none.db"))
        assert code == 1
        assert "no trace store" in err and "alice up" in err


def test_stats_table_and_json(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "stats", "--db", str(db))
    assert code == 0
    assert out.startswith("3 traces, 21 spans")
    assert "alice-nlu" in out and "p95" in out
    code, out, _ = run(capsys, "stats", "--db", str(db), "--json")
    report = json.loads(out)
    assert report["spans"] == 21
    tool = next(row for row in report["by_name"] if row["name"] == "router.tool")
    assert tool["count"] == 2 and tool["p99_ms"] == 900.0


def test_register_adds_alice_trace(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="alice")
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["trace", "list", "--db", str(db), "--json"])
    assert args.run(args) == 0
    assert len(json.loads(capsys.readouterr().out)["traces"]) == 3


def test_format_waterfall_fits_the_terminal() -> None:
    text = cli.format_waterfall(waterfall(request_trace("a1")), columns=90)
    assert all(len(line) <= 90 for line in text.splitlines())
