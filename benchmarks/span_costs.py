"""What one unit of telemetry costs in-process: a span (SDK vs LeanSpan), its OTLP encoding (SDK encoder vs
alice/runtime/otlp.py), a histogram record, a counter add, and W3C context injection.

Each line is the best of five rounds (the least disturbed by other processes on the machine), in µs per call.
The spans end into a batch span processor whose exporter keeps nothing, as in a service.

    .venv/bin/python benchmarks/span_costs.py
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence

from opentelemetry import propagate
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Tracer

from alice.runtime.otlp import SpanEncoder
from alice.runtime.spans import LeanTracerProvider


class _Discard(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


class _Keep(SpanExporter):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS


def best_us(call: Callable[[], object], n: int) -> float:
    rounds = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(n):
            call()
        rounds.append((time.perf_counter() - started) / n * 1e6)
    return min(rounds)


def _request_span(tracer: Tracer) -> None:
    with tracer.start_as_current_span("/alice.nlu.v1.NluService/Parse",
                                      attributes={"rpc.system": "grpc", "rpc.method": "Parse"}) as span:
        span.set_attribute("alice.route", "fast")
        span.set_attribute("alice.confidence", 0.93)


def _injected(tracer: Tracer) -> None:
    """The same span, with its context written into call metadata as a gRPC client call does."""
    with tracer.start_as_current_span("/alice.nlu.v1.NluService/Parse",
                                      attributes={"rpc.system": "grpc", "rpc.method": "Parse"}) as span:
        span.set_attribute("alice.route", "fast")
        span.set_attribute("alice.confidence", 0.93)
        propagate.inject({})


def _spans(provider: TracerProvider, n: int) -> list[ReadableSpan]:
    keep = _Keep()
    provider.add_span_processor(BatchSpanProcessor(keep, max_queue_size=n, max_export_batch_size=n))
    tracer = provider.get_tracer("bench")
    for _ in range(n):
        _request_span(tracer)
    provider.force_flush()
    return keep.spans


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=4000, help="calls per round (default 4000)")
    args = parser.parse_args()
    resource = Resource.create({"service.name": "alice-bench"})
    rows: list[tuple[str, float]] = []
    providers = {"SDK span": TracerProvider(resource=resource, sampler=ParentBased(TraceIdRatioBased(1.0))),
                 "LeanSpan": LeanTracerProvider(resource=resource, sample_ratio=1.0)}
    for label, provider in providers.items():
        provider.add_span_processor(BatchSpanProcessor(_Discard(), max_queue_size=4 * args.n))
        tracer = provider.get_tracer("bench")
        rows.append((f"{label}: start, 2 attributes, end", best_us(lambda t=tracer: _request_span(t), args.n)))
        rows.append((f"{label} + W3C inject", best_us(lambda t=tracer: _injected(t), args.n)))
        provider.shutdown()
    sdk_spans = _spans(TracerProvider(resource=resource), 512)
    lean_spans = _spans(LeanTracerProvider(resource=resource, sample_ratio=1.0), 512)
    encoder = SpanEncoder()
    rows.append(("OTLP encode per span, SDK encoder", best_us(lambda: encode_spans(sdk_spans).SerializeToString(),
                                                             20) / 512))
    rows.append(("OTLP encode per span, otlp.SpanEncoder", best_us(lambda: encoder.encode(lean_spans), 20) / 512))
    meter = MeterProvider(metric_readers=[InMemoryMetricReader()]).get_meter("bench")
    histogram, counter = meter.create_histogram("d", unit="ms"), meter.create_counter("c")
    rows.append(("histogram record, 2 attributes, 1 reader",
                 best_us(lambda: histogram.record(3.2, {"alice.route": "cache", "rpc.grpc.status": "OK"}), args.n)))
    rows.append(("counter add, 1 attribute, 1 reader", best_us(lambda: counter.add(1, {"alice.cache.tier": "l1"}),
                                                              args.n)))
    for label, micros in rows:
        print(f"{label:<44} {micros:7.1f} µs")


if __name__ == "__main__":
    main()
