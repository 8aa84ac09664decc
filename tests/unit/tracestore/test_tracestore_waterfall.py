"""The waterfall: tree order, depth, offsets and the critical path."""

from __future__ import annotations

from tracestore_helpers import MS, make_span, request_trace

from alice.tracestore.store import trace_document, waterfall


def test_tree_order_depth_and_offsets() -> None:
    spans = request_trace("a1")
    rows = waterfall(list(reversed(spans)))  # arrival order does not matter
    assert [row.span.span_id[:2] for row in rows] == ["01", "06", "07", "08", "02", "03", "04", "05", "09", "0a"]
    depth = {row.span.span_id[:2]: row.depth for row in rows}
    assert (depth["01"], depth["02"], depth["03"], depth["04"], depth["05"]) == (0, 1, 2, 3, 4)
    assert rows[0].offset_ns == 0
    assert rows[-1].offset_ns == int(12.7 * MS)


def test_critical_path_follows_what_the_end_waited_for() -> None:
    rows = waterfall(request_trace("a1"))
    critical = {row.span.span_id[:2] for row in rows if row.critical}
    # The tool ends last; before it the route decision; before that the NLU chain (the alias lookup finished
    # earlier, in parallel, so it is not on the path).
    assert critical == {"01", "0a", "09", "02", "03", "04", "05"}


def test_parallel_children_only_the_later_one_is_critical() -> None:
    spans = [make_span("b1", "01", "", 0, 10), make_span("b1", "02", "01", 0, 4), make_span("b1", "03", "01", 0, 9)]
    assert [row.critical for row in waterfall(spans)] == [True, False, True]


def test_child_outliving_its_parent_is_clamped_not_lost() -> None:
    spans = [make_span("b2", "01", "", 0, 10), make_span("b2", "02", "01", 2, 30), make_span("b2", "03", "01", 1, 1)]
    rows = {row.span.span_id[:2]: row.critical for row in waterfall(spans)}
    assert rows == {"01": True, "02": True, "03": True}


def test_orphans_and_cycles_are_still_shown() -> None:
    spans = [make_span("c1", "01", "", 0, 10), make_span("c1", "02", "ff", 1, 2),
             make_span("c1", "03", "04", 2, 1), make_span("c1", "04", "03", 3, 1)]
    rows = waterfall(spans)
    assert sorted(row.span.span_id[:2] for row in rows) == ["01", "02", "03", "04"]
    assert {row.span.span_id[:2]: row.depth for row in rows}["02"] == 0


def test_empty_trace() -> None:
    assert waterfall([]) == []


def test_trace_document_summary() -> None:
    document = trace_document(waterfall(request_trace("a1", route="micro")))
    assert document["span_count"] == 10
    assert document["route"] == "micro"
    assert document["duration_ms"] == 40.0
    assert document["services"] == ["alice-cache", "alice-nlu", "alice-router"]
    assert document["spans"][0]["critical"] is True
    assert {"depth", "offset_ms", "duration_ms", "attributes", "events"} <= set(document["spans"][0])
