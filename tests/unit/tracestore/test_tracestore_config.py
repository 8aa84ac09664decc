"""Trace store settings from the environment: defaults, validation, loopback only."""

from __future__ import annotations

from pathlib import Path

import pytest

from alice.runtime.config import ConfigError
from alice.tracestore.config import TraceStoreConfig


def test_defaults() -> None:
    config = TraceStoreConfig.from_env({})
    assert config.db_path == Path(".alice/traces.db")
    assert (config.max_spans, config.max_age_s) == (200_000, 86_400.0)
    assert (config.host, config.otlp_grpc_port, config.otlp_http_port, config.web_port) == (
        "127.0.0.1", 4317, 4318, 16686)
    assert config.nice == 10


def test_overrides() -> None:
    config = TraceStoreConfig.from_env({
        "TRACESTORE_DB": "/tmp/x.db", "TRACESTORE_MAX_SPANS": "5000", "TRACESTORE_MAX_AGE_S": "60",
        "TRACESTORE_OTLP_GRPC_PORT": "0", "TRACESTORE_OTLP_HTTP_PORT": "-1", "TRACESTORE_WEB_PORT": "0",
        "TRACESTORE_HOST": "::1", "TRACESTORE_NICE": "0",
    })
    assert (config.db_path, config.max_spans, config.max_age_s) == (Path("/tmp/x.db"), 5000, 60.0)
    assert (config.otlp_grpc_port, config.otlp_http_port, config.web_port, config.host) == (0, -1, 0, "::1")
    assert config.nice == 0


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TRACESTORE_HOST": "0.0.0.0"}, "not a loopback"),
        ({"TRACESTORE_HOST": "example.org"}, "not a loopback"),
        ({"TRACESTORE_MAX_SPANS": "ten"}, "not an integer"),
        ({"TRACESTORE_MAX_SPANS": "5"}, "below the minimum"),
        ({"TRACESTORE_MAX_AGE_S": "0"}, "below the minimum"),
        ({"TRACESTORE_OTLP_GRPC_PORT": "-1"}, "below the minimum"),
        ({"TRACESTORE_NICE": "20"}, "above the maximum"),
    ],
    ids=["any-address", "hostname", "not-a-number", "too-few-spans", "zero-age", "grpc-off", "too-nice"],
)
def test_invalid_settings_fail_fast(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TraceStoreConfig.from_env(env)
