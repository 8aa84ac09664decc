"""Deferred instruments: measured now, recorded on the loop's next turn, none lost, immediate without a loop."""

from __future__ import annotations

import asyncio

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader

from alice.runtime.telemetry import Deferred


def _points(reader: InMemoryMetricReader) -> dict[str, list[tuple[dict[str, object], object]]]:
    data = reader.get_metrics_data()
    found: dict[str, list[tuple[dict[str, object], object]]] = {}
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    value = point.count if isinstance(point, HistogramDataPoint) else getattr(point, "value", None)
                    found.setdefault(metric.name, []).append((dict(point.attributes or {}), value))
    return found


def _instruments() -> tuple[InMemoryMetricReader, Deferred, Deferred]:
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("test")
    return reader, Deferred(meter.create_histogram("h", unit="ms")), Deferred(meter.create_counter("c"))


async def test_recorded_on_the_next_turn_of_the_loop_and_none_lost() -> None:
    reader, histogram, counter = _instruments()
    for i in range(100):
        histogram.record(float(i), {"alice.route": "fast"})
        counter.add(1, {"alice.cache.tier": "l1"})
    assert _points(reader) == {}  # nothing yet: the request's handler is still running
    await asyncio.sleep(0)
    points = _points(reader)
    assert points["h"] == [({"alice.route": "fast"}, 100)]
    assert points["c"] == [({"alice.cache.tier": "l1"}, 100)]


def test_immediate_outside_an_event_loop() -> None:
    reader, histogram, counter = _instruments()
    histogram.record(2.5)
    counter.add(3, {"k": "v"})
    assert _points(reader) == {"h": [({}, 1)], "c": [({"k": "v"}, 3)]}
