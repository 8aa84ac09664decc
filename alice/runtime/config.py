"""Typed reading of environment settings, and the settings every service shares."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

PORT_FILE_ENV = "ALICE_PORT_FILE"
"""Where a server reports the ports it bound (GRPC_PORT=0 and METRICS_PORT=0 let the kernel pick them)."""


class ConfigError(ValueError):
    """A setting is missing or invalid; raised once at start so the process fails fast."""


class Env:
    """Typed, validated access to a mapping of environment variables."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self._env = dict(os.environ if env is None else env)

    def text(self, name: str, default: str | None = None, *, choices: tuple[str, ...] = ()) -> str:
        value = self._env.get(name, "").strip()
        if not value:
            if default is None:
                raise ConfigError(f"{name} is required")
            value = default
        if choices and value not in choices:
            raise ConfigError(f"{name}={value!r} is not one of {', '.join(choices)}")
        return value

    def optional_text(self, name: str) -> str | None:
        value = self._env.get(name, "").strip()
        return value or None

    def integer(self, name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
        raw = self._env.get(name, "").strip()
        try:
            value = int(raw) if raw else default
        except ValueError:
            raise ConfigError(f"{name}={raw!r} is not an integer") from None
        self._check_range(name, value, minimum, maximum)
        return value

    def number(self, name: str, default: float, *, minimum: float | None = None, maximum: float | None = None) -> float:
        raw = self._env.get(name, "").strip()
        try:
            value = float(raw) if raw else default
        except ValueError:
            raise ConfigError(f"{name}={raw!r} is not a number") from None
        self._check_range(name, value, minimum, maximum)
        return value

    def flag(self, name: str, default: bool) -> bool:
        raw = self._env.get(name, "").strip().lower()
        if not raw:
            return default
        if raw in ("1", "true", "yes", "on"):
            return True
        if raw in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name}={raw!r} is not a boolean (true/false)")

    def path(self, name: str, default: str | None = None) -> Path | None:
        raw = self._env.get(name, "").strip() or default
        return Path(raw).expanduser() if raw else None

    def address(self, name: str, default: str) -> str:
        """A gRPC target such as "127.0.0.1:50052" or "dns:///nlu-headless:50052"."""
        value = self.text(name, default)
        if ":" not in value:
            raise ConfigError(f"{name}={value!r} is not a HOST:PORT gRPC target")
        return value

    @staticmethod
    def _check_range(name: str, value: float, minimum: float | None, maximum: float | None) -> None:
        if minimum is not None and value < minimum:
            raise ConfigError(f"{name}={value} is below the minimum {minimum}")
        if maximum is not None and value > maximum:
            raise ConfigError(f"{name}={value} is above the maximum {maximum}")


@dataclass(frozen=True)
class TlsSettings:
    """Server certificate and, for mutual TLS, the CA that client certificates must chain to."""

    cert_file: Path
    key_file: Path
    client_ca_file: Path | None = None


@dataclass(frozen=True)
class ServerSettings:
    """How a service listens, drains and logs."""

    service_name: str
    host: str
    port: int
    grace_s: float
    drain_delay_s: float
    max_message_bytes: int
    max_concurrent_streams: int
    log_level: str
    log_format: str
    tls: TlsSettings | None = None
    require_deadline: bool = False
    """Refuse calls without a deadline (internal services: nlu, cache, llm)."""
    health_port: int | None = None
    """A second, plaintext port serving only grpc.health.v1, for probes that cannot speak TLS (the kubelet's).
    None: no such port; 0: any free port (tests). From the environment, HEALTH_PORT unset or 0 means none."""
    port_file: Path | None = None
    """ALICE_PORT_FILE: once bound, the server writes the ports it actually holds there as JSON (see
    `ServiceHost.announce`), so whoever started it (the local mesh) talks to this process and no other."""

    def __post_init__(self) -> None:
        if self.health_port is not None and not 0 <= self.health_port <= 65535:
            raise ConfigError(f"HEALTH_PORT={self.health_port} is not a TCP port")
        if self.health_port and self.health_port == self.port:
            raise ConfigError(f"HEALTH_PORT={self.health_port} must differ from GRPC_PORT: the health port is "
                              "plaintext and serves only grpc.health.v1")

    @classmethod
    def from_env(cls, env: Env, *, service_name: str, default_port: int) -> ServerSettings:
        cert, key = env.path("TLS_CERT_FILE"), env.path("TLS_KEY_FILE")
        if (cert is None) != (key is None):
            raise ConfigError("TLS_CERT_FILE and TLS_KEY_FILE must be set together")
        tls = TlsSettings(cert, key, env.path("TLS_CLIENT_CA_FILE")) if cert and key else None
        health_port = env.integer("HEALTH_PORT", 0, minimum=0, maximum=65535)
        return cls(
            service_name=service_name,
            host=env.text("GRPC_HOST", "127.0.0.1"),
            port=env.integer("GRPC_PORT", default_port, minimum=0, maximum=65535),
            grace_s=env.number("GRACE_PERIOD_S", 5.0, minimum=0.0, maximum=300.0),
            drain_delay_s=env.number("DRAIN_DELAY_S", 0.2, minimum=0.0, maximum=60.0),
            max_message_bytes=env.integer("MAX_MESSAGE_BYTES", 1 << 20, minimum=1024, maximum=64 << 20),
            max_concurrent_streams=env.integer("MAX_CONCURRENT_STREAMS", 100, minimum=1, maximum=10_000),
            log_level=env.text("LOG_LEVEL", "INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR")),
            log_format=env.text("LOG_FORMAT", "json", choices=("json", "text")),
            tls=tls,
            require_deadline=env.flag("REQUIRE_DEADLINE", False),
            health_port=health_port or None,
            port_file=env.path(PORT_FILE_ENV),
        )


