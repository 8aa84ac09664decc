"""The trace store end to end: real OTLP exports in, SQLite, `alice trace` and the JSON API out."""

from __future__ import annotations

import asyncio
import gzip
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from alice.cli import trace as cli
from alice.tracestore.config import TraceStoreConfig
from alice.tracestore.receiver import SERVICE_NAME
from alice.tracestore.server import RunningTraceStore, start, start_trace_store
from alice.tracestore.store import SpanRecord, TraceFilter, TraceStore

EXPORT = f"/{SERVICE_NAME}/Export"


@pytest.fixture(scope="module")
async def running(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningTraceStore]:
    db = tmp_path_factory.mktemp("tracestore") / "traces.db"
    store = await start(TraceStoreConfig(db_path=db, otlp_grpc_port=0, otlp_http_port=0, web_port=0))
    yield store
    await store.close()


class Service:
    """One OpenTelemetry-instrumented 'service': its own provider exporting over real OTLP/gRPC."""

    def __init__(self, name: str, endpoint: str) -> None:
        self.provider = TracerProvider(resource=Resource.create({"service.name": name}))
        self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True,
                                                                             timeout=5)))
        self.tracer = self.provider.get_tracer("test")

    async def flush(self) -> None:
        # The exporter blocks its thread until the receiver (on this event loop) answers.
        assert await asyncio.to_thread(self.provider.force_flush, 10_000)

    async def close(self) -> None:
        await asyncio.to_thread(self.provider.shutdown)


def fast_route_request(router: Service, nlu: Service) -> str:
    """Spans shaped like one router request; returns the trace id."""
    with router.tracer.start_as_current_span("/alice.router.v1.RouterService/Ask", kind=SpanKind.SERVER) as root:
        root.set_attributes({"alice.route": "fast", "alice.intent": "time.now"})
        with router.tracer.start_as_current_span("router.nlu"):
            with router.tracer.start_as_current_span("/alice.nlu.v1.NluService/Parse", kind=SpanKind.CLIENT):
                # Context crosses the "process" boundary like W3C propagation would carry it.
                with nlu.tracer.start_as_current_span("/alice.nlu.v1.NluService/Parse", kind=SpanKind.SERVER):
                    with nlu.tracer.start_as_current_span("nlu.classify") as classify:
                        classify.set_attribute("alice.confidence", 0.97)
        with router.tracer.start_as_current_span("router.cache_l1") as lookup:
            lookup.set_attribute("alice.cache.tier", "miss")
            lookup.add_event("alice.fallback", {"alice.fallback": "cache_bypass", "alice.error": "UNAVAILABLE"})
            lookup.set_status(Status(StatusCode.ERROR, "UNAVAILABLE"))
        with router.tracer.start_as_current_span("router.tool", attributes={"alice.tool": "time.now"}):
            time.sleep(0.002)
        return f"{root.get_span_context().trace_id:032x}"


def reader(running: RunningTraceStore) -> TraceStore:
    return TraceStore(running.store.path, readonly=True)


async def test_receiver_is_serving_on_grpc_health(running: RunningTraceStore) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.host.port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", SERVICE_NAME):
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_real_otlp_exports_become_one_trace_with_correct_parents(running: RunningTraceStore) -> None:
    router, nlu = Service("alice-router", running.otlp_endpoint), Service("alice-nlu", running.otlp_endpoint)
    try:
        trace_id = fast_route_request(router, nlu)
        await nlu.flush()
        await router.flush()
    finally:
        await router.close()
        await nlu.close()
    with reader(running) as store:
        spans = {(span.service, span.name, span.kind): span for span in store.get_trace(trace_id)}
        [summary] = [t for t in store.list_traces(TraceFilter(limit=50)) if t.trace_id == trace_id]
    assert len(spans) == 7
    root = spans[("alice-router", "/alice.router.v1.RouterService/Ask", "SERVER")]
    client = spans[("alice-router", "/alice.nlu.v1.NluService/Parse", "CLIENT")]
    server = spans[("alice-nlu", "/alice.nlu.v1.NluService/Parse", "SERVER")]
    classify = spans[("alice-nlu", "nlu.classify", "INTERNAL")]
    lookup = spans[("alice-router", "router.cache_l1", "INTERNAL")]
    assert root.parent_id == ""
    assert server.parent_id == client.span_id
    assert classify.parent_id == server.span_id
    assert classify.attributes["alice.confidence"] == 0.97
    assert lookup.status_code == "ERROR" and lookup.status_message == "UNAVAILABLE"
    assert lookup.events[0]["name"] == "alice.fallback"
    assert lookup.events[0]["attributes"] == {"alice.fallback": "cache_bypass", "alice.error": "UNAVAILABLE"}
    assert (summary.route, summary.root_name, summary.span_count, summary.status) == (
        "fast", "/alice.router.v1.RouterService/Ask", 7, "ERROR")
    assert summary.services == ("alice-nlu", "alice-router")


