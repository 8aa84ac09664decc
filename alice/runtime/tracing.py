"""gRPC tracing interceptors: a SERVER span per handled call, a CLIENT span per outgoing call, W3C propagation.

They record what the OpenTelemetry gRPC instrumentation records (span name = full method, `rpc.system`,
`rpc.service`, `rpc.method`, `rpc.grpc.status_code`, ERROR status per the RPC semantic conventions; the trace
context travels in the call metadata through the configured propagator, W3C `traceparent` by default) with
less work per call: no servicer-context proxy, no per-call filter chain or metadata dict copies, attributes
per method built once, and the client span ended from the call's own result instead of a done callback.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextvars import ContextVar
from typing import Any

import grpc
from opentelemetry import baggage, propagate, trace
from opentelemetry import context as context_api
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import Getter, TextMapPropagator
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

NOT_TRACED = ("/grpc.health.v1.Health/",)
"""Health probes would bury the requests in one-span traces."""
SCOPE = "alice.runtime.tracing"
CALL_START, CALL_END = "alice.call.start_ns", "alice.call.end_ns"
"""On a span that carries a call made inside it (as_call_span): when the call itself started and ended."""

# A server that answers with one of these failed; any other code is the caller's doing (semantic conventions).
_SERVER_ERRORS = frozenset({grpc.StatusCode.UNKNOWN, grpc.StatusCode.DEADLINE_EXCEEDED,
                            grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.INTERNAL,
                            grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DATA_LOSS})
_STATUS_CODE = "rpc.grpc.status_code"
_Attributes = dict[str, str | int]


_Metadata = Iterable[tuple[str, str | bytes]]


class _MetadataGetter(Getter[_Metadata]):
    """Reads the propagation headers straight from the call's metadata (no dict of all of it per call)."""

    def get(self, carrier: _Metadata, key: str) -> list[str] | None:
        values = [value for name, value in carrier if name == key and isinstance(value, str)]
        return values or None

    def keys(self, carrier: _Metadata) -> list[str]:
        return [name for name, _ in carrier]


_METADATA = _MetadataGetter()
_TRACEPARENT, _TRACESTATE, _BAGGAGE = "traceparent", "tracestate", "baggage"
_TRACEPARENT_RE = TraceContextTextMapPropagator._TRACEPARENT_HEADER_FORMAT_RE  # the SDK's own pattern
_ZERO_TRACE_ID, _ZERO_SPAN_ID = "0" * 32, "0" * 16


