"""OTLP span encoding straight to protobuf wire bytes, and the OTLP/gRPC exporter that uses it.

The SDK's exporter builds a protobuf object per span, attribute and value (~60-80 µs per span on these
cores). It runs on the BatchSpanProcessor's thread, but holds the GIL while it does, so every service's
event loop waits behind it. This encoder writes the same `ExportTraceServiceRequest` bytes directly and
reuses the bytes of attributes it has seen (rpc.method, alice.route, ...): a few µs per span.
tests/unit/runtime/test_otlp.py checks that it decodes to exactly what the SDK's encoder produces.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, StatusCode

_DOUBLE = struct.Struct("<d")
_FIXED64 = struct.Struct("<Q")
_FIXED32 = struct.Struct("<I")
_HAS_IS_REMOTE, _IS_REMOTE = 0x100, 0x200  # SpanFlags
_LOCAL_PARENT = b"\x85\x01" + _FIXED32.pack(_HAS_IS_REMOTE)  # field 16 (flags), fixed32
_REMOTE_PARENT = b"\x85\x01" + _FIXED32.pack(_HAS_IS_REMOTE | _IS_REMOTE)
_KINDS = {kind: b"\x30" + bytes((kind.value + 1,)) for kind in SpanKind}  # SDK INTERNAL=0, OTLP INTERNAL=1
_CACHE_LIMIT = 4096


def _varint(value: int) -> bytes:
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field (string, bytes, sub-message)."""
    return tag + _varint(len(payload)) + payload


def _any_value(value: Any) -> bytes:
    """An AnyValue message, as the SDK encodes attribute values (None is an empty AnyValue)."""
    if value is None:
        return b""
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, str):
        return _field(b"\x0a", value.encode())
    if isinstance(value, int):
        return b"\x18" + _varint(value if value >= 0 else value + (1 << 64))
    if isinstance(value, float):
        return b"\x21" + _DOUBLE.pack(value)
    if isinstance(value, bytes):
        return _field(b"\x3a", value)
    if isinstance(value, Sequence):
        return _field(b"\x2a", b"".join(_field(b"\x0a", _any_value(item)) for item in value))
    if isinstance(value, Mapping):
        return _field(b"\x32", b"".join(_field(b"\x0a", _key_value(str(k), v)) for k, v in value.items()))
    raise TypeError(f"invalid attribute value type {type(value).__name__}")


def _key_value(key: str, value: Any) -> bytes:
    return _field(b"\x0a", key.encode()) + _field(b"\x12", _any_value(value))


