"""A lighter span implementation behind the OpenTelemetry SDK's TracerProvider.

The SDK's `Span` takes two locks, wraps attributes, events and links in bounded containers, validates every
attribute through several layers and copies itself into a second `ReadableSpan` when it ends: ~30 µs per span
before any export on these cores, ~3x that inside a busy service. `LeanTracerProvider` keeps the SDK's
provider (resource, span processors, shutdown) and hands out tracers whose spans are one object
with a plain attribute dict, handed to the processors as they are when they end. What a span records is the
same: tests/unit/runtime/test_spans.py compares the exported spans with the SDK's for the same calls.

Sampling is parent-based with a trace-id ratio at the root (what `ParentBased(TraceIdRatioBased(r))` decides).
Not supported, on purpose: the SDK's own span metrics (OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED) and
per-scope tracer configurators.
"""

from __future__ import annotations

import functools
import logging
import traceback
from collections.abc import Mapping, Sequence
from time import time_ns
from types import MappingProxyType, TracebackType
from typing import Any, TypeVar

from opentelemetry import context as context_api
from opentelemetry import trace as trace_api
from opentelemetry.attributes import _clean_attribute_value  # the SDK's own rule, kept identical
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.util import types

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_PRIMITIVE = (str, bool, int, float)  # exact types that need no cleaning
_SEQUENCES = (list, tuple)
_UNSET = Status(StatusCode.UNSET)
_TRACE_ID_LIMIT = (1 << 64) - 1


class _Attributes(dict[str, Any]):
    """Attributes with the SDK's rules: values cleaned by its own function (sequences to tuples, strings cut to
    the configured length), a bounded count where the oldest attribute gives way (counted as dropped).

    The bounds are class attributes of a subclass per pair of limits (`bounded`), so a span's attribute dict
    carries nothing of its own until something is dropped.
    """

    limit: int | None = None
    max_length: int | None = None
    dropped = 0

    @staticmethod
    @functools.cache
    def bounded(limit: int | None, max_length: int | None) -> type[_Attributes]:
        """The attribute dict type for these limits: one per distinct pair, a few per process."""
        return type("_Attributes", (_Attributes,), {"limit": limit, "max_length": max_length})

    @classmethod
    def of(cls, attributes: types.Attributes) -> _Attributes:
        cleaned = cls()
        if not attributes:
            return cleaned
        if cls.max_length is None and (cls.limit is None or len(attributes) <= cls.limit) and _plain(attributes):
            cleaned.update(attributes)  # what `put` would make of each, in one step: the common case
        else:
            for key, value in attributes.items():
                cleaned.put(key, value)
        return cleaned

    def put(self, key: str, value: Any) -> None:
        if not key or not isinstance(key, str):
            log.warning("invalid attribute key %r, dropped", key)
            self.dropped += 1
            return
        kind = type(value)
        if kind in _SEQUENCES and self.max_length is None and all(type(item) in _PRIMITIVE for item in value):
            value = tuple(value)  # what the SDK's rule makes of a list of primitives, without its ABC checks
        elif kind not in _PRIMITIVE or (self.max_length is not None and kind is str):
            value = _clean_attribute_value(value, self.max_length)
        if key in self:
            del self[key]  # a new value moves to the end, as in the SDK
        elif self.limit is not None and len(self) >= self.limit:
            self.dropped += 1
            if not self.limit:
                return
            del self[next(iter(self))]
        self[key] = value


def _plain(attributes: Mapping[str, Any]) -> bool:
    """Every key a non-empty string and every value of a type that needs no cleaning."""
    for key, value in attributes.items():
        if type(value) not in _PRIMITIVE or type(key) is not str or not key:
            return False
    return True


def _appended(items: Sequence[_T], item: _T, limit: int | None) -> tuple[list[_T], bool]:
    """`items` with `item` added, the oldest giving way at `limit` (the SDK's bounded lists); whether one was
    dropped. A limit of 0 keeps nothing."""
    kept = list(items)
    if limit is None or len(kept) < limit:
        return [*kept, item], False
    if not kept:
        return kept, True
    return [*kept[1:], item], True


