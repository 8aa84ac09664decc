"""The interceptors' direct W3C trace-context path gives what the SDK's propagators give, header for header."""

from __future__ import annotations

import pytest
from opentelemetry import baggage, trace
from opentelemetry import context as context_api
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from alice.runtime.tracing import _METADATA, Propagation

SDK = CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])  # OTEL_PROPAGATORS' default
TRACE, SPAN = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
OTHER = ("user-agent", "grpc-python/1.85"), ("authorization", "Bearer x")


def _seen(context: context_api.Context) -> tuple[SpanContext, dict[str, object]]:
    return trace.get_current_span(context).get_span_context(), dict(baggage.get_all(context))


@pytest.mark.parametrize("metadata", [
    (),
    OTHER,
    ((("traceparent", f"00-{TRACE}-{SPAN}-01")),),
    (("traceparent", f"00-{TRACE}-{SPAN}-00"), *OTHER),
    (("traceparent", f"01-{TRACE}-{SPAN}-01-future"),),  # a later version may add fields
    (("traceparent", f"00-{TRACE}-{SPAN}-01-extra"),),  # version 00 may not
    (("traceparent", f"ff-{TRACE}-{SPAN}-01"),),
    (("traceparent", f"00-{'0' * 32}-{SPAN}-01"),),
    (("traceparent", f"00-{TRACE}-{'0' * 16}-01"),),
    (("traceparent", f"00-{TRACE.upper()}-{SPAN}-01"),),
    (("traceparent", "garbage"),),
    (("traceparent", f"  00-{TRACE}-{SPAN}-01  "),),
    (("traceparent", f"00-{TRACE}-{SPAN}-01" + " " * 600),),  # over the 512-character limit
    (("traceparent", f"00-{TRACE}-{SPAN}-01"), ("tracestate", "vendor=a,other=b")),
    (("traceparent", f"00-{TRACE}-{SPAN}-01"), ("baggage", "tenant=se,plan=free")),
    (("baggage", "tenant=se"),),
    (("traceparent", f"00-{TRACE}-{SPAN}-01"), ("traceparent", f"00-{TRACE}-{'1' * 16}-00")),
])
def test_extract_matches_the_sdk(metadata: tuple[tuple[str, str], ...]) -> None:
    propagation = Propagation(SDK)
    assert propagation.direct
    assert _seen(propagation.extract(metadata)) == _seen(SDK.extract(metadata, getter=_METADATA))


@pytest.mark.parametrize("span_context", [
    SpanContext(int(TRACE, 16), int(SPAN, 16), False, TraceFlags(TraceFlags.SAMPLED)),
    SpanContext(int(TRACE, 16), int(SPAN, 16), False, TraceFlags(TraceFlags.DEFAULT)),
    SpanContext(1, 2, False, TraceFlags(TraceFlags.SAMPLED)),  # ids with leading zeros
    SpanContext(int(TRACE, 16), int(SPAN, 16), True, TraceFlags(1), TraceState([("vendor", "a"), ("b", "c")])),
    trace.INVALID_SPAN_CONTEXT,
])
@pytest.mark.parametrize("with_baggage", [False, True])
def test_headers_match_the_sdk(span_context: SpanContext, with_baggage: bool) -> None:
    span = NonRecordingSpan(span_context)
    token = context_api.attach(baggage.set_baggage("tenant", "se")) if with_baggage else None
    try:
        expected: dict[str, str] = {}
        SDK.inject(expected, trace.set_span_in_context(span))
        assert dict(Propagation(SDK).headers(span)) == expected
    finally:
        if token is not None:
            context_api.detach(token)


def test_other_propagators_take_the_generic_path() -> None:
    assert Propagation(TraceContextTextMapPropagator()).direct
    only_baggage = Propagation(W3CBaggagePropagator())
    assert not only_baggage.direct
    metadata = (("traceparent", f"00-{TRACE}-{SPAN}-01"), ("baggage", "tenant=se"))
    span_context, entries = _seen(only_baggage.extract(metadata))
    assert not span_context.is_valid and entries == {"tenant": "se"}


def test_the_default_propagators_take_the_direct_path() -> None:
    # OTEL_PROPAGATORS unset: the SDK's default composite (trace context, baggage), what every service runs with.
    assert Propagation().direct