async def test_malformed_export_gets_invalid_argument_and_the_receiver_keeps_running(
        running: RunningTraceStore) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.host.port}") as channel:
        raw = channel.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)
        for garbage in (b"\xff\xff\xff\xff garbage", b"\x0a\x05\x0a"):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await raw(garbage, timeout=5)
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "ExportTraceServiceRequest" in (caught.value.details() or "")
        # Still answering, and a half-bad export is a partial success that names the rejected count.
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)  # type: ignore[no-untyped-call]
        good = Span(trace_id=bytes.fromhex("11" * 16), span_id=bytes.fromhex("22" * 8), name="ok",
                    start_time_unix_nano=time.time_ns() - 1000, end_time_unix_nano=time.time_ns())
        bad = Span(trace_id=b"\x01", span_id=bytes.fromhex("33" * 8), name="bad",
                   start_time_unix_nano=1, end_time_unix_nano=2)
        request = trace_service_pb2.ExportTraceServiceRequest(
            resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[good, bad])])])
        reply = await stub.Export(request, timeout=5)
        assert reply.partial_success.rejected_spans == 1
        assert "trace_id" in reply.partial_success.error_message
        empty = await stub.Export(trace_service_pb2.ExportTraceServiceRequest(), timeout=5)
        assert not empty.HasField("partial_success")
    with reader(running) as store:
        assert [span.name for span in store.get_trace("11" * 16)] == ["ok"]


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as error:
        return int(error.code), bytes(error.read())


def _http_request(trace_hex: str) -> bytes:
    span = Span(trace_id=bytes.fromhex(trace_hex), span_id=bytes.fromhex("44" * 8), name="via-http",
                start_time_unix_nano=time.time_ns() - 5000, end_time_unix_nano=time.time_ns())
    return trace_service_pb2.ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[span])])]).SerializeToString()


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (_http_request("55" * 16), {"Content-Type": "application/x-protobuf"}, 200),
        (gzip.compress(_http_request("66" * 16)), {"Content-Type": "application/x-protobuf",
                                                    "Content-Encoding": "gzip"}, 200),
        (b"\xff\xff garbage", {"Content-Type": "application/x-protobuf"}, 400),
        (b"{}", {"Content-Type": "application/json"}, 415),
    ],
    ids=["protobuf", "gzip", "malformed", "json-unsupported"],
)
async def test_otlp_http(running: RunningTraceStore, body: bytes, headers: dict[str, str], status: int) -> None:
    assert running.http is not None
    url = f"http://127.0.0.1:{running.http.port}/v1/traces"
    code, reply = await asyncio.to_thread(_post, url, body, headers)
    assert code == status
    if status == 200:
        response = trace_service_pb2.ExportTraceServiceResponse.FromString(reply)
        assert response.partial_success.rejected_spans == 0
        with reader(running) as store:
            assert store.list_traces(TraceFilter(limit=100))


