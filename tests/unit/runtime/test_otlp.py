"""The fast OTLP encoder produces exactly the request the SDK's encoder produces."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

from alice.runtime.otlp import SpanEncoder


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
    assert SpanEncoder(pause_every=2).encode(spans) == encoder.encode(spans)  # pausing changes nothing


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