class LeanSpan(trace_api.Span, ReadableSpan):
    """A recording span; once ended it is its own read-only record for the span processors."""

    # Most spans keep these defaults; an instance gets its own value only when it changes.
    _instrumentation_info = None
    _status = _UNSET
    _end_time: int | None = None
    _events: Sequence[Event] = ()
    _links: Sequence[Link] = ()
    _dropped_events = 0
    _dropped_links = 0

    def __init__(self, name: str, context: SpanContext, parent: SpanContext | None, kind: SpanKind,
                 tracer: LeanTracer, attributes: types.Attributes, links: Sequence[Link] | None,
                 start_time: int | None, record_exception: bool, set_status_on_exception: bool) -> None:
        # The fields ReadableSpan's properties read (its __init__ would build a Resource when none is given).
        self._name = name
        self._context = self._span_context = context
        self._parent = parent
        self._kind = kind
        self._resource = tracer.resource
        self._instrumentation_scope = tracer.scope
        self._tracer = tracer
        self._record_exception = record_exception
        self._set_status_on_exception = set_status_on_exception
        self._values = tracer.span_attributes.of(attributes)
        self._attributes = self._values  # what ReadableSpan.to_json reads
        if links:
            for link in links:
                self._add_link(link.context, link.attributes)
        self._start_time = start_time if start_time is not None else time_ns()

    # -- ReadableSpan ------------------------------------------------------------------------------

    @property
    def attributes(self) -> types.Attributes:
        return MappingProxyType(self._values)

    @property
    def dropped_attributes(self) -> int:
        return self._values.dropped

    @property
    def dropped_events(self) -> int:
        return self._dropped_events

    @property
    def dropped_links(self) -> int:
        return self._dropped_links

    # -- Span --------------------------------------------------------------------------------------

    def get_span_context(self) -> SpanContext:
        return self._span_context

    def is_recording(self) -> bool:
        return self._end_time is None

    def _ended(self, what: str) -> bool:
        if self._end_time is None:
            return False
        log.warning("%s on ended span %r", what, self._name)
        return True

    def set_attribute(self, key: str, value: types.AttributeValue) -> None:
        if not self._ended("setting an attribute"):
            self._values.put(key, value)

    def set_attributes(self, attributes: Mapping[str, types.AttributeValue]) -> None:
        if not self._ended("setting attributes"):
            put = self._values.put
            for key, value in attributes.items():
                put(key, value)

    def add_event(self, name: str, attributes: types.Attributes = None, timestamp: int | None = None) -> None:
        if self._ended("adding an event"):
            return
        tracer = self._tracer
        event = Event(name, tracer.event_attributes.of(attributes), timestamp)
        self._events, dropped = _appended(self._events, event, tracer.limits.max_events)
        self._dropped_events += dropped

    def _add_link(self, context: SpanContext, attributes: types.Attributes) -> None:
        if not (context and (context.is_valid or attributes or context.trace_state)):  # the SDK's rule
            return
        tracer = self._tracer
        link = Link(context, tracer.link_attributes.of(attributes))
        self._links, dropped = _appended(self._links, link, tracer.limits.max_links)
        self._dropped_links += dropped

    def add_link(self, context: SpanContext, attributes: types.Attributes = None) -> None:
        if not self._ended("adding a link"):
            self._add_link(context, attributes)

    def update_name(self, name: str) -> None:
        if not self._ended("renaming"):
            self._name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        if self._ended("setting the status"):
            return
        if not isinstance(status, Status):
            status = Status(status, description)
        # OK is final, and UNSET never overrides (the SDK's rules).
        if self._status.status_code is StatusCode.OK or status.status_code is StatusCode.UNSET:
            return
        self._status = status

    def record_exception(self, exception: BaseException, attributes: types.Attributes = None,
                         timestamp: int | None = None, escaped: bool = False) -> None:
        module, name = type(exception).__module__, type(exception).__qualname__
        recorded: dict[str, Any] = {
            "exception.type": f"{module}.{name}" if module and module != "builtins" else name,
            "exception.message": str(exception),
            "exception.stacktrace": "".join(traceback.format_exception(type(exception), exception,
                                                                       exception.__traceback__)),
            "exception.escaped": str(escaped),
        }
        if attributes:
            recorded.update(attributes)
        self.add_event("exception", recorded, timestamp if timestamp is not None else time_ns())

    def end(self, end_time: int | None = None) -> None:
        if self._ended("ending"):
            return
        self._end_time = end_time if end_time is not None else time_ns()
        self._tracer.processor.on_end(self)

    def __exit__(self, exc_type: type[BaseException] | None, exc_val: BaseException | None,
                 exc_tb: TracebackType | None) -> None:
        if exc_val is not None and self.is_recording():
            if self._record_exception:
                self.record_exception(exc_val, escaped=True)
            if self._set_status_on_exception and exc_type is not None:
                self.set_status(Status(StatusCode.ERROR, f"{exc_type.__name__}: {exc_val}"))
        super().__exit__(exc_type, exc_val, exc_tb)

    def __repr__(self) -> str:
        return f"LeanSpan(name={self._name!r}, context={self._context})"


class _Current:
    """`start_as_current_span`'s context manager: the span is current inside, ended on exit (as `use_span`)."""

    __slots__ = ("_end", "_record", "_set_status", "_span", "_token")

    def __init__(self, span: trace_api.Span, end: bool, record: bool, set_status: bool) -> None:
        self._span, self._end, self._record, self._set_status = span, end, record, set_status

    def __enter__(self) -> trace_api.Span:
        self._token = context_api.attach(trace_api.set_span_in_context(self._span))
        return self._span

    def __exit__(self, exc_type: type[BaseException] | None, exc_val: BaseException | None,
                 exc_tb: TracebackType | None) -> None:
        try:
            context_api.detach(self._token)
            # Like use_span: exceptions mark the span, BaseExceptions (cancellation, exit) do not.
            if isinstance(exc_val, Exception) and self._span.is_recording():
                if self._record:
                    self._span.record_exception(exc_val)
                if self._set_status:
                    self._span.set_status(Status(StatusCode.ERROR, f"{type(exc_val).__name__}: {exc_val}"))
        finally:
            if self._end:
                self._span.end()