class SpanEncoder:
    """Encodes SDK spans as an `ExportTraceServiceRequest`; keeps the bytes of repeated attributes.

    One encoder per exporter: the BatchSpanProcessor calls export from one thread at a time. With
    `pause_every`, the encoding thread releases the GIL after every that many spans.
    """

    def __init__(self, pause_every: int = 0) -> None:
        self._pause_every = pause_every
        self._attributes: dict[tuple[bytes, str, type, Any], bytes] = {}
        self._names: dict[str, bytes] = {}
        # id -> (the object, so its id is not reused while cached; its encoded field; its schema_url field)
        self._resources: dict[int, tuple[Resource, bytes, bytes]] = {}
        self._scopes: dict[int, tuple[InstrumentationScope | None, bytes, bytes]] = {}

    def encode(self, spans: Sequence[ReadableSpan]) -> bytes:
        """The serialized request: spans grouped by resource, then by instrumentation scope, in order."""
        if len(self._resources) > 64 or len(self._scopes) > 64:
            self._resources.clear()
            self._scopes.clear()
        groups: dict[int, dict[int, list[bytes]]] = {}
        pause_every = self._pause_every
        for index, span in enumerate(spans, 1):
            if pause_every and index % pause_every == 0:
                # Let the service's event loop take the GIL: without a blocking call here it waits for the
                # interpreter's switch interval (5 ms) while a batch of 512 spans is encoded.
                time.sleep(0)
            resource, scope = span.resource, span.instrumentation_scope
            if id(resource) not in self._resources:
                self._remember_resource(resource)
            if id(scope) not in self._scopes:
                self._remember_scope(scope)
            groups.setdefault(id(resource), {}).setdefault(id(scope), []).append(self._span(span))
        out = []
        for resource_id, scopes in groups.items():
            _, resource_field, resource_schema = self._resources[resource_id]
            body = [resource_field]
            for scope_id, encoded in scopes.items():
                _, scope_field, scope_schema = self._scopes[scope_id]
                scope_spans = scope_field + b"".join(_field(b"\x12", span) for span in encoded) + scope_schema
                body.append(_field(b"\x12", scope_spans))
            body.append(resource_schema)
            out.append(_field(b"\x0a", b"".join(body)))
        return b"".join(out)

    def _remember_resource(self, resource: Resource) -> None:
        schema = _field(b"\x1a", resource.schema_url.encode()) if resource.schema_url else b""
        self._resources[id(resource)] = (
            resource, _field(b"\x0a", self._attribute_list(b"\x0a", resource.attributes)), schema)

    def _remember_scope(self, scope: InstrumentationScope | None) -> None:
        body, schema = b"", b""
        if scope is not None:
            if scope.name:
                body += _field(b"\x0a", scope.name.encode())
            if scope.version:
                body += _field(b"\x12", scope.version.encode())
            body += self._attribute_list(b"\x1a", scope.attributes)
            if scope.schema_url:
                schema = _field(b"\x1a", scope.schema_url.encode())
        self._scopes[id(scope)] = (scope, _field(b"\x0a", body), schema)

    def _attribute_list(self, tag: bytes, attributes: Mapping[str, Any] | None) -> bytes:
        """The repeated KeyValue field `tag`; a (key, value) seen before costs one dict look-up."""
        if not attributes:
            return b""
        cache = self._attributes
        parts = []
        for key, value in attributes.items():
            if isinstance(value, float | tuple):  # measurements and lists rarely repeat
                parts.append(_field(tag, _key_value(key, value)))
                continue
            cache_key = (tag, key, type(value), value)
            encoded = cache.get(cache_key)
            if encoded is None:
                if len(cache) >= _CACHE_LIMIT:
                    cache.clear()
                encoded = cache[cache_key] = _field(tag, _key_value(key, value))
            parts.append(encoded)
        return b"".join(parts)

    def _span(self, span: ReadableSpan) -> bytes:
        context = span.context
        assert context is not None
        parts = [b"\x0a\x10", context.trace_id.to_bytes(16, "big"), b"\x12\x08", context.span_id.to_bytes(8, "big")]
        if context.trace_state:
            parts.append(_field(b"\x1a", ",".join(f"{k}={v}" for k, v in context.trace_state.items()).encode()))
        parent = span.parent
        if parent is not None:
            parts += (b"\x22\x08", parent.span_id.to_bytes(8, "big"))
        name = self._names.get(span.name)
        if name is None:
            if len(self._names) >= _CACHE_LIMIT:
                self._names.clear()
            name = self._names[span.name] = _field(b"\x2a", span.name.encode()) if span.name else b""
        parts += (name, _KINDS[span.kind])
        if span.start_time:
            parts += (b"\x39", _FIXED64.pack(span.start_time))
        if span.end_time:
            parts += (b"\x41", _FIXED64.pack(span.end_time))
        parts.append(self._attribute_list(b"\x4a", span.attributes))
        if span.dropped_attributes:
            parts += (b"\x50", _varint(span.dropped_attributes))
        for event in span.events:
            body = b"\x09" + _FIXED64.pack(event.timestamp) if event.timestamp else b""
            if event.name:
                body += _field(b"\x12", event.name.encode())
            body += self._attribute_list(b"\x1a", event.attributes)
            if event.dropped_attributes:
                body += b"\x20" + _varint(event.dropped_attributes)
            parts.append(_field(b"\x5a", body))
        if span.dropped_events:
            parts += (b"\x60", _varint(span.dropped_events))
        for link in span.links:
            body = (b"\x0a\x10" + link.context.trace_id.to_bytes(16, "big")
                    + b"\x12\x08" + link.context.span_id.to_bytes(8, "big")
                    + self._attribute_list(b"\x22", link.attributes))
            if link.dropped_attributes:
                body += b"\x28" + _varint(link.dropped_attributes)
            body += b"\x35" + _FIXED32.pack(_flags(link.context))
            parts.append(_field(b"\x6a", body))
        if span.dropped_links:
            parts += (b"\x70", _varint(span.dropped_links))
        status = span.status
        if status.description or status.status_code is not StatusCode.UNSET:
            body = _field(b"\x12", status.description.encode()) if status.description else b""
            if status.status_code.value:
                body += b"\x18" + _varint(status.status_code.value)
            parts.append(_field(b"\x7a", body))
        else:
            parts.append(b"\x7a\x00")
        parts.append(_REMOTE_PARENT if parent is not None and parent.is_remote else _LOCAL_PARENT)
        return b"".join(parts)


def _flags(parent: SpanContext | None) -> int:
    return _HAS_IS_REMOTE | _IS_REMOTE if parent is not None and parent.is_remote else _HAS_IS_REMOTE


class FastOtlpSpanExporter(OTLPSpanExporter):
    """The SDK's OTLP/gRPC span exporter (channel, retries, timeouts unchanged) with the fast encoder."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Every 8 spans (~0.1-0.2 ms of encoding in a busy service) the event loop may take the GIL: with 32,
        # the cache-hit P95 with tracing was 7-16 % over tracing off in four runs of
        # benchmarks/telemetry_overhead.py, with 8 it was 6-11 % (docs/benchmarks.md).
        self._encoder = SpanEncoder(pause_every=8)

    def _translate_data(self, data: Sequence[ReadableSpan]) -> ExportTraceServiceRequest:
        # Parsing the bytes back is C code (upb) and keeps the SDK's exporter untouched.
        return ExportTraceServiceRequest.FromString(self._encoder.encode(data))
