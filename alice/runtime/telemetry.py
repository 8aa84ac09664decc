"""OpenTelemetry set-up per service (no global provider) and logs that carry trace ids."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from alice.runtime.config import TelemetrySettings


@dataclass(frozen=True)
class Telemetry:
    """A service's tracer provider and tracer; passed to whatever creates spans."""

    provider: TracerProvider
    tracer: trace.Tracer
    record_text: bool

    def shutdown(self) -> None:
        self.provider.shutdown()


def setup_telemetry(settings: TelemetrySettings, extra_exporters: Sequence[SpanExporter] = ()) -> Telemetry:
    """Build a TracerProvider for one service; exports over OTLP/gRPC when an endpoint is configured.

    The provider is deliberately not installed globally, so several services can share one process
    (tests) and each keeps its own `service.name`.
    """
    provider = TracerProvider(
        resource=Resource.create({"service.name": settings.service_name}),
        sampler=ParentBased(TraceIdRatioBased(0.0 if settings.disabled else settings.sample_ratio)),
    )
    if settings.otlp_endpoint and not settings.disabled:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otlp_endpoint, insecure=True, timeout=2))
        )
    for exporter in extra_exporters:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    return Telemetry(provider, provider.get_tracer("alice"), settings.record_text)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the current trace and span ids when there are any."""

    def __init__(self, service_name: str) -> None:
        super().__init__()
        self._service = service_name

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "service": self._service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            entry["trace_id"] = f"{context.trace_id:032x}"
            entry["span_id"] = f"{context.span_id:016x}"
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """Human-readable lines that still carry the trace id."""

    def __init__(self, service_name: str) -> None:
        super().__init__(f"%(asctime)s %(levelname)s {service_name} %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = trace.get_current_span().get_span_context()
        return f"{line} trace_id={context.trace_id:032x}" if context.is_valid else line


def setup_logging(service_name: str, level: str, fmt: str) -> None:
    """Configure the root logger of a service process (called once, from the entry point)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service_name) if fmt == "json" else TextFormatter(service_name))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
