"""OTLP span export: spans queued as they end, encoded straight to protobuf wire bytes, sent over OTLP/gRPC.

The SDK's exporter builds a protobuf object per span, attribute and value (~60-80 µs per span on these
cores). The export runs on a worker thread but holds the GIL while it encodes, so the service's event loop
waits behind it. `SpanEncoder` writes the same `ExportTraceServiceRequest` bytes directly and reuses the bytes
of attributes it has seen (rpc.method, alice.route, ...): ~10 µs per span; `FastOtlpSpanExporter` hands those
bytes to the channel as they are. `BatchSpanExport` replaces the SDK's BatchSpanProcessor, whose per-span work
(a process-id system call, its self-metrics) ran on the request path. tests/unit/runtime/test_otlp.py checks
that the bytes decode to exactly what the SDK's encoder produces, and the processor's batching and dropping.
"""

from __future__ import annotations

import logging
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter
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
_EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

log = logging.getLogger(__name__)


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

    One encoder per exporter: the exporting thread calls it, one batch at a time. With `pause_after_s`, the
    encoding releases the GIL once it has held it that long (checked every 16 spans).
    """

    def __init__(self, pause_after_s: float = 0.0) -> None:
        self._pause_after_s = pause_after_s
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
        pause_after = self._pause_after_s
        held_since = time.perf_counter()
        for index, span in enumerate(spans, 1):
            if pause_after and index % 16 == 0 and time.perf_counter() - held_since >= pause_after:
                # Let the service's event loop take the GIL: without a blocking call here it waits for the
                # interpreter's switch interval (5 ms). A sleep costs ~40 µs of CPU in this VM, so not per span.
                time.sleep(0)
                held_since = time.perf_counter()
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


class _SerializedExport:
    """The TraceService stub's Export, taking the request already serialized (gRPC sends bytes as they are)."""

    def __init__(self, channel: Any) -> None:
        self.Export = channel.unary_unary(_EXPORT_METHOD, request_serializer=None,
                                          response_deserializer=ExportTraceServiceResponse.FromString)


class FastOtlpSpanExporter(OTLPSpanExporter):
    """The SDK's OTLP/gRPC span exporter (channel, retries, timeouts unchanged) sending `SpanEncoder`'s bytes."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Hold the GIL at most ~1 ms at a time: pausing every 8 spans cost more CPU in sleeps than the encoding
        # itself, and made the cache-hit path no faster (benchmarks/telemetry_overhead.py, docs/benchmarks.md).
        self._encoder = SpanEncoder(pause_after_s=0.001)

    def _initialize_channel_and_stub(self) -> None:  # also what the SDK calls to reconnect
        super()._initialize_channel_and_stub()  # type: ignore[no-untyped-call]
        self._client = _SerializedExport(self._channel)  # type: ignore[assignment]

    def _translate_data(self, data: Sequence[ReadableSpan]) -> bytes:  # type: ignore[override]
        return self._encoder.encode(data)


class BatchSpanExport(SpanProcessor):
    """Ended spans wait in a bounded queue; a worker thread exports them in batches.

    What the SDK's BatchSpanProcessor does (OTEL_BSP_* semantics: a batch goes out when `batch_size` spans are
    queued, and whatever is queued every `delay_s`; a full queue drops the span), with less work where it
    counts: ending a span is a length check and a deque append on the request path, where the SDK's also asks
    the kernel for the process id (for fork safety: services never fork) and updates its self-metrics. A span
    that is not kept is reported to `on_drop` with the reason: `queue_full`, or `shutdown` once shut down.
    """

    def __init__(self, exporter: SpanExporter, *, delay_s: float, queue_size: int, batch_size: int,
                 on_drop: Callable[[str], None]) -> None:
        self._exporter = exporter
        self._delay_s = delay_s
        self._queue_size = queue_size
        self._batch_size = min(batch_size, queue_size)
        self._on_drop = on_drop
        self._queue: deque[ReadableSpan] = deque()  # appended by the service, popped by the exporting thread
        self._wake = threading.Event()
        self._exporting = threading.Lock()  # one export at a time: the worker's, or a flush
        self._stopped = False
        self._worker = threading.Thread(target=self._work, name="alice-span-export", daemon=True)
        self._worker.start()

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        queue = self._queue
        if len(queue) >= self._queue_size or self._stopped:
            self._on_drop("shutdown" if self._stopped else "queue_full")
            return
        queue.append(span)
        if len(queue) >= self._batch_size and not self._wake.is_set():
            self._wake.set()

    def _work(self) -> None:
        while not self._stopped:
            full = self._wake.wait(self._delay_s)
            self._wake.clear()  # before the export: spans ending during it can wake the worker again
            if not self._stopped:
                self._export(full_batches_only=full)

    def _export(self, full_batches_only: bool) -> None:
        """Full batches, and (unless `full_batches_only`) the spans queued when it was called; spans that end
        meanwhile wait for the next round, or an export would follow an export while requests go on."""
        with self._exporting:
            queue = self._queue
            due = 0 if full_batches_only else len(queue)
            while queue and (due > 0 or len(queue) >= self._batch_size):
                batch = [queue.popleft() for _ in range(min(self._batch_size, len(queue)))]
                due -= len(batch)
                try:
                    self._exporter.export(batch)
                except Exception:  # the exporter counts what it lost; the worker must live on
                    log.exception("span export failed")

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        self._export(full_batches_only=False)
        return True

    def shutdown(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._wake.set()
        self._worker.join(timeout=30)
        self._export(full_batches_only=False)
        self._exporter.shutdown()
