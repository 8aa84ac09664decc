"""The SQLite trace store: insert, summaries, filters, id lookup, retention by count and age, stats."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import pytest
from tracestore_helpers import MS, NOW_NS, make_span, request_trace

from alice.tracestore.store import (
    AmbiguousTraceId,
    SpanRecord,
    TraceFilter,
    TraceNotFound,
    TraceStore,
    duration_stats,
    parse_since,
)


def test_insert_and_get_trace_round_trips_every_field(store: TraceStore) -> None:
    event = {"name": "alice.fallback", "time_ns": NOW_NS - 20, "attributes": {"alice.fallback": "nlu_rules"}}
    record = SpanRecord("ab" * 16, "cd" * 8, "", "alice-router", "Ask", "SERVER", NOW_NS - 30, NOW_NS, "ERROR",
                        "boom", {"alice.route": "fast", "n": 3, "ok": True, "list": ["a", "b"]}, [event])
    assert store.insert([record]) == 1
    assert store.get_trace("ab" * 16) == [record]


def test_duplicate_spans_are_ignored(store: TraceStore) -> None:
    spans = request_trace("d1")
    assert store.insert(spans) == 10
    assert store.insert(spans[:3]) == 0
    assert store.span_count() == 10
    assert store.list_traces()[0].span_count == 10


def test_summary_uses_the_root_span_even_when_it_arrives_last(store: TraceStore,
                                                              ) -> None:
    spans = request_trace("e1", route="micro")
    store.insert(spans[1:])
    early = store.list_traces()[0]
    assert early.root_name != "/alice.router.v1.RouterService/Ask"  # no root yet: the earliest orphan stands in
    store.insert(spans[:1])
    [summary] = store.list_traces()
    assert summary.root_name == "/alice.router.v1.RouterService/Ask"
    assert summary.root_service == "alice-router"
    assert summary.route == "micro"
    assert summary.span_count == 10
    assert summary.duration_ns == 40 * MS
    assert summary.services == ("alice-cache", "alice-nlu", "alice-router")
    assert summary.status == "UNSET"


def test_a_span_whose_parent_was_never_received_counts_as_root(store: TraceStore) -> None:
    store.insert([make_span("f1", "02", "99", 0, 5, name="server"), make_span("f1", "03", "02", 1, 2, name="inner")])
    assert store.list_traces()[0].root_name == "server"


def test_errors_in_any_span_mark_the_trace(store: TraceStore) -> None:
    store.insert([make_span("aa", "01", "", 0, 5), make_span("aa", "02", "01", 1, 2, status="ERROR"),
                  make_span("bb", "01", "", 10, 5)])
    traces = {trace.trace_id[:2]: trace for trace in store.list_traces()}
    assert traces["aa"].status == "ERROR"
    assert traces["aa"].error_count == 1
    assert traces["bb"].status == "UNSET"
    assert [t.trace_id[:2] for t in store.list_traces(TraceFilter(errors_only=True))] == ["aa"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (TraceFilter(), ["c5", "c4", "c3", "c2", "c1"]),
        (TraceFilter(limit=2), ["c5", "c4"]),
        (TraceFilter(slowest=2), ["c1", "c2"]),
        (TraceFilter(route="micro"), ["c4", "c2"]),
        (TraceFilter(min_ms=35), ["c3", "c2", "c1"]),
        (TraceFilter(since_ns=NOW_NS - 60_000 * MS + 2_500 * MS), ["c5", "c4", "c3"]),
        (TraceFilter(route="micro", min_ms=35), ["c2"]),
    ],
    ids=["newest-first", "limit", "slowest", "route", "min-ms", "since", "combined"],
)
def test_list_filters(store: TraceStore, query: TraceFilter, expected: list[str]) -> None:
    for number in range(1, 6):
        store.insert([make_span(f"c{number}", "01", "", number * 1000, 50 - number * 5,
                           alice__route="micro" if number % 2 == 0 else "fast")])
    assert [trace.trace_id[:2] for trace in store.list_traces(query)] == expected


def test_trace_id_prefix_and_not_found(store: TraceStore) -> None:
    store.insert([make_span("abcd1", "01"), make_span("abcd2", "01")])
    assert store.resolve("abcd1") == "abcd1".ljust(32, "0")
    assert store.resolve("ABCD1" + "0" * 27) == "abcd1".ljust(32, "0")
    with pytest.raises(AmbiguousTraceId, match="more than one"):
        store.resolve("abcd")
    with pytest.raises(TraceNotFound, match="32 hex digits"):
        store.resolve("abc")  # too short to look up
    with pytest.raises(TraceNotFound, match="not found"):
        store.get_trace("f" * 32)
    with pytest.raises(TraceNotFound, match="32 hex digits"):
        store.get_trace("not-a-trace")


def test_retention_by_span_count_deletes_the_oldest_whole_traces(tmp_path: Path) -> None:
    with TraceStore(tmp_path / "t.db", max_spans=100, max_age_s=86_400, clock_ns=lambda: NOW_NS) as store:
        for number in range(25):
            store.insert(request_trace(f"{number:04x}", base_ns=NOW_NS - (100 - number) * 1000 * MS))
            assert store.span_count() <= 100
        kept = [trace.trace_id[:4] for trace in store.list_traces(TraceFilter(limit=100))]
        # Pruned in batches down to 90% of the bound: whole traces, oldest first.
        assert kept == [f"{number:04x}" for number in reversed(range(25))][:len(kept)]
        assert all(trace.span_count == 10 for trace in store.list_traces(TraceFilter(limit=100)))
        assert store.span_count() == 10 * len(kept)


def test_retention_by_age(tmp_path: Path) -> None:
    now = [NOW_NS]
    with TraceStore(tmp_path / "t.db", max_spans=1000, max_age_s=60, clock_ns=lambda: now[0]) as store:
        store.insert([make_span("01", "01", base_ns=NOW_NS - 50_000 * MS)])
        store.insert([make_span("02", "01", base_ns=NOW_NS - 10_000 * MS)])
        assert store.trace_count() == 2
        now[0] += 20_000 * MS
        store.insert([make_span("03", "01", base_ns=now[0])])
        assert [t.trace_id[:2] for t in store.list_traces()] == ["03", "02"]
        assert store.span_count() == 2


def test_retention_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    with TraceStore(path, max_spans=100, clock_ns=lambda: NOW_NS) as store:
        store.insert([make_span(f"{n:02x}", "01", start_ms=n) for n in range(80)])
    with TraceStore(path, max_spans=100, clock_ns=lambda: NOW_NS) as store:
        store.insert([make_span(f"{n:02x}", "01", start_ms=n) for n in range(80, 130)])
        assert store.span_count() <= 100
        assert store.list_traces(TraceFilter(limit=1))[0].trace_id[:2] == f"{129:02x}"


def test_read_only_store(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    with pytest.raises(FileNotFoundError, match="no trace store"):
        TraceStore(path, readonly=True)
    with TraceStore(path, clock_ns=lambda: NOW_NS) as writer:
        writer.insert([make_span("01", "01")])
        with TraceStore(path, readonly=True) as reader:
            assert reader.span_count() == 1
            with pytest.raises(PermissionError):
                reader.insert([make_span("02", "01")])
            writer.insert([make_span("02", "01")])
            assert reader.trace_count() == 2  # WAL: a reader sees the writer's committed inserts


def test_stats_per_service_and_name(store: TraceStore) -> None:
    for number in range(20):
        store.insert(request_trace(f"{number:02x}", tool_ms=10 + number))
    report = store.stats()
    assert report.traces == 20
    assert report.spans == 200
    assert set(report.by_service) == {"alice-router", "alice-nlu", "alice-cache"}
    assert report.by_service["alice-nlu"].count == 40
    tool = report.by_name[("alice-router", "router.tool")]
    assert (tool.count, tool.p50_ms, tool.p95_ms, tool.p99_ms) == (20, 19.0, 28.0, 29.0)
    # Span names are listed per service, most total time first.
    router_names = [name for service, name in report.by_name if service == "alice-router"]
    assert router_names[0] == "/alice.router.v1.RouterService/Ask"
    assert report.to_dict()["by_name"][0]["service"] == "alice-cache"


def test_stats_since_and_empty(store: TraceStore) -> None:
    assert store.stats().spans == 0
    store.insert([make_span("01", "01", base_ns=NOW_NS - 100_000 * MS), make_span("02", "01", base_ns=NOW_NS)])
    assert store.stats(since_ns=NOW_NS - 1).spans == 1


def test_duration_stats_nearest_rank() -> None:
    stats = duration_stats([n * MS for n in range(1, 101)])
    assert (stats.count, stats.p50_ms, stats.p95_ms, stats.p99_ms, stats.total_ms) == (100, 50.0, 95.0, 99.0, 5050.0)
    assert duration_stats([]).p99_ms == 0.0


@pytest.mark.parametrize(
    ("text", "expected_age_s"),
    [("90s", 90), ("10m", 600), ("2h", 7200), ("1d", 86_400), ("1.5h", 5400)],
    ids=["seconds", "minutes", "hours", "days", "fraction"],
)
def test_parse_since_ages(text: str, expected_age_s: float) -> None:
    assert parse_since(text, NOW_NS) == NOW_NS - int(expected_age_s * 1e9)


def test_parse_since_iso_and_bad_input() -> None:
    assert parse_since("2026-03-10T09:00:00+00:00", 0) == NOW_NS
    with pytest.raises(ValueError, match="neither an age"):
        parse_since("yesterday", NOW_NS)


@pytest.mark.parametrize("seed", range(12))
def test_summaries_merged_on_insert_equal_the_ones_recomputed_from_spans(store: TraceStore, seed: int) -> None:
    """Spans of two requests (and an extra orphan and a second root) arrive in random batches, duplicates too;
    after every insert the summaries equal a recomputation from the stored spans."""
    rng = random.Random(seed)
    spans = [*request_trace("t1", route="cache"), *request_trace("t2", route="fast", tool_ms=5),
             make_span("t1", "77", "66", 3, 1, name="orphan", service="alice-llm", status="ERROR"),
             make_span("t2", "88", "", 30, 1, name="late root")]
    # Distinct start times, so "the earliest" is one span in SQL and in Python alike.
    spans = [replace(span, start_ns=span.start_ns + index) for index, span in enumerate(spans)]
    rng.shuffle(spans)
    while spans:
        size = rng.randint(1, 6)
        batch, spans = spans[:size], spans[size:]
        if rng.random() < 0.2:
            batch.append(batch[0])  # an exporter retry
        store.insert(batch)
        merged = store.list_traces()
        store._refresh([summary.trace_id for summary in merged])  # what the stored spans say
        assert merged == store.list_traces()