@dataclass(frozen=True)
class TelemetrySettings:
    """OpenTelemetry settings, from the standard OTEL_* variables."""

    service_name: str
    otlp_endpoint: str | None
    sample_ratio: float
    disabled: bool
    record_text: bool
    metrics_enabled: bool = True
    metrics_port: int | None = None
    """Prometheus scrape port (0 = any free port); None: no scrape endpoint."""
    metrics_host: str = "127.0.0.1"
    metrics_prometheus: bool = True
    """OTEL_METRICS_EXPORTER contains `prometheus`: a Prometheus registry (served on METRICS_PORT when set)."""
    metrics_otlp_endpoint: str | None = None
    """Where metrics go over OTLP/gRPC: OTEL_EXPORTER_OTLP_METRICS_ENDPOINT, else OTEL_EXPORTER_OTLP_ENDPOINT; None
    when OTEL_METRICS_EXPORTER leaves `otlp` out (the local trace store takes traces only)."""
    metrics_export_interval_ms: int = 15_000
    """OTEL_METRIC_EXPORT_INTERVAL: how often the OTLP metric reader exports."""
    export_delay_ms: int = 5_000
    """OTEL_BSP_SCHEDULE_DELAY: the longest a finished span waits for its batch."""
    export_queue_size: int = 2_048
    """OTEL_BSP_MAX_QUEUE_SIZE: spans waiting for export; more are dropped (and counted)."""
    export_batch_size: int = 512
    """OTEL_BSP_MAX_EXPORT_BATCH_SIZE: spans per export call; a full batch goes out at once."""
    exemplar_filter: str = "always_off"
    """OTEL_METRICS_EXEMPLAR_FILTER. Off by default: the Prometheus exporter drops exemplars, and sampling them
    costs every histogram record inside a span (docs/observability.md, Overhead)."""

    @classmethod
    def from_env(cls, env: Env, *, service_name: str) -> TelemetrySettings:
        port = env.integer("METRICS_PORT", -1, minimum=-1, maximum=65535)
        otlp_endpoint = env.optional_text("OTEL_EXPORTER_OTLP_ENDPOINT")
        exporters = {name.strip() for name in env.text("OTEL_METRICS_EXPORTER", "prometheus,otlp").split(",")}
        unknown = exporters - {"prometheus", "otlp", "none"}
        if unknown:
            raise ConfigError(f"OTEL_METRICS_EXPORTER: unknown {', '.join(sorted(unknown))} "
                              "(prometheus, otlp or none, comma-separated)")
        return cls(
            service_name=env.text("OTEL_SERVICE_NAME", service_name),
            otlp_endpoint=otlp_endpoint,
            sample_ratio=env.number("OTEL_TRACES_SAMPLER_ARG", 1.0, minimum=0.0, maximum=1.0),
            disabled=env.flag("OTEL_SDK_DISABLED", False),
            record_text=env.flag("ALICE_TRACE_RECORD_TEXT", False),
            metrics_enabled=env.flag("ALICE_METRICS", True),
            metrics_port=None if port < 0 else port,
            metrics_host=env.text("METRICS_HOST", "127.0.0.1"),
            metrics_prometheus="prometheus" in exporters,
            metrics_otlp_endpoint=(env.optional_text("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") or otlp_endpoint)
            if "otlp" in exporters else None,
            metrics_export_interval_ms=env.integer("OTEL_METRIC_EXPORT_INTERVAL", 15_000, minimum=100),
            export_delay_ms=env.integer("OTEL_BSP_SCHEDULE_DELAY", 5_000, minimum=1),
            export_queue_size=env.integer("OTEL_BSP_MAX_QUEUE_SIZE", 2_048, minimum=1),
            export_batch_size=env.integer("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512, minimum=1),
            exemplar_filter=env.text("OTEL_METRICS_EXEMPLAR_FILTER", "always_off",
                                     choices=("always_off", "always_on", "trace_based")),
        )


@dataclass(frozen=True)
class ClientSettings:
    """How a service calls its downstreams."""

    default_timeout_s: float
    max_message_bytes: int
    retry_attempts: int
    tls_ca_file: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None

    @classmethod
    def from_env(cls, env: Env) -> ClientSettings:
        return cls(
            default_timeout_s=env.number("CLIENT_DEFAULT_TIMEOUT_S", 2.0, minimum=0.001, maximum=120.0),
            max_message_bytes=env.integer("MAX_MESSAGE_BYTES", 1 << 20, minimum=1024, maximum=64 << 20),
            retry_attempts=env.integer("CLIENT_RETRY_ATTEMPTS", 2, minimum=1, maximum=5),
            tls_ca_file=env.path("TLS_CA_FILE"),
            tls_cert_file=env.path("TLS_CLIENT_CERT_FILE"),
            tls_key_file=env.path("TLS_CLIENT_KEY_FILE"),
        )
