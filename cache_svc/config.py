"""Configuration of the cache service, read once from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from alice.runtime.config import Env, ServerSettings, TelemetrySettings

SERVICE_NAME = "alice-cache"
DEFAULT_PORT = 50053


@dataclass(frozen=True)
class Config:
    """Every setting of the cache service."""

    server: ServerSettings
    telemetry: TelemetrySettings

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Config:
        e = Env(env)
        return cls(
            server=ServerSettings.from_env(e, service_name=SERVICE_NAME, default_port=DEFAULT_PORT),
            telemetry=TelemetrySettings.from_env(e, service_name=SERVICE_NAME),
        )
