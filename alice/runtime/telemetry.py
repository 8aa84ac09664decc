"""OpenTelemetry set-up per service (no global providers): traces, metrics, and logs that carry trace ids."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import (
    AlwaysOffExemplarFilter,
    AlwaysOnExemplarFilter,
    Histogram,
    MeterProvider,
    TraceBasedExemplarFilter,
)
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from alice.runtime.config import TelemetrySettings
from alice.runtime.spans import LeanTracerProvider

LATENCY_BUCKETS_MS = (1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0)
"""Histogram boundaries for every duration in ms: 1 ms to 5 s, where Alice's targets live."""
FRACTION_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
SPANS_DROPPED = "alice.telemetry.spans_dropped"


@dataclass(frozen=True)
class Telemetry:
    """A service's tracer and meter (and their providers); passed to whatever creates spans or metrics."""

    provider: TracerProvider
    tracer: trace.Tracer
    record_text: bool
    meter_provider: MeterProvider = field(default_factory=MeterProvider)
    meter: metrics.Meter = field(default_factory=lambda: metrics.NoOpMeter("alice"))
    metrics_port: int = 0
    """Port of the Prometheus scrape endpoint (`/metrics`), 0 when there is none."""
    _metrics_server: Any = None

    def shutdown(self) -> None:
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
            self._metrics_server.server_close()
        self.provider.shutdown()  # first: spans it drops on the way out are still counted
        self.meter_provider.shutdown()


def _meter_provider(settings: TelemetrySettings, resource: Resource) -> tuple[MeterProvider, Any, int]:
    """A MeterProvider with a per-service Prometheus registry (scrape endpoint when METRICS_PORT is set) and OTLP
    export when a metrics endpoint is configured (OTEL_METRICS_EXPORTER chooses; both by default)."""
    from prometheus_client import CollectorRegistry, start_http_server

    readers: list[MetricReader] = []
    server, port = None, 0
    if settings.metrics_enabled and not settings.disabled:
        if settings.metrics_prometheus:
            registry = CollectorRegistry(auto_describe=True)
            readers.append(PrometheusMetricReader(registry=registry))
            if settings.metrics_port is not None:
                server, _ = start_http_server(settings.metrics_port, settings.metrics_host, registry=registry)
                port = int(server.server_address[1])
        if settings.metrics_otlp_endpoint:
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

            # Each reader aggregates every measurement again: a second reader costs on every request.
            readers.append(PeriodicExportingMetricReader(
                OTLPMetricExporter(endpoint=settings.metrics_otlp_endpoint, insecure=True, timeout=2),
                export_interval_millis=settings.metrics_export_interval_ms))
    views = [
        View(instrument_type=Histogram, instrument_unit="ms",
             aggregation=ExplicitBucketHistogramAggregation(LATENCY_BUCKETS_MS)),
        View(instrument_type=Histogram, instrument_unit="1",
             aggregation=ExplicitBucketHistogramAggregation(FRACTION_BUCKETS)),
    ]
    filters: dict[str, type[AlwaysOffExemplarFilter | AlwaysOnExemplarFilter | TraceBasedExemplarFilter]] = {
        "always_off": AlwaysOffExemplarFilter, "always_on": AlwaysOnExemplarFilter,
        "trace_based": TraceBasedExemplarFilter}
    exemplars = filters[settings.exemplar_filter]()
    return (MeterProvider(resource=resource, metric_readers=readers, views=views, exemplar_filter=exemplars),
            server, port)


class Deferred:
    """A counter or histogram whose measurements are taken now and recorded on the event loop's next turn.

    The SDK's synchronous record (attribute cleaning, the reader's storage, the aggregation's lock) costs
    10-40 µs per call inside a busy service. Recorded at the loop's next turn, the records a handler makes on its
    way out run after it returned, while gRPC sends the reply: off the request's critical path. The total work
    is the same, and nothing is lost (outside a running loop the record is immediate). `record` and `add` both
    work, so either kind of instrument can be wrapped.
    """

    __slots__ = ("_apply",)

    def __init__(self, instrument: metrics.Counter | metrics.Histogram) -> None:
        self._apply = instrument.record if isinstance(instrument, metrics.Histogram) else instrument.add

    def record(self, amount: float, attributes: dict[str, Any] | None = None) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._apply(amount, attributes)
            return
        loop.call_soon(self._apply, amount, attributes)

    add = record


class _DropCountingExporter(SpanExporter):
    """Counts the spans of exports that failed (collector down, slow past the export timeout, or refusing)."""

    def __init__(self, exporter: SpanExporter, dropped: metrics.Counter) -> None:
        self._exporter = exporter
        self._dropped = dropped

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self._exporter.export(spans)
        except Exception:
            self._dropped.add(len(spans), {"alice.telemetry.reason": "export_failed"})
            raise
        if result is not SpanExportResult.SUCCESS:
            self._dropped.add(len(spans), {"alice.telemetry.reason": "export_failed"})
        return result

    def shutdown(self) -> None:
        self._exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._exporter.force_flush(timeout_millis)


def setup_telemetry(settings: TelemetrySettings, extra_exporters: Sequence[SpanExporter] = ()) -> Telemetry:
    """Build a TracerProvider for one service; exports over OTLP/gRPC when an endpoint is configured.

    The provider is deliberately not installed globally, so several services can share one process
    (tests) and each keeps its own `service.name`. Spans lost on the way to the collector are counted in
    `alice.telemetry.spans_dropped` by reason (and, with OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED=true, the
    exporter's own `otel.sdk.exporter.*` metrics go to the same meter provider).
    """
    resource = Resource.create({"service.name": settings.service_name})
    meter_provider, server, port = _meter_provider(settings, resource)
    provider = LeanTracerProvider(resource=resource, sample_ratio=0.0 if settings.disabled else settings.sample_ratio)
    if settings.otlp_endpoint and not settings.disabled:
        from alice.runtime.otlp import BatchSpanExport, FastOtlpSpanExporter

        dropped = meter_provider.get_meter("alice").create_counter(
            SPANS_DROPPED, unit="{span}", description="Spans not delivered to the collector, by reason")
        otlp = FastOtlpSpanExporter(endpoint=settings.otlp_endpoint, insecure=True, timeout=2,
                                    meter_provider=meter_provider)
        provider.add_span_processor(BatchSpanExport(
            _DropCountingExporter(otlp, dropped), delay_s=settings.export_delay_ms / 1000,
            queue_size=settings.export_queue_size, batch_size=settings.export_batch_size,
            on_drop=lambda reason: dropped.add(1, {"alice.telemetry.reason": reason})))
    for exporter in extra_exporters:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    return Telemetry(provider, provider.get_tracer("alice"), settings.record_text, meter_provider,
                     meter_provider.get_meter("alice"), port, server)


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
