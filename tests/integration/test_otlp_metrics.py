"""Metrics over OTLP/gRPC: a real MetricsService receiver on loopback gets a service's histograms, with the
same bucket boundaries the Prometheus endpoint shows (the views apply to every reader)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as otlp
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc as otlp_grpc

from alice.runtime.config import Env, TelemetrySettings
from alice.runtime.telemetry import LATENCY_BUCKETS_MS, setup_telemetry


class Receiver(otlp_grpc.MetricsServiceServicer):
    def __init__(self) -> None:
        self.requests: list[otlp.ExportMetricsServiceRequest] = []
        self.arrived = asyncio.Event()

    async def Export(self, request: otlp.ExportMetricsServiceRequest,
                     context: grpc.aio.ServicerContext[object, object]) -> otlp.ExportMetricsServiceResponse:
        self.requests.append(request)
        self.arrived.set()
        return otlp.ExportMetricsServiceResponse()


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, int]]:
    server = grpc.aio.server()
    servicer = Receiver()
    otlp_grpc.add_MetricsServiceServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield servicer, port
    await server.stop(None)


async def test_histograms_reach_an_otlp_metrics_receiver(receiver: tuple[Receiver, int]) -> None:
    servicer, port = receiver
    settings = TelemetrySettings.from_env(Env({
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1",  # traces: nobody there, and none are made here
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": f"http://127.0.0.1:{port}",
        "OTEL_METRIC_EXPORT_INTERVAL": "200",
    }), service_name="alice-nlu")
    telemetry = setup_telemetry(settings)
    try:
        duration = telemetry.meter.create_histogram("alice.test.duration", unit="ms")
        for ms in (0.5, 3.0, 30.0):
            duration.record(ms, {"alice.route": "fast"})
        await asyncio.wait_for(servicer.arrived.wait(), timeout=10)
    finally:
        await asyncio.to_thread(telemetry.shutdown)

    points = [(resource.resource, metric) for request in servicer.requests for resource in request.resource_metrics
              for scope in resource.scope_metrics for metric in scope.metrics if metric.name == "alice.test.duration"]
    assert points, [m.name for r in servicer.requests for rm in r.resource_metrics for s in rm.scope_metrics
                    for m in s.metrics]
    resource, metric = points[-1]
    assert {a.key: a.value.string_value for a in resource.attributes}["service.name"] == "alice-nlu"
    point = metric.histogram.data_points[0]
    assert point.count == 3 and list(point.explicit_bounds) == list(LATENCY_BUCKETS_MS)
    assert {a.key: a.value.string_value for a in point.attributes} == {"alice.route": "fast"}