class LeanTracer(trace_api.Tracer):
    """Creates LeanSpans; sampling is parent-based, with the ratio deciding at the root."""

    def __init__(self, provider: LeanTracerProvider, scope: InstrumentationScope) -> None:
        self.resource: Resource = provider.resource
        self.scope = scope
        self.processor: SpanProcessor = provider._active_span_processor
        self.limits: SpanLimits = provider.span_limits
        limits = self.limits
        self.span_attributes = _Attributes.bounded(limits.max_span_attributes, limits.max_span_attribute_length)
        self.event_attributes = _Attributes.bounded(limits.max_event_attributes, limits.max_attribute_length)
        self.link_attributes = _Attributes.bounded(limits.max_link_attributes, limits.max_attribute_length)
        self._ids: IdGenerator = provider.id_generator
        self._bound = provider.sample_bound

    def start_span(self, name: str, context: context_api.Context | None = None,
                   kind: SpanKind = SpanKind.INTERNAL, attributes: types.Attributes = None,
                   links: Sequence[Link] | None = (), start_time: int | None = None,
                   record_exception: bool = True, set_status_on_exception: bool = True) -> trace_api.Span:
        parent_span = trace_api.get_current_span(context)
        parent: SpanContext | None = parent_span.get_span_context()
        if parent is not None and parent.is_valid:
            if not parent.trace_flags.sampled:
                # Nothing of this trace is recorded: the parent's context is all a child would carry (downstream
                # calls send it, and follow its decision), so no new ids and no new object on the 90 % of requests
                # a 10 % sampling leaves out. (The SDK would give the child a span id nobody ever sees.)
                return parent_span if isinstance(parent_span, trace_api.NonRecordingSpan) \
                    else trace_api.NonRecordingSpan(parent)
            trace_id, sampled, state = parent.trace_id, True, parent.trace_state
            random_id = parent.trace_flags.random_trace_id
        else:
            parent, trace_id, state = None, self._ids.generate_trace_id(), None
            sampled = trace_id & _TRACE_ID_LIMIT < self._bound
            random_id = self._ids.is_trace_id_random()
        flags = TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT
        if random_id:
            flags |= TraceFlags.RANDOM_TRACE_ID
        span_context = SpanContext(trace_id, self._ids.generate_span_id(), False, TraceFlags(flags), state)
        if not sampled:
            return trace_api.NonRecordingSpan(span_context)
        span = LeanSpan(name, span_context, parent, kind, self, attributes, links, start_time,
                        record_exception, set_status_on_exception)
        self.processor.on_start(span, parent_context=context)  # type: ignore[arg-type]  # read as a ReadableSpan
        return span

    def start_as_current_span(  # type: ignore[override]
        self, name: str, context: context_api.Context | None = None, kind: SpanKind = SpanKind.INTERNAL,
        attributes: types.Attributes = None, links: Sequence[Link] | None = (), start_time: int | None = None,
        record_exception: bool = True, set_status_on_exception: bool = True, end_on_exit: bool = True,
    ) -> _Current:
        span = self.start_span(name, context, kind, attributes, links, start_time, record_exception,
                               set_status_on_exception)
        return _Current(span, end_on_exit, record_exception, set_status_on_exception)


class LeanTracerProvider(TracerProvider):
    """The SDK's TracerProvider (processors, resource, shutdown) handing out LeanTracers.

    `sample_ratio` is the share of new traces recorded; spans with a parent follow the parent's decision.
    """

    def __init__(self, *, resource: Resource, sample_ratio: float, span_limits: SpanLimits | None = None
                 ) -> None:
        super().__init__(resource=resource, span_limits=span_limits)
        self.span_limits = span_limits or SpanLimits()
        # TraceIdRatioBased's rule: the low 64 bits of the trace id below ratio * 2^64.
        self.sample_bound = round(max(0.0, min(1.0, sample_ratio)) * (_TRACE_ID_LIMIT + 1))
        self._lean_tracers: dict[tuple[str, str | None, str | None], LeanTracer] = {}

    def get_tracer(self, instrumenting_module_name: str, instrumenting_library_version: str | None = None,
                   schema_url: str | None = None, attributes: types.Attributes = None) -> trace_api.Tracer:
        if self._disabled:
            return trace_api.NoOpTracer()
        key = (instrumenting_module_name, instrumenting_library_version, schema_url)
        tracer = self._lean_tracers.get(key) if not attributes else None
        if tracer is None:
            tracer = LeanTracer(self, InstrumentationScope(instrumenting_module_name or "",
                                                           instrumenting_library_version or "", schema_url,
                                                           attributes))
            if not attributes:
                self._lean_tracers[key] = tracer
        return tracer

