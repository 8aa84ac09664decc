"""Settings of the local trace store, read once from the environment."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from alice.runtime.config import PORT_FILE_ENV, ConfigError, Env

DEFAULT_DB = Path(".alice") / "traces.db"
DEFAULT_OTLP_GRPC_PORT = 4317
DEFAULT_OTLP_HTTP_PORT = 4318
DEFAULT_WEB_PORT = 16686


@dataclass(frozen=True)
class TraceStoreConfig:
    """Where spans are kept, how many and for how long, and the loopback ports the store listens on.

    A port of 0 picks a free port; a port of -1 (HTTP and web only) turns that listener off.
    """

    db_path: Path = DEFAULT_DB
    max_spans: int = 200_000
    max_age_s: float = 86_400.0
    host: str = "127.0.0.1"
    otlp_grpc_port: int = DEFAULT_OTLP_GRPC_PORT
    otlp_http_port: int = DEFAULT_OTLP_HTTP_PORT
    web_port: int = DEFAULT_WEB_PORT
    max_message_bytes: int = 16 << 20
    log_level: str = "INFO"
    log_format: str = "text"
    port_file: Path | None = None
    """ALICE_PORT_FILE: where the store reports the ports it bound (see `ServiceHost.announce`)."""
    nice: int = 10
    """TRACESTORE_NICE: how much `python -m alice.tracestore` lowers its CPU priority (0-19). The store shares
    the machine with the services it observes; its writing should wait for their requests, not compete."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TraceStoreConfig:
        read = Env(os.environ if env is None else env)
        host = read.text("TRACESTORE_HOST", "127.0.0.1")
        if not _is_loopback(host):
            raise ConfigError(f"TRACESTORE_HOST={host!r} is not a loopback address: the trace store is local only")
        db_path = read.path("TRACESTORE_DB", str(DEFAULT_DB))
        assert db_path is not None
        return cls(
            db_path=db_path,
            max_spans=read.integer("TRACESTORE_MAX_SPANS", 200_000, minimum=100, maximum=100_000_000),
            max_age_s=read.number("TRACESTORE_MAX_AGE_S", 86_400.0, minimum=1.0, maximum=365 * 86_400.0),
            host=host,
            otlp_grpc_port=read.integer("TRACESTORE_OTLP_GRPC_PORT", DEFAULT_OTLP_GRPC_PORT, minimum=0, maximum=65535),
            otlp_http_port=read.integer("TRACESTORE_OTLP_HTTP_PORT", DEFAULT_OTLP_HTTP_PORT, minimum=-1,
                                        maximum=65535),
            web_port=read.integer("TRACESTORE_WEB_PORT", DEFAULT_WEB_PORT, minimum=-1, maximum=65535),
            max_message_bytes=read.integer("TRACESTORE_MAX_MESSAGE_BYTES", 16 << 20, minimum=1 << 16,
                                           maximum=256 << 20),
            log_level=read.text("LOG_LEVEL", "INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR")),
            log_format=read.text("LOG_FORMAT", "text", choices=("json", "text")),
            port_file=read.path(PORT_FILE_ENV),
            nice=read.integer("TRACESTORE_NICE", 10, minimum=0, maximum=19),
        )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
