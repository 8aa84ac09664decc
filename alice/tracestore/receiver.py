"""OTLP trace receiver: `TraceService/Export` over gRPC and `POST /v1/traces` (protobuf) over HTTP."""

from __future__ import annotations

import asyncio
import base64
import logging
import sqlite3
import threading
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

import grpc
from google.protobuf.message import DecodeError
from google.rpc import code_pb2, status_pb2  # type: ignore[import-untyped]
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from alice.tracestore.store import SpanRecord

log = logging.getLogger(__name__)

SERVICE_NAME = trace_service_pb2.DESCRIPTOR.services_by_name["TraceService"].full_name
"""`opentelemetry.proto.collector.trace.v1.TraceService`."""
MAX_STRING = 8192
"""Longer attribute strings are cut: a span is for timing and keys, not for payloads."""
UNKNOWN_SERVICE = "unknown_service"

_KINDS = {value: name.removeprefix("SPAN_KIND_") for name, value in Span.SpanKind.items()}
_STATUSES = {value: name.removeprefix("STATUS_CODE_") for name, value in Status.StatusCode.items()}


class SpanSink(Protocol):
    """Where received spans go (the TraceStore)."""

    def insert(self, spans: Sequence[SpanRecord]) -> int: ...


@dataclass
class Conversion:
    """The spans of one export that could be stored, and what was wrong with the others."""

    spans: list[SpanRecord] = field(default_factory=list)
    rejected: int = 0
    problems: list[str] = field(default_factory=list)

    def error_message(self) -> str:
        shown = "; ".join(self.problems[:3])
        more = f" (and {len(self.problems) - 3} more)" if len(self.problems) > 3 else ""
        return f"{self.rejected} span(s) rejected: {shown}{more}"


def any_value(value: AnyValue, depth: int = 0) -> Any:
    """An OTLP AnyValue as a JSON value (bytes as base64)."""
    which = value.WhichOneof("value")
    if which is None:
        return None
    if depth > 8:
        return "…"
    if which == "string_value":
        text: str = value.string_value
        return text if len(text) <= MAX_STRING else text[:MAX_STRING] + "…"
    if which == "bool_value":
        return value.bool_value
    if which == "int_value":
        return value.int_value
    if which == "double_value":
        return value.double_value
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    if which == "array_value":
        return [any_value(item, depth + 1) for item in value.array_value.values]
    return key_values(value.kvlist_value.values, depth + 1)


def key_values(values: Sequence[KeyValue], depth: int = 0) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in values:
        value = item.value
        which = value.WhichOneof("value")
        if which == "string_value":  # most attributes: read here rather than through any_value
            text: str = value.string_value
            out[item.key] = text if len(text) <= MAX_STRING else text[:MAX_STRING] + "…"
        elif which in _SCALARS:
            out[item.key] = getattr(value, which)
        else:
            out[item.key] = any_value(value, depth)
    return out


_SCALARS = frozenset({"bool_value", "int_value", "double_value"})
_ZERO_TRACE, _ZERO_SPAN = bytes(16), bytes(8)


def _problem(name: str, trace_id: bytes, span_id: bytes, parent_id: bytes, start: int, end: int) -> str | None:
    if len(trace_id) != 16 or trace_id == _ZERO_TRACE:
        return f"span {name!r}: trace_id must be 16 non-zero bytes (got {len(trace_id)})"
    if len(span_id) != 8 or span_id == _ZERO_SPAN:
        return f"span {name!r}: span_id must be 8 non-zero bytes (got {len(span_id)})"
    if parent_id and len(parent_id) != 8:
        return f"span {name!r}: parent_span_id must be empty or 8 bytes (got {len(parent_id)})"
    if start == 0 or end < start:
        return f"span {name!r}: needs a start time and an end time not before it"
    return None


def convert(request: trace_service_pb2.ExportTraceServiceRequest) -> Conversion:
    """Flatten an export into SpanRecords; invalid spans are counted and described, not stored."""
    result = Conversion()
    store = result.spans.append
    for resource_spans in request.resource_spans:
        resource = key_values(resource_spans.resource.attributes)
        service = str(resource.get("service.name") or UNKNOWN_SERVICE)
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope.name
            for span in scope_spans.spans:
                trace_id, span_id, parent_id = span.trace_id, span.span_id, span.parent_span_id
                start, end = span.start_time_unix_nano, span.end_time_unix_nano
                problem = _problem(span.name, trace_id, span_id, parent_id, start, end)
                if problem is not None:
                    result.rejected += 1
                    result.problems.append(problem)
                    continue
                attributes = key_values(span.attributes)
                if scope:
                    attributes.setdefault("otel.scope.name", scope)
                status = span.status
                store(SpanRecord(
                    trace_id=trace_id.hex(),
                    span_id=span_id.hex(),
                    parent_id=parent_id.hex() if parent_id and parent_id != _ZERO_SPAN else "",
                    service=service,
                    name=span.name or "(unnamed)",
                    kind=_KINDS.get(span.kind, "UNSPECIFIED"),
                    start_ns=start,
                    end_ns=end,
                    status_code=_STATUSES.get(status.code, "UNSET"),
                    status_message=status.message,
                    attributes=attributes,
                    events=[{"name": event.name, "time_ns": event.time_unix_nano,
                             "attributes": key_values(event.attributes)} for event in span.events],
                ))
    return result


