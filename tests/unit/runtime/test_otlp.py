"""The fast OTLP encoder produces exactly the request the SDK's encoder produces; the batch processor batches,
flushes and drops as the SDK's does, and counts what it drops."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from unittest import mock

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

from alice.runtime.otlp import BatchSpanExport, SpanEncoder


def _spans() -> tuple[ReadableSpan, ...]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "alice-test", "n": 3},
                                                       schema_url="https://opentelemetry.io/schemas/1.21.0"))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("alice")
    other = provider.get_tracer("opentelemetry.instrumentation.redis", "0.66b2",
                                schema_url="https://opentelemetry.io/schemas/1.11.0", attributes={"x": "y"})
    remote = SpanContext(0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, is_remote=True,
                         trace_flags=TraceFlags(1), trace_state=TraceState([("vendor", "abc"), ("k", "v")]))
    with tracer.start_as_current_span("/alice.router.v1.RouterService/Ask", context=trace.set_span_in_context(
            trace.NonRecordingSpan(remote)), kind=SpanKind.SERVER,
            attributes={"rpc.system": "grpc", "rpc.grpc.status_code": 0}) as root:
        root.set_attributes({"alice.route": "cache", "alice.confidence": 0.9871, "alice.degraded": "",
                             "alice.flag": False, "alice.ok": True, "alice.count": -5, "alice.big": 2**62,
                             "alice.nlu.slots": ("date", "location"), "alice.scores": (0.5, 1.0),
                             "alice.empty": (), "alice.ints": [1, -2], "alice.bytes": b"\x00\x01"})
        with tracer.start_as_current_span("router.nlu", links=[Link(remote, {"why": "retry"})]) as span:
            span.add_event("alice.fallback", {"alice.fallback": "nlu_rules", "alice.error": "UNAVAILABLE"})
            span.add_event("bare")
            span.set_status(Status(StatusCode.ERROR, "nlu: UNAVAILABLE: åäö"))
        with other.start_as_current_span("HGETALL", kind=SpanKind.CLIENT, attributes={"db.system": "redis"}):
            pass
        with tracer.start_as_current_span("") as unnamed:
            unnamed.set_status(Status(StatusCode.OK))
    with other.start_as_current_span("unrelated root"):
        pass
    provider.shutdown()
    return memory.get_finished_spans()


def test_same_request_as_the_sdk_encoder() -> None:
    spans = _spans()
    encoder = SpanEncoder()
    ours = ExportTraceServiceRequest.FromString(encoder.encode(spans))
    assert ours == encode_spans(spans)
    assert encoder.encode(spans) == encode_spans(spans).SerializeToString()  # byte for byte
    again = ExportTraceServiceRequest.FromString(encoder.encode(spans))  # from the caches
    assert again == encode_spans(spans)
    assert len(ours.resource_spans) == 1 and len(ours.resource_spans[0].scope_spans) == 2
    many = spans * 10
    with mock.patch("alice.runtime.otlp.time.sleep", wraps=time.sleep) as sleep:
        paused = SpanEncoder(pause_after_s=1e-9).encode(many)
    assert sleep.call_count == len(many) // 16  # it released the GIL, and that changed nothing
    assert paused == SpanEncoder().encode(many)


def test_span_with_no_resource_attributes_or_scope_fields() -> None:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource({}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with provider.get_tracer("").start_as_current_span("x"):
        pass
    spans = memory.get_finished_spans()
    assert ExportTraceServiceRequest.FromString(SpanEncoder().encode(spans)) == encode_spans(spans)


def test_empty_batch() -> None:
    assert SpanEncoder().encode([]) == b""


class _Recorder(SpanExporter):
    """Records each batch; `gate` (when given) holds every export until it is set."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.batches: list[list[str]] = []
        self.gate = gate
        self.shut = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self.gate is not None:
            self.gate.wait(5)
        self.batches.append([span.name for span in spans])
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.shut = True


def _ended(names: Sequence[str]) -> list[ReadableSpan]:
    provider = TracerProvider()
    tracer = provider.get_tracer("t")
    spans = []
    for name in names:
        span = tracer.start_span(name)
        span.end()
        spans.append(span)
    return spans  # type: ignore[return-value]


def _until(condition: object, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.01)


def test_a_full_batch_goes_out_at_once_and_the_rest_after_the_delay() -> None:
    exporter = _Recorder()
    processor = BatchSpanExport(exporter, delay_s=0.3, queue_size=100, batch_size=3, on_drop=lambda _: None)
    try:
        for span in _ended(["a", "b", "c", "d"]):
            processor.on_end(span)
        _until(lambda: exporter.batches)
        assert exporter.batches == [["a", "b", "c"]]  # the full batch, in order; "d" waits for the delay
        _until(lambda: len(exporter.batches) == 2)
        assert exporter.batches == [["a", "b", "c"], ["d"]]
    finally:
        processor.shutdown()
    assert exporter.shut


def test_flush_and_shutdown_export_everything_queued() -> None:
    exporter = _Recorder()
    processor = BatchSpanExport(exporter, delay_s=60, queue_size=100, batch_size=50, on_drop=lambda _: None)
    for span in _ended(["a", "b"]):
        processor.on_end(span)
    assert processor.force_flush()
    assert exporter.batches == [["a", "b"]]
    processor.on_end(_ended(["c"])[0])
    processor.shutdown()
    assert exporter.batches == [["a", "b"], ["c"]] and exporter.shut


def test_spans_ending_during_an_export_wait_for_the_next_round() -> None:
    gate = threading.Event()
    exporter = _Recorder(gate)
    processor = BatchSpanExport(exporter, delay_s=60, queue_size=100, batch_size=50, on_drop=lambda _: None)
    try:
        spans = _ended(["a", "b", "c", "d"])
        for span in spans[:2]:
            processor.on_end(span)
        flush = threading.Thread(target=processor.force_flush)
        flush.start()
        _until(lambda: not processor._queue)  # the flush took a and b, and waits in the exporter
        for span in spans[2:]:
            processor.on_end(span)
        gate.set()
        flush.join(5)
        assert exporter.batches == [["a", "b"]]  # not followed at once by a batch of c and d
        assert [span.name for span in processor._queue] == ["c", "d"]
    finally:
        gate.set()
        processor.shutdown()
    assert exporter.batches == [["a", "b"], ["c", "d"]]


def test_a_full_queue_drops_and_reports_each_span() -> None:
    gate = threading.Event()
    exporter = _Recorder(gate)
    drops: list[str] = []
    processor = BatchSpanExport(exporter, delay_s=60, queue_size=4, batch_size=2, on_drop=drops.append)
    try:
        spans = _ended([str(n) for n in range(10)])
        for span in spans[:2]:
            processor.on_end(span)
        _until(lambda: not processor._queue)  # the worker took the first batch and waits in the exporter
        for span in spans[2:]:
            processor.on_end(span)
        assert drops == ["queue_full"] * 4  # 4 queued, the newest 4 dropped
    finally:
        gate.set()
        processor.shutdown()
    assert [name for batch in exporter.batches for name in batch] == [str(n) for n in range(6)]
    processor.on_end(spans[0])
    assert drops[-1] == "shutdown"
