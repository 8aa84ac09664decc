"""LeanTracerProvider records what the SDK's TracerProvider records for the same calls."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry import context as context_api
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

from alice.runtime.spans import LeanTracerProvider

RESOURCE = Resource.create({"service.name": "alice-test"})


class CountingIds(IdGenerator):
    """Deterministic ids, so both providers produce the same trace and span ids."""

    def __init__(self) -> None:
        self.next = 0

    def generate_span_id(self) -> int:
        self.next += 1
        return self.next

    def generate_trace_id(self) -> int:
        self.next += 1
        return 0xABC00000000000000000000000000000 + self.next


def _record(provider: TracerProvider, scenario: Callable[[trace.Tracer], None]) -> tuple[ReadableSpan, ...]:
    provider.id_generator = CountingIds()  # type: ignore[assignment]
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    scenario(provider.get_tracer("alice", "1.0"))
    provider.shutdown()
    return memory.get_finished_spans()


def _both(scenario: Callable[[trace.Tracer], None], ratio: float = 1.0,
          limits: SpanLimits | None = None) -> tuple[tuple[ReadableSpan, ...], tuple[ReadableSpan, ...]]:
    sdk = TracerProvider(resource=RESOURCE, sampler=ParentBased(TraceIdRatioBased(ratio)), span_limits=limits)
    lean = LeanTracerProvider(resource=RESOURCE, sample_ratio=ratio, span_limits=limits)
    return _record(sdk, scenario), _record(lean, scenario)


def _view(span: ReadableSpan) -> dict[str, Any]:
    """What an exporter sees of a span, minus timestamps."""
    events = [(e.name, dict(e.attributes or {})) for e in span.events]
    for _, attributes in events:
        attributes.pop("exception.stacktrace", None)
    return {
        "name": span.name, "kind": span.kind, "context": span.context, "parent": span.parent,
        "attributes": dict(span.attributes or {}), "events": events,
        "links": [(link.context, dict(link.attributes or {})) for link in span.links],
        "status": (span.status.status_code, span.status.description), "scope": span.instrumentation_scope,
        "resource": span.resource.attributes, "dropped": (span.dropped_attributes, span.dropped_events,
                                                          span.dropped_links),
        "ended": span.end_time is not None and span.start_time is not None and span.end_time >= span.start_time,
    }


def _pipeline(tracer: trace.Tracer) -> None:
    remote = SpanContext(0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331, is_remote=True,
                         trace_flags=TraceFlags(TraceFlags.SAMPLED), trace_state=TraceState([("k", "v")]))
    parent = trace.set_span_in_context(trace.NonRecordingSpan(remote))
    with tracer.start_as_current_span("/alice.router.v1.RouterService/Ask", context=parent, kind=SpanKind.SERVER,
                                      attributes={"rpc.system": "grpc", "rpc.grpc.status_code": 0}) as root:
        root.set_attributes({"alice.route": "cache", "alice.confidence": 0.98, "alice.ok": True,
                             "alice.slots": ["date", "location"], "alice.map": {"a": 1}})
        with tracer.start_as_current_span("router.nlu", links=[Link(remote, {"why": "retry"})]) as stage:
            stage.add_event("alice.fallback", {"alice.fallback": "nlu_rules", "alice.error": "UNAVAILABLE"})
            client = tracer.start_span("/alice.nlu.v1.NluService/Parse", kind=SpanKind.CLIENT,
                                       attributes={"rpc.method": "Parse"})
            client.set_status(Status(StatusCode.ERROR, "UNAVAILABLE: down"))
            client.set_status(Status(StatusCode.UNSET))  # ignored
            client.end()
        with tracer.start_as_current_span("router.route") as route:
            route.set_status(StatusCode.OK)
            route.set_status(Status(StatusCode.ERROR, "too late"))  # OK is final
            route.update_name("router.route.decided")
        with pytest.raises(ValueError), tracer.start_as_current_span("router.tool"):
            raise ValueError("tool failed")
        with tracer.start_as_current_span("quiet", record_exception=False, set_status_on_exception=False), \
                pytest.raises(KeyError):
            raise KeyError("x")
        open_span = tracer.start_span("manual")
        with trace.use_span(open_span, end_on_exit=True):
            pass
        open_span.set_attribute("after.end", 1)  # ignored, with a warning
    with tracer.start_as_current_span("second root"):
        pass


def test_same_spans_as_the_sdk() -> None:
    sdk, lean = _both(_pipeline)
    assert [_view(s) for s in lean] == [_view(s) for s in sdk]
    assert len(lean) == 8
    stacktraces = [(e.attributes or {})["exception.stacktrace"] for s in lean for e in s.events
                   if e.name == "exception"]
    assert len(stacktraces) == 1 and "ValueError: tool failed" in stacktraces[0]  # type: ignore[operator]


def test_same_otlp_export_as_the_sdk() -> None:
    sdk, lean = _both(_pipeline)
    sdk_request, lean_request = encode_spans(sdk), encode_spans(lean)
    for request in (sdk_request, lean_request):
        for span in request.resource_spans[0].scope_spans[0].spans:
            span.start_time_unix_nano = span.end_time_unix_nano = 1
            for event in span.events:
                event.time_unix_nano = 1
                for attribute in event.attributes:
                    if attribute.key == "exception.stacktrace":
                        attribute.value.string_value = ""
    assert lean_request == sdk_request


@pytest.mark.parametrize("ratio", [0.0, 0.25, 1.0], ids=["none", "quarter", "all"])
def test_sampling_follows_the_ratio_at_the_root_and_the_parent_below(ratio: float) -> None:
    def many_roots(tracer: trace.Tracer) -> None:
        for _ in range(200):
            with tracer.start_as_current_span("root"), tracer.start_as_current_span("child"):
                pass

    sdk, lean = _both(many_roots, ratio)
    assert [_view(s) for s in lean] == [_view(s) for s in sdk]


def test_unsampled_parent_gives_a_non_recording_span_with_the_parents_context() -> None:
    exporter = InMemorySpanExporter()
    provider = LeanTracerProvider(resource=RESOURCE, sample_ratio=1.0)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("alice")
    parent = trace.NonRecordingSpan(SpanContext(0x1234, 0x5678, is_remote=True,
                                                trace_flags=TraceFlags(TraceFlags.DEFAULT)))
    with trace.use_span(parent):
        with tracer.start_as_current_span("child") as child, tracer.start_as_current_span("grandchild") as grandchild:
            pass
    # What a downstream call carries is the parent's unsampled context: the same object, no new ids.
    assert child is parent and grandchild is parent and not child.is_recording()
    assert exporter.get_finished_spans() == ()


def test_limits_drop_and_count(caplog: pytest.LogCaptureFixture) -> None:
    def crowded(tracer: trace.Tracer) -> None:
        with tracer.start_as_current_span("crowded", attributes={f"a{i}": i for i in range(5)}) as span:
            span.set_attribute("long", "x" * 50)
            for i in range(4):
                span.add_event(f"e{i}", {"k": "v" * 50})

    limits = SpanLimits(max_span_attributes=3, max_events=2, max_attribute_length=10,
                        max_span_attribute_length=10)
    with caplog.at_level(logging.WARNING):
        sdk, lean = _both(crowded, limits=limits)
    assert [_view(s) for s in lean] == [_view(s) for s in sdk]
    assert lean[0].dropped_attributes == 3 and lean[0].dropped_events == 2


def test_current_span_is_restored_after_the_block() -> None:
    tracer = LeanTracerProvider(resource=RESOURCE, sample_ratio=1.0).get_tracer("alice")
    before = context_api.get_current()
    with tracer.start_as_current_span("outer") as outer:
        with tracer.start_as_current_span("inner") as inner:
            assert trace.get_current_span() is inner
        assert trace.get_current_span() is outer
    assert context_api.get_current() == before


def test_disabled_sdk_gives_no_op_tracers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    tracer = LeanTracerProvider(resource=RESOURCE, sample_ratio=1.0).get_tracer("alice")
    assert isinstance(tracer, trace.NoOpTracer)