def _response(conversion: Conversion) -> trace_service_pb2.ExportTraceServiceResponse:
    response = trace_service_pb2.ExportTraceServiceResponse()
    if conversion.rejected:
        response.partial_success.rejected_spans = conversion.rejected
        response.partial_success.error_message = conversion.error_message()
    return response


class TraceReceiver(trace_service_pb2_grpc.TraceServiceServicer):
    """The OTLP/gRPC TraceService. Registered with a raw-bytes request handler (see `add_to_server`) so that
    a malformed message gets INVALID_ARGUMENT here instead of gRPC's generic deserialisation error.

    Exports arriving within `gather_s` of each other are written in one transaction: the router's, the NLU's
    and the cache's batches touch the same traces, and each trace summary is then recomputed once instead of
    once per service. Every export still gets its answer only once its spans are stored (or UNAVAILABLE).
    """

    def __init__(self, sink: SpanSink, gather_s: float = 0.1) -> None:
        self._sink = sink
        self._gather_s = gather_s
        self._pending: list[tuple[list[SpanRecord], asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def Export(self, request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        try:
            message = trace_service_pb2.ExportTraceServiceRequest.FromString(request)
        except DecodeError as error:
            log.warning("malformed OTLP export (%d bytes): %s", len(request), error)
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"not an ExportTraceServiceRequest: {error}")
        conversion = convert(message)
        if conversion.rejected:
            log.warning("OTLP export: %s", conversion.error_message())
        if conversion.spans:
            try:
                await self._store(conversion.spans)
            except sqlite3.OperationalError as error:
                # Retryable for the exporter (locked or full database); its BatchSpanProcessor retries or drops.
                await context.abort(grpc.StatusCode.UNAVAILABLE, f"trace store cannot write: {error}")
        return _response(conversion)

    async def _store(self, spans: list[SpanRecord]) -> None:
        stored = asyncio.get_running_loop().create_future()
        self._pending.append((spans, stored))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())
        await stored

    async def _write(self) -> None:
        await asyncio.sleep(self._gather_s)
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                # SQLite blocks: the insert runs on a worker thread so the receiver keeps answering.
                await asyncio.to_thread(self._sink.insert, [span for spans, _ in batch for span in spans])
            except Exception as error:  # not swallowed: every export of the batch raises it
                for _, stored in batch:
                    if not stored.done():
                        stored.set_exception(error)
            else:
                for _, stored in batch:
                    if not stored.done():
                        stored.set_result(None)


def add_to_server(receiver: TraceReceiver, server: grpc.aio.Server) -> None:
    handler = grpc.unary_unary_rpc_method_handler(
        receiver.Export,
        request_deserializer=None,
        response_serializer=trace_service_pb2.ExportTraceServiceResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, {"Export": handler}),))


# -- OTLP/HTTP (binary protobuf) -------------------------------------------------------------------------


class OtlpHttpServer(ThreadingHTTPServer):
    """`POST /v1/traces` with `application/x-protobuf` bodies (optionally gzip), answered per the OTLP spec."""

    daemon_threads = True

    def __init__(self, host: str, port: int, sink: SpanSink, max_bytes: int) -> None:
        super().__init__((host, port), _OtlpHttpHandler)
        self.sink = sink
        self.max_bytes = max_bytes
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start(self) -> OtlpHttpServer:
        self._thread = threading.Thread(target=self.serve_forever, name="otlp-http", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


class _OtlpHttpHandler(BaseHTTPRequestHandler):
    server: OtlpHttpServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("otlp-http %s " + format, self.client_address[0], *args)

    def do_POST(self) -> None:
        if self.path.split("?", 1)[0] != "/v1/traces":
            self._fail(HTTPStatus.NOT_FOUND, code_pb2.NOT_FOUND, "only /v1/traces is served here")
            return
        content_type = self.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if content_type != "application/x-protobuf":
            self._fail(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, code_pb2.INVALID_ARGUMENT,
                       "only application/x-protobuf is accepted (the JSON encoding is not)")
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._fail(HTTPStatus.LENGTH_REQUIRED, code_pb2.INVALID_ARGUMENT, "Content-Length is required")
            return
        if length < 0 or length > self.server.max_bytes:
            self._fail(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, code_pb2.RESOURCE_EXHAUSTED,
                       f"body over {self.server.max_bytes} bytes")
            return
        body = self.rfile.read(length)
        try:
            if self.headers.get("Content-Encoding", "").strip().lower() == "gzip":
                body = _gunzip(body, self.server.max_bytes)
            message = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
        except (DecodeError, zlib.error, ValueError) as error:
            log.warning("malformed OTLP/HTTP export (%d bytes): %s", length, error)
            self._fail(HTTPStatus.BAD_REQUEST, code_pb2.INVALID_ARGUMENT, f"not an ExportTraceServiceRequest: {error}")
            return
        conversion = convert(message)
        try:
            self.server.sink.insert(conversion.spans)
        except sqlite3.OperationalError as error:
            self._fail(HTTPStatus.SERVICE_UNAVAILABLE, code_pb2.UNAVAILABLE, f"trace store cannot write: {error}")
            return
        self._send(HTTPStatus.OK, _response(conversion).SerializeToString())

    def _fail(self, status: HTTPStatus, code: int, message: str) -> None:
        self._send(status, status_pb2.Status(code=code, message=message).SerializeToString())

    def _send(self, status: HTTPStatus, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _gunzip(data: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    out = inflater.decompress(data, limit + 1)
    if len(out) > limit:
        raise ValueError(f"decompressed body over {limit} bytes")
    return out