class Propagation:
    """Reads and writes the trace context in call metadata, through the configured propagator.

    With the default propagators (W3C trace context, with or without W3C baggage) the one header nearly every
    call carries, `traceparent`, is written and parsed here directly, with the SDK's rules: through the generic
    path (composite propagator, getter, a context per propagator) that took ~4 µs per injected and ~11 µs per
    extracted call in a tight loop, several times that inside a busy service, on every hop of every request.
    A `tracestate` or `baggage` header, baggage in the context, or any other propagator (OTEL_PROPAGATORS) takes
    the generic path. tests/unit/runtime/test_propagation.py checks both paths give the same headers and contexts.
    """

    def __init__(self, propagator: TextMapPropagator | None = None) -> None:
        self._propagator = propagator if propagator is not None else propagate.get_global_textmap()
        # The composite's parts are private in the SDK: if that changes, everything takes the generic path.
        parts = (getattr(self._propagator, "_propagators", ()) if isinstance(self._propagator, CompositePropagator)
                 else (self._propagator,))
        kinds = {type(part) for part in parts}
        self.direct = TraceContextTextMapPropagator in kinds and kinds <= {TraceContextTextMapPropagator,
                                                                          W3CBaggagePropagator}
        self._baggage = W3CBaggagePropagator in kinds

    def headers(self, span: trace.Span) -> list[tuple[str, str]]:
        """The metadata that carries `span`'s context (and the current baggage) to the callee."""
        if not self.direct or (self._baggage and baggage.get_all()):
            carrier: dict[str, str] = {}
            self._propagator.inject(carrier, trace.set_span_in_context(span))
            return list(carrier.items())
        context = span.get_span_context()
        if context == trace.INVALID_SPAN_CONTEXT:
            return []
        headers = [(_TRACEPARENT, f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}")]
        if context.trace_state:
            headers.append((_TRACESTATE, context.trace_state.to_header()))
        return headers

    def extract(self, metadata: _Metadata) -> context_api.Context:
        """The caller's context from a call's metadata (an empty context when it sent none)."""
        if not self.direct:
            return self._propagator.extract(metadata, getter=_METADATA)
        traceparent = None
        for key, value in metadata:
            if key == _TRACEPARENT and traceparent is None and isinstance(value, str):
                traceparent = value
            elif key in (_TRACEPARENT, _TRACESTATE, _BAGGAGE):
                return self._propagator.extract(metadata, getter=_METADATA)
        if traceparent is None:
            return context_api.Context()
        if len(traceparent) > TraceContextTextMapPropagator._TRACEPARENT_MAXIMUM_LENGTH:
            return self._propagator.extract(metadata, getter=_METADATA)  # which logs why it is ignored
        match = _TRACEPARENT_RE.search(traceparent)
        if match is None:
            return context_api.Context()
        version, trace_id, span_id, flags, rest = match.groups()
        if trace_id == _ZERO_TRACE_ID or span_id == _ZERO_SPAN_ID or version == "ff" or (version == "00" and rest):
            return context_api.Context()
        parent = SpanContext(int(trace_id, 16), int(span_id, 16), True, TraceFlags(int(flags, 16)))
        return trace.set_span_in_context(NonRecordingSpan(parent), context_api.Context())


def _method_attributes(method: str) -> _Attributes:
    service, _, name = method.lstrip("/").partition("/")
    return {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}


def _peer_attributes(peer: str) -> _Attributes:
    """`ipv4:127.0.0.1:57284` or `ipv6:[::1]:57284` as network.peer.address and .port; {} for anything else."""
    kind, _, address = peer.partition(":")
    if kind not in ("ipv4", "ipv6"):
        return {}
    host, _, port = address.split(",")[0].rpartition(":")
    if not host or not port.isdigit():
        return {}
    return {"network.peer.address": host.strip("[]"), "network.peer.port": int(port)}


def _set_code(span: trace.Span, code: grpc.StatusCode, details: str | None, error: bool) -> None:
    span.set_attribute(_STATUS_CODE, code.value[0])
    if error:
        span.set_status(Status(StatusCode.ERROR, f"{code}: {details or ''}"))


class ServerTracing(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Outermost server interceptor: the span covers authentication, rate limiting and the handler."""

    def __init__(self, provider: trace.TracerProvider, skip: tuple[str, ...] = NOT_TRACED) -> None:
        self._tracer = provider.get_tracer(SCOPE)
        self._propagation = Propagation()
        self._skip = skip
        self._attributes: dict[str, _Attributes] = {}
        self._with_peer: dict[tuple[str, str], _Attributes] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Any],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method or ""
        if handler is None or method.startswith(self._skip):
            return handler
        attributes = self._attributes.get(method)
        if attributes is None:
            attributes = self._attributes[method] = _method_attributes(method)
        options = {"request_deserializer": handler.request_deserializer,
                   "response_serializer": handler.response_serializer}
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(self._unary(handler.unary_unary, method, attributes),
                                                       **options)
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(self._stream(handler.unary_stream, method, attributes),
                                                        **options)
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(self._unary(handler.stream_unary, method, attributes),
                                                        **options)
        if handler.stream_stream is not None:
            return grpc.stream_stream_rpc_method_handler(self._stream(handler.stream_stream, method, attributes),
                                                         **options)
        return handler

    def _start(self, method: str, attributes: _Attributes,
               context: grpc.aio.ServicerContext[Any, Any]) -> tuple[trace.Span, object]:
        parent = self._propagation.extract(context.invocation_metadata() or ())
        peer = context.peer() or ""
        # Callers are a few long-lived connections: the attributes per method and peer are built once.
        merged = self._with_peer.get((method, peer))
        if merged is None:
            if len(self._with_peer) >= 1024:
                self._with_peer.clear()
            merged = self._with_peer[(method, peer)] = {**attributes, **_peer_attributes(peer)}
        span = self._tracer.start_span(method, parent, SpanKind.SERVER, merged)
        return span, context_api.attach(trace.set_span_in_context(span, parent))

    @staticmethod
    def _finish(span: trace.Span, token: object, context: grpc.aio.ServicerContext[Any, Any],
                error: BaseException | None) -> None:
        try:
            code = context.code()
            if isinstance(code, grpc.StatusCode):  # set by abort() or set_code()
                _set_code(span, code, context.details(), code in _SERVER_ERRORS)
            elif error is None:
                span.set_attribute(_STATUS_CODE, grpc.StatusCode.OK.value[0])
            elif isinstance(error, Exception):  # an uncaught exception reaches the caller as UNKNOWN
                span.record_exception(error)
                _set_code(span, grpc.StatusCode.UNKNOWN, f"{type(error).__name__}: {error}", True)
            else:  # the caller cancelled or went away
                span.set_attribute(_STATUS_CODE, grpc.StatusCode.CANCELLED.value[0])
        finally:
            context_api.detach(token)  # type: ignore[arg-type]
            span.end()

    def _unary(self, behaviour: Callable[..., Any], method: str, attributes: _Attributes) -> Callable[..., Any]:
        async def traced(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            span, token = self._start(method, attributes, context)
            try:
                response = await behaviour(request, context)
            except BaseException as error:
                self._finish(span, token, context, error)
                raise
            self._finish(span, token, context, None)
            return response

        return traced

    def _stream(self, behaviour: Callable[..., Any], method: str, attributes: _Attributes) -> Callable[..., Any]:
        async def traced(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            span, token = self._start(method, attributes, context)
            try:
                async for item in behaviour(request, context):
                    yield item
            except BaseException as error:
                self._finish(span, token, context, error)
                raise
            self._finish(span, token, context, None)

        return traced


_NEXT_CALL: ContextVar[list[trace.Span] | None] = ContextVar("alice_next_call_span", default=None)


class as_call_span:
    """Record the next outgoing gRPC call made in this context on `span` instead of a CLIENT span of its own.

    For a step that is exactly one call (the router's `router.nlu` stage is the NLU Parse call): `span` is a
    CLIENT span its caller started and ends; the call adds the `rpc.*` attributes and status to it and sends
    its context downstream, so the downstream's SERVER span is its child. One span per hop instead of two.
    The call's own interval is kept as `alice.call.start_ns` / `alice.call.end_ns` (epoch ns), so the time
    the caller spent in the step around the call stays visible (benchmarks/router_overhead.py uses it). A
    second call in the same context gets its own span as usual. (A class, not a generator: it runs on
    every router stage that is a call.)
    """

    __slots__ = ("_span", "_token")

    def __init__(self, span: trace.Span) -> None:
        self._span = span

    def __enter__(self) -> trace.Span:
        self._token = _NEXT_CALL.set([self._span])
        return self._span

    def __exit__(self, *exc_info: object) -> None:
        _NEXT_CALL.reset(self._token)


class _ClientSpans:
    """A CLIENT span around each outgoing call, with the trace context added to the call's metadata."""

    def __init__(self, provider: trace.TracerProvider) -> None:
        self._tracer = provider.get_tracer(SCOPE)
        self._propagation = Propagation()
        self._attributes: dict[str, _Attributes] = {}

    def start(self, details: grpc.aio.ClientCallDetails) -> tuple[trace.Span, bool, grpc.aio.ClientCallDetails]:
        """The call's span, whether this call owns it (ends it), and the details with the trace context."""
        method = details.method.decode() if isinstance(details.method, bytes) else details.method
        attributes = self._attributes.get(method)
        if attributes is None:
            attributes = self._attributes[method] = _method_attributes(method)
        adopted = _NEXT_CALL.get()
        if adopted:  # the caller's span for this one call (as_call_span); the list is shared, so pop once
            span, owned = adopted.pop(), False
            span.set_attributes(attributes)
            span.set_attribute(CALL_START, time.time_ns())
        else:
            span, owned = self._tracer.start_span(method, kind=SpanKind.CLIENT, attributes=attributes), True
        headers = self._propagation.headers(span)
        if not headers:
            return span, owned, details
        metadata = grpc.aio.Metadata(*(details.metadata or ()), *headers)
        return span, owned, grpc.aio.ClientCallDetails(details.method, details.timeout, metadata,
                                                       details.credentials, details.wait_for_ready)

    @staticmethod
    def fail(span: trace.Span, owned: bool, error: BaseException) -> None:
        if isinstance(error, grpc.aio.AioRpcError):
            _set_code(span, error.code(), error.details(), True)
        elif isinstance(error, Exception):
            span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
        else:  # the caller gave up on the call (the router drops the NLU call when the alias lookup hits)
            span.set_attribute(_STATUS_CODE, grpc.StatusCode.CANCELLED.value[0])
        _finish(span, owned)


def _finish(span: trace.Span, owned: bool) -> None:
    """End the call's own span, or mark where the call ended inside its caller's span."""
    if owned:
        span.end()
    else:
        span.set_attribute(CALL_END, time.time_ns())


class _UnaryClientTracing(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[type-arg]
    def __init__(self, spans: _ClientSpans) -> None:
        self._spans = spans

    async def intercept_unary_unary(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        span, owned, details = self._spans.start(details)
        call = None
        try:
            call = await continuation(details, request)
            code = await call.code()
        except BaseException as error:
            if call is not None and isinstance(error, asyncio.CancelledError):
                # The caller's task was cancelled while this waited for the result: stop the call itself too,
                # so the server stops working on it (gRPC only does that when nothing waits in between).
                call.cancel()
            self._spans.fail(span, owned, error)
            raise
        if code == grpc.StatusCode.OK:
            span.set_attribute(_STATUS_CODE, 0)
        else:
            _set_code(span, code, await call.details(), True)
        _finish(span, owned)
        return call


class _StreamClientTracing(grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[type-arg]
    def __init__(self, spans: _ClientSpans) -> None:
        self._spans = spans

    async def intercept_unary_stream(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        span, owned, details = self._spans.start(details)
        try:
            call = await continuation(details, request)
        except BaseException as error:
            self._spans.fail(span, owned, error)
            raise
        return self._relay(span, owned, call)

    async def _relay(self, span: trace.Span, owned: bool, call: Any) -> AsyncIterator[Any]:
        try:
            async for item in call:
                yield item
        except BaseException as error:
            self._spans.fail(span, owned, error)
            raise
        span.set_attribute(_STATUS_CODE, 0)
        _finish(span, owned)


def client_interceptors(provider: trace.TracerProvider) -> list[Any]:
    """The client tracing interceptors for a channel (grpc.aio takes one interceptor object per call type)."""
    spans = _ClientSpans(provider)
    return [_UnaryClientTracing(spans), _StreamClientTracing(spans)]
