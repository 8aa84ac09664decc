"""Configuration of the nlu service, read once from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from alice.runtime.config import Env, ServerSettings, TelemetrySettings

SERVICE_NAME = "alice-nlu"
DEFAULT_PORT = 50052


@dataclass(frozen=True)
class Config:
    """Every setting of the nlu service."""

    server: ServerSettings
    telemetry: TelemetrySettings

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Config:
        e = Env(env)
        return cls(
            server=ServerSettings.from_env(e, service_name=SERVICE_NAME, default_port=DEFAULT_PORT),
            telemetry=TelemetrySettings.from_env(e, service_name=SERVICE_NAME),
        )
