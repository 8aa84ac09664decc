"""Config validation: typed getters fail fast with the variable's name."""

from __future__ import annotations

import pytest

from alice.runtime.config import ClientSettings, ConfigError, Env, ServerSettings, TelemetrySettings
from router_svc.config import Config as RouterConfig


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GRPC_PORT": "abc"}, "GRPC_PORT='abc' is not an integer"),
        ({"GRPC_PORT": "70000"}, "GRPC_PORT=70000 is above the maximum"),
        ({"GRACE_PERIOD_S": "-1"}, "GRACE_PERIOD_S=-1.0 is below the minimum"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL='LOUD' is not one of"),
        ({"TLS_CERT_FILE": "/x.pem"}, "TLS_CERT_FILE and TLS_KEY_FILE must be set together"),
        ({"HEALTH_PORT": "70000"}, "HEALTH_PORT=70000 is above the maximum"),
        ({"HEALTH_PORT": "-1"}, "HEALTH_PORT=-1 is below the minimum"),
        ({"HEALTH_PORT": "x"}, "HEALTH_PORT='x' is not an integer"),
        ({"GRPC_PORT": "50052", "HEALTH_PORT": "50052"}, "HEALTH_PORT=50052 must differ from GRPC_PORT"),
        ({"HEALTH_PORT": "1"}, "HEALTH_PORT=1 must differ from GRPC_PORT"),  # the default port of this test
    ],
    ids=["port-not-int", "port-range", "grace-negative", "log-level", "tls-half", "health-port-range",
         "health-port-negative", "health-port-not-int", "health-port-same", "health-port-same-as-default"],
)
def test_server_settings_reject_bad_values(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        ServerSettings.from_env(Env(env), service_name="s", default_port=1)


def test_server_settings_defaults() -> None:
    settings = ServerSettings.from_env(Env({}), service_name="alice-x", default_port=50099)
    assert (settings.host, settings.port, settings.tls, settings.health_port) == ("127.0.0.1", 50099, None, None)


@pytest.mark.parametrize(("raw", "port"), [("", None), ("0", None), ("50060", 50060)],
                         ids=["unset", "zero-is-off", "set"])
def test_health_port_is_off_unless_set(raw: str, port: int | None) -> None:
    settings = ServerSettings.from_env(Env({"HEALTH_PORT": raw}), service_name="alice-x", default_port=50099)
    assert settings.health_port == port


def test_health_port_is_checked_when_built_directly() -> None:
    with pytest.raises(ConfigError, match="must differ from GRPC_PORT"):
        ServerSettings("alice-x", "127.0.0.1", 50052, 1.0, 0.0, 1 << 20, 100, "INFO", "text", health_port=50052)
    # Port 0 twice is two different free ports (tests).
    assert ServerSettings("alice-x", "127.0.0.1", 0, 1.0, 0.0, 1 << 20, 100, "INFO", "text", health_port=0)


@pytest.mark.parametrize(("raw", "value"), [("true", True), ("0", False), ("ON", True), ("", True)],
                         ids=["true", "zero", "on-upper", "default"])
def test_flags(raw: str, value: bool) -> None:
    assert Env({"X": raw}).flag("X", True) is value


def test_flag_rejects_garbage() -> None:
    with pytest.raises(ConfigError, match="X='maybe' is not a boolean"):
        Env({"X": "maybe"}).flag("X", False)


def test_required_text_missing() -> None:
    with pytest.raises(ConfigError, match="NEEDED is required"):
        Env({}).text("NEEDED")


def test_address_needs_port() -> None:
    with pytest.raises(ConfigError, match="not a HOST:PORT"):
        Env({"NLU_ADDR": "localhost"}).address("NLU_ADDR", "127.0.0.1:1")


def test_telemetry_reads_standard_otel_variables() -> None:
    settings = TelemetrySettings.from_env(Env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317",
                                               "OTEL_TRACES_SAMPLER_ARG": "0.25"}), service_name="alice-x")
    assert settings.otlp_endpoint == "http://127.0.0.1:4317" and settings.sample_ratio == 0.25
    assert settings.record_text is False


def test_metrics_go_over_otlp_to_the_metrics_endpoint_else_the_common_one() -> None:
    common = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"}
    both = TelemetrySettings.from_env(Env(common), service_name="alice-x")
    assert both.metrics_prometheus and both.metrics_otlp_endpoint == "http://collector:4317"
    own = TelemetrySettings.from_env(Env({**common, "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://m:4317",
                                          "OTEL_METRIC_EXPORT_INTERVAL": "500"}), service_name="alice-x")
    assert own.metrics_otlp_endpoint == "http://m:4317" and own.metrics_export_interval_ms == 500
    scrape_only = TelemetrySettings.from_env(Env({**common, "OTEL_METRICS_EXPORTER": "prometheus"}),
                                             service_name="alice-x")
    assert scrape_only.metrics_prometheus and scrape_only.metrics_otlp_endpoint is None
    assert scrape_only.otlp_endpoint == "http://collector:4317"  # traces still go there
    none = TelemetrySettings.from_env(Env({**common, "OTEL_METRICS_EXPORTER": "none"}), service_name="alice-x")
    assert not none.metrics_prometheus and none.metrics_otlp_endpoint is None


def test_span_batching_reads_the_standard_bsp_variables() -> None:
    default = TelemetrySettings.from_env(Env({}), service_name="alice-x")
    assert (default.export_delay_ms, default.export_queue_size, default.export_batch_size) == (5000, 2048, 512)
    tuned = TelemetrySettings.from_env(Env({"OTEL_BSP_SCHEDULE_DELAY": "200", "OTEL_BSP_MAX_QUEUE_SIZE": "64",
                                            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "16"}), service_name="alice-x")
    assert (tuned.export_delay_ms, tuned.export_queue_size, tuned.export_batch_size) == (200, 64, 16)
    with pytest.raises(ConfigError, match="OTEL_BSP_MAX_QUEUE_SIZE"):
        TelemetrySettings.from_env(Env({"OTEL_BSP_MAX_QUEUE_SIZE": "0"}), service_name="alice-x")


def test_unknown_metrics_exporter_is_refused() -> None:
    with pytest.raises(ConfigError, match="OTEL_METRICS_EXPORTER: unknown statsd"):
        TelemetrySettings.from_env(Env({"OTEL_METRICS_EXPORTER": "otlp,statsd"}), service_name="alice-x")


def test_client_settings_bounds() -> None:
    with pytest.raises(ConfigError, match="CLIENT_RETRY_ATTEMPTS=9 is above"):
        ClientSettings.from_env(Env({"CLIENT_RETRY_ATTEMPTS": "9"}))


def test_router_config_is_frozen_and_validated() -> None:
    config = RouterConfig.from_env({"AUTH_MODE": "none"})  # authentication is on unless switched off explicitly
    with pytest.raises(AttributeError):
        config.micro_max_share = 1.0  # type: ignore[misc]
    with pytest.raises(ConfigError, match=r"MICRO_MAX_SHARE=1\.5 is above"):
        RouterConfig.from_env({"MICRO_MAX_SHARE": "1.5"})