def _get(url: str, host: str | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            data = response.read()
            kind = response.headers.get("Content-Type", "")
            return int(response.status), json.loads(data) if "json" in kind else data.decode()
    except urllib.error.HTTPError as error:
        return int(error.code), json.loads(error.read())


async def test_web_api(running: RunningTraceStore) -> None:
    router, nlu = Service("alice-router", running.otlp_endpoint), Service("alice-nlu", running.otlp_endpoint)
    try:
        trace_id = fast_route_request(router, nlu)
        await nlu.flush()
        await router.flush()
    finally:
        await router.close()
        await nlu.close()
    assert running.web_url is not None
    base = running.web_url
    code, page = await asyncio.to_thread(_get, base)
    assert code == 200 and "<title>Alice traces</title>" in page and "://" not in page.split("<script>")[0]
    code, listing = await asyncio.to_thread(_get, base + "api/traces?route=fast&limit=5")
    assert code == 200 and trace_id in [t["trace_id"] for t in listing["traces"]]
    code, errors = await asyncio.to_thread(_get, base + "api/traces?errors=1&since=1h&min_ms=0&slowest=3")
    assert code == 200 and all(t["status"] == "ERROR" for t in errors["traces"])
    code, document = await asyncio.to_thread(_get, base + f"api/traces/{trace_id}")
    assert code == 200 and len(document["spans"]) == 7 and document["spans"][0]["depth"] == 0
    code, stats = await asyncio.to_thread(_get, base + "api/stats")
    assert code == 200 and stats["spans"] >= 7
    code, missing = await asyncio.to_thread(_get, base + "api/traces/" + "ab" * 16)
    assert code == 404 and "not found" in missing["error"]
    code, bad = await asyncio.to_thread(_get, base + "api/traces?since=soon")
    assert code == 400 and "since" in bad["error"]
    code, _ = await asyncio.to_thread(_get, base + "api/traces", "evil.example")
    assert code == 403
    post_code, _ = await asyncio.to_thread(_post, base + "api/traces", b"{}", {"Content-Type": "application/json"})
    assert post_code == 405


async def test_retention_bound_through_the_receiver(tmp_path: Path) -> None:
    running = await start(TraceStoreConfig(db_path=tmp_path / "small.db", max_spans=100, otlp_grpc_port=0,
                                           otlp_http_port=-1, web_port=-1))
    service = Service("alice-router", running.otlp_endpoint)
    try:
        for _ in range(30):
            with service.tracer.start_as_current_span("root"):
                for number in range(9):
                    with service.tracer.start_as_current_span(f"child-{number}"):
                        pass
            await service.flush()
            assert running.store.span_count() <= 100
        traces = running.store.list_traces(TraceFilter(limit=1000))
        assert 9 <= len(traces) <= 10 and all(t.span_count == 10 for t in traces)
        assert running.http is None and running.web is None
    finally:
        await service.close()
        await running.close()
    assert (tmp_path / "small.db").stat().st_size < 2_000_000


@pytest.fixture(scope="module")
def big_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """100,000 spans in 10,000 ten-span traces (the `alice trace show` target's setting)."""
    path = tmp_path_factory.mktemp("big") / "traces.db"
    now = time.time_ns()
    target = ""
    with TraceStore(path, max_spans=200_000) as store:
        batch: list[SpanRecord] = []
        for number in range(10_000):
            trace_id = f"{number:032x}"
            start_ns = now - (10_000 - number) * 1_000_000
            ids = [f"{number:08x}{child:08x}" for child in range(10)]
            batch.extend(SpanRecord(trace_id, ids[child], ids[0] if child else "", "alice-router",
                                    f"op-{child}", "INTERNAL", start_ns + child * 100_000,
                                    start_ns + (10 - child) * 200_000 + child * 100_000)
                         for child in range(10))
            if number == 4_321:
                target = trace_id
            if len(batch) >= 10_000:
                store.insert(batch)
                batch = []
        assert store.span_count() == 100_000
    yield path, target


def test_trace_show_in_a_store_of_100000_spans(big_store: tuple[Path, str],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """Correctness only; the time is measured by benchmarks/trace_show_bench.py."""
    path, trace_id = big_store
    assert cli.main(["show", trace_id, "--db", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"trace {trace_id}")
    assert sum("|" in line for line in out.splitlines()) == 10  # ten span rows
    assert cli.main(["show", "f" * 32, "--db", str(path)]) == 1
    assert "not found" in capsys.readouterr().err


def test_trace_store_as_a_child_process(tmp_path: Path) -> None:
    """What `alice up` does: start `python -m alice.tracestore`, export to it, read it with the CLI, stop it."""
    db = tmp_path / "traces.db"
    log = (tmp_path / "tracestore.log").open("wb")
    with start_trace_store(db, otlp_grpc_port=0, otlp_http_port=0, web_port=0, log=log) as handle:
        assert handle.web_url is not None and handle.otlp_http_endpoint is not None
        provider = TracerProvider(resource=Resource.create({"service.name": "alice-router"}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=handle.otlp_endpoint,
                                                                        insecure=True, timeout=5)))
        with provider.get_tracer("test").start_as_current_span("root") as root:
            root.set_attribute("alice.route", "micro")
        assert provider.force_flush(10_000)
        provider.shutdown()
        trace_id = f"{root.get_span_context().trace_id:032x}"
        listing = subprocess.run([sys.executable, "-m", "alice.cli.trace", "list", "--db", str(db), "--json"],
                                 capture_output=True, check=True, text=True, timeout=60)
        assert [t["trace_id"] for t in json.loads(listing.stdout)["traces"]] == [trace_id]
        assert json.loads(listing.stdout)["traces"][0]["route"] == "micro"
        code, page = _get(handle.web_url)
        assert code == 200 and "Alice traces" in page
    assert handle.process.returncode == 0
    log.close()
