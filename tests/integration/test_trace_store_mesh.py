"""Real processes export to the local trace store; one router request is one stored trace (issue 8)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from alice.cli.ask import build_request
from alice.local.mesh import LocalMesh
from alice.router.v1 import router_service_pb2 as pb
from alice.router.v1 import router_service_pb2_grpc as pb_grpc
from alice.runtime.auth import bearer_metadata
from alice.taxonomy import Route
from alice.tracestore.store import SpanRecord, TraceNotFound, TraceStore

NOW_DATE = "2026-03-10"


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalMesh, Path]]:
    work = tmp_path_factory.mktemp("traces")
    # One model for both roles keeps the start short; CLARIFY_MIN_CONFIDENCE=1 keeps "missing slot" on micro,
    # and MICRO_MAX_SHARE=1 lets the first decision be micro (the quota is strict over the decisions it has seen).
    env = {"LLM_PLANNER_MODEL": "micro", "LLM_WARM_DATE": NOW_DATE, "CLARIFY_MIN_CONFIDENCE": "1.0",
           "RATE_LIMIT_PER_S": "100", "MICRO_MAX_SHARE": "1.0"}
    with LocalMesh(env=env, trace_db=work / "traces.db", auth_dir=work / "auth", quiet=True) as local:
        yield local, work / "traces.db"


def _ask(mesh: LocalMesh, text: str) -> pb.AskResponse:
    assert mesh.credentials is not None
    now = dt.datetime.fromisoformat(f"{NOW_DATE}T09:00:00+01:00")
    with grpc.insecure_channel(mesh.address("router")) as channel:
        reply: pb.AskResponse = pb_grpc.RouterServiceStub(channel).Ask(
            build_request(text, "tracer", now=now), timeout=30,
            metadata=tuple(bearer_metadata(mesh.credentials.bearer_for("tracer"))))
        return reply


def _stored(db: Path, trace_id: str, services: set[str]) -> list[SpanRecord]:
    """The trace's spans once every expected service's server span has arrived (batches flush every 200 ms)."""
    deadline = time.monotonic() + 20
    spans: list[SpanRecord] = []
    while time.monotonic() < deadline:
        with TraceStore(db) as store:
            try:
                spans = store.get_trace(trace_id)
            except TraceNotFound:
                spans = []
        if services <= {s.service for s in spans if s.kind == "SERVER"}:
            return spans
        time.sleep(0.2)
    return spans


def _check_tree(spans: list[SpanRecord], trace_id: str) -> dict[str, SpanRecord]:
    assert {s.trace_id for s in spans} == {trace_id}
    by_id = {s.span_id: s for s in spans}
    roots = [s for s in spans if not s.parent_id]
    assert [r.service for r in roots] == ["alice-router"] and roots[0].kind == "SERVER"
    for span in spans:
        if span.parent_id:
            assert span.parent_id in by_id, f"{span.service} {span.name} has a parent outside the trace"
    for span in spans:
        if span.kind == "SERVER" and span.service != "alice-router":
            parent = by_id[span.parent_id]
            assert parent.kind == "CLIENT" and parent.service == "alice-router", span.name
    return {s.name: s for s in spans}


def _ms(span: SpanRecord) -> float:
    return span.duration_ns / 1e6


def test_fast_route_trace_has_router_nlu_and_cache_spans(mesh: tuple[LocalMesh, Path]) -> None:
    local, db = mesh
    reply = _ask(local, "vad är klockan nu")
    assert reply.route == Route.ROUTE_FAST
    spans = _stored(db, reply.trace_id, {"alice-router", "alice-nlu", "alice-cache"})
    named = _check_tree(spans, reply.trace_id)
    assert {s.service for s in spans if s.kind == "SERVER"} == {"alice-router", "alice-nlu", "alice-cache"}
    assert abs(reply.latency.nlu_ms - _ms(named["router.nlu"])) < 1.0
    assert abs(reply.latency.tool_ms - _ms(named["router.tool"])) < 1.0
    assert abs(reply.latency.route_ms - _ms(named["router.route"])) < 1.0
    tool = named["router.tool"]  # the tool run records on its stage span: one span, not two
    assert not any(s.name.startswith("tool.") for s in spans)
    assert {key: tool.attributes.get(key) for key in ("alice.tool", "alice.tool.name", "alice.tool.mutated")} == \
        {"alice.tool": "time.now", "alice.tool.name": "time.now", "alice.tool.mutated": False}


def test_micro_route_trace_includes_the_llm_spans(mesh: tuple[LocalMesh, Path]) -> None:
    local, db = mesh
    reply = _ask(local, "kan du booka in ett möte med Ida")
    assert reply.route == Route.ROUTE_MICRO, reply
    spans = _stored(db, reply.trace_id, {"alice-router", "alice-nlu", "alice-cache", "alice-llm"})
    named = _check_tree(spans, reply.trace_id)
    llm = [s for s in spans if s.service == "alice-llm" and s.attributes.get("gen_ai.operation.name")]
    assert llm, [s.name for s in spans if s.service == "alice-llm"]
    assert any("gen_ai.request.model" in s.attributes for s in llm)
    assert abs(reply.latency.llm_total_ms - _ms(named["router.llm_micro"])) < 1.0
    assert abs(reply.latency.nlu_ms - _ms(named["router.nlu"])) < 1.0


def test_a_tool_that_writes_to_redis_has_its_redis_span_under_router_tool(mesh: tuple[LocalMesh, Path]) -> None:
    local, db = mesh
    reply = _ask(local, "sätt en timer på fem minuter")
    assert reply.route == Route.ROUTE_FAST, reply
    spans = _stored(db, reply.trace_id, {"alice-router", "alice-nlu", "alice-cache"})
    named = _check_tree(spans, reply.trace_id)
    tool = named["router.tool"]
    assert tool.attributes.get("alice.tool.name") == "timer.set" and tool.attributes.get("alice.tool.mutated") is True
    redis = [s for s in spans if s.service == "alice-router" and s.attributes.get("db.system") == "redis"]
    assert redis and all(s.kind == "CLIENT" and s.parent_id == tool.span_id for s in redis)
    assert all("?" in str(s.attributes["db.statement"]) for s in redis)  # never the values
    assert "router.cache_store" not in named  # a timer is never cached: no Store call to be declined
