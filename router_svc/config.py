"""Configuration of the router service, read once from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from alice.runtime.breaker import BreakerConfig
from alice.runtime.config import ClientSettings, ConfigError, Env, ServerSettings, TelemetrySettings

SERVICE_NAME = "alice-router"
DEFAULT_PORT = 50051


@dataclass(frozen=True)
class Budgets:
    """Time budgets: the request default and the cap of each hop (a hop never exceeds what is left)."""

    request_s: float
    nlu_s: float
    cache_s: float
    micro_s: float
    planner_s: float
    tool_s: float


@dataclass(frozen=True)
class Slo:
    """Targets the monitoring view and `alice verify` compare against."""

    p95_ms: float
    success_rate: float
    tool_precision: float
    cache_hit_rate: float


@dataclass(frozen=True)
class Config:
    """Every setting of the router service."""

    server: ServerSettings
    telemetry: TelemetrySettings
    client: ClientSettings
    nlu_addr: str
    cache_addr: str
    llm_addr: str
    redis_url: str
    redis_timeout_s: float
    micro_max_share: float
    quota_window: int
    min_fast_confidence: float
    max_text_chars: int
    answer_version: str
    weather_base_url: str
    budgets: Budgets
    breaker: BreakerConfig
    llm_breaker: BreakerConfig
    slo: Slo
    stats_window: int

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Config:
        e = Env(env)
        budgets = Budgets(
            request_s=e.number("REQUEST_TIMEOUT_S", 8.0, minimum=0.05, maximum=120.0),
            nlu_s=e.number("NLU_TIMEOUT_S", 0.5, minimum=0.005, maximum=30.0),
            cache_s=e.number("CACHE_TIMEOUT_S", 0.1, minimum=0.005, maximum=30.0),
            micro_s=e.number("MICRO_TIMEOUT_S", 3.0, minimum=0.05, maximum=120.0),
            planner_s=e.number("PLANNER_TIMEOUT_S", 6.0, minimum=0.05, maximum=120.0),
            tool_s=e.number("TOOL_TIMEOUT_S", 1.0, minimum=0.01, maximum=60.0),
        )
        try:
            breaker = BreakerConfig(
                window_size=e.integer("BREAKER_WINDOW", 20, minimum=1),
                minimum_calls=e.integer("BREAKER_MIN_CALLS", 5, minimum=1),
                failure_rate_threshold=e.number("BREAKER_FAILURE_RATE", 0.5, minimum=0.01, maximum=1.0),
                slow_call_rate_threshold=e.number("BREAKER_SLOW_RATE", 0.8, minimum=0.01, maximum=1.0),
                slow_call_duration_s=e.number("BREAKER_SLOW_CALL_S", 0.25, minimum=0.001),
                wait_in_open_s=e.number("BREAKER_OPEN_S", 2.0, minimum=0.01),
                half_open_permitted_calls=e.integer("BREAKER_HALF_OPEN_CALLS", 2, minimum=1),
            )
            llm_breaker = BreakerConfig(
                window_size=e.integer("LLM_BREAKER_WINDOW", 10, minimum=1),
                minimum_calls=e.integer("LLM_BREAKER_MIN_CALLS", 3, minimum=1),
                failure_rate_threshold=e.number("LLM_BREAKER_FAILURE_RATE", 0.5, minimum=0.01, maximum=1.0),
                slow_call_rate_threshold=e.number("LLM_BREAKER_SLOW_RATE", 0.6, minimum=0.01, maximum=1.0),
                slow_call_duration_s=e.number("LLM_BREAKER_SLOW_CALL_S", 2.5, minimum=0.001),
                wait_in_open_s=e.number("LLM_BREAKER_OPEN_S", 5.0, minimum=0.01),
                half_open_permitted_calls=e.integer("LLM_BREAKER_HALF_OPEN_CALLS", 1, minimum=1),
            )
        except ValueError as error:
            raise ConfigError(f"breaker settings: {error}") from None
        return cls(
            server=ServerSettings.from_env(e, service_name=SERVICE_NAME, default_port=DEFAULT_PORT),
            telemetry=TelemetrySettings.from_env(e, service_name=SERVICE_NAME),
            client=ClientSettings.from_env(e),
            nlu_addr=e.address("NLU_ADDR", "127.0.0.1:50052"),
            cache_addr=e.address("CACHE_ADDR", "127.0.0.1:50053"),
            llm_addr=e.address("LLM_ADDR", "127.0.0.1:50054"),
            redis_url=e.text("REDIS_URL", "redis://127.0.0.1:6390/0"),
            redis_timeout_s=e.number("REDIS_TIMEOUT_S", 0.25, minimum=0.001, maximum=30.0),
            micro_max_share=e.number("MICRO_MAX_SHARE", 0.3, minimum=0.0, maximum=1.0),
            quota_window=e.integer("MICRO_QUOTA_WINDOW", 100, minimum=1, maximum=100_000),
            min_fast_confidence=e.number("MIN_FAST_CONFIDENCE", 0.0, minimum=0.0, maximum=1.0),
            max_text_chars=e.integer("MAX_TEXT_CHARS", 2000, minimum=1, maximum=100_000),
            answer_version=e.text("ANSWER_VERSION", "v1"),
            weather_base_url=e.text("WEATHER_BASE_URL", "https://api.open-meteo.com"),
            budgets=budgets,
            breaker=breaker,
            llm_breaker=llm_breaker,
            slo=Slo(
                p95_ms=e.number("SLO_P95_MS", 500.0, minimum=1.0),
                success_rate=e.number("SLO_SUCCESS_RATE", 0.99, minimum=0.0, maximum=1.0),
                tool_precision=e.number("SLO_TOOL_PRECISION", 0.90, minimum=0.0, maximum=1.0),
                cache_hit_rate=e.number("SLO_CACHE_HIT_RATE", 0.60, minimum=0.0, maximum=1.0),
            ),
            stats_window=e.integer("STATS_WINDOW", 10_000, minimum=10, maximum=1_000_000),
        )
