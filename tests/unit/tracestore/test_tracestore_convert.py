"""OTLP export requests flattened into span records; invalid spans counted, not stored."""

from __future__ import annotations

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from alice.tracestore.receiver import MAX_STRING, convert

TRACE = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")
SPAN = bytes.fromhex("b7ad6b7169203331")
PARENT = bytes.fromhex("00f067aa0ba902b7")


def kv(key: str, value: AnyValue) -> KeyValue:
    return KeyValue(key=key, value=value)


def request(*spans: Span, service: str | None = "alice-router") -> ExportTraceServiceRequest:
    resource = Resource(attributes=[kv("service.name", AnyValue(string_value=service))] if service else [])
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(
        resource=resource, scope_spans=[ScopeSpans(spans=list(spans))])])


def good_span(**changes: object) -> Span:
    span = Span(trace_id=TRACE, span_id=SPAN, parent_span_id=PARENT, name="router.nlu", kind=Span.SPAN_KIND_SERVER,
                start_time_unix_nano=1_000, end_time_unix_nano=5_000,
                status=Status(code=Status.STATUS_CODE_ERROR, message="UNAVAILABLE"))
    for key, value in changes.items():
        setattr(span, key, value)
    return span


def test_every_field_is_converted() -> None:
    span = good_span()
    span.attributes.extend([
        kv("s", AnyValue(string_value="fast")), kv("b", AnyValue(bool_value=True)), kv("i", AnyValue(int_value=7)),
        kv("d", AnyValue(double_value=0.5)), kv("bytes", AnyValue(bytes_value=b"\x00\x01")),
        kv("list", AnyValue(array_value=ArrayValue(values=[AnyValue(string_value="a"), AnyValue(int_value=1)]))),
        kv("map", AnyValue(kvlist_value=KeyValueList(values=[kv("k", AnyValue(string_value="v"))]))),
        kv("empty", AnyValue()),
    ])
    event = span.events.add(name="alice.fallback", time_unix_nano=2_000)
    event.attributes.append(kv("alice.fallback", AnyValue(string_value="nlu_rules")))
    result = convert(request(span))
    assert result.rejected == 0
    [record] = result.spans
    assert (record.trace_id, record.span_id, record.parent_id) == (TRACE.hex(), SPAN.hex(), PARENT.hex())
    assert (record.service, record.name, record.kind) == ("alice-router", "router.nlu", "SERVER")
    assert (record.start_ns, record.end_ns, record.status_code, record.status_message) == (
        1_000, 5_000, "ERROR", "UNAVAILABLE")
    assert record.attributes == {"s": "fast", "b": True, "i": 7, "d": 0.5, "bytes": "AAE=", "list": ["a", 1],
                                 "map": {"k": "v"}, "empty": None}
    assert record.events == [{"name": "alice.fallback", "time_ns": 2_000,
                              "attributes": {"alice.fallback": "nlu_rules"}}]


def test_root_span_unknown_service_scope_name_and_long_strings() -> None:
    span = good_span(parent_span_id=b"", kind=Span.SPAN_KIND_UNSPECIFIED)
    span.attributes.append(kv("long", AnyValue(string_value="x" * (MAX_STRING + 10))))
    message = request(span, service=None)
    message.resource_spans[0].scope_spans[0].scope.name = "alice"
    [record] = convert(message).spans
    assert record.parent_id == ""
    assert record.service == "unknown_service"
    assert record.kind == "UNSPECIFIED"
    assert record.attributes["otel.scope.name"] == "alice"
    assert len(record.attributes["long"]) == MAX_STRING + 1


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"trace_id": b"\x01" * 8}, "trace_id"),
        ({"trace_id": b"\x00" * 16}, "trace_id"),
        ({"span_id": b""}, "span_id"),
        ({"parent_span_id": b"\x01\x02"}, "parent_span_id"),
        ({"start_time_unix_nano": 0}, "start time"),
        ({"end_time_unix_nano": 10}, "end time"),
    ],
    ids=["short-trace-id", "zero-trace-id", "no-span-id", "bad-parent", "no-start", "end-before-start"],
)
def test_invalid_spans_are_rejected_with_a_reason(changes: dict[str, object], problem: str) -> None:
    result = convert(request(good_span(span_id=bytes.fromhex("0000000000000001")), good_span(**changes)))
    assert len(result.spans) == 1
    assert result.rejected == 1
    assert problem in result.error_message()
    assert result.error_message().startswith("1 span(s) rejected")


def test_error_message_is_bounded() -> None:
    result = convert(request(*(good_span(trace_id=b"") for _ in range(10))))
    assert result.rejected == 10
    assert "(and 7 more)" in result.error_message()
