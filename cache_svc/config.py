"""Configuration of the cache service, read once from the environment and validated at start."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from alice.runtime.config import ConfigError, Env, ServerSettings, TelemetrySettings
from alice.taxonomy import NEVER_CACHE
from cache_svc.policy import CODE_NAMES, DEFAULT_FAILURE_TTLS_S, DEFAULT_TTLS_S, TEXT_DECIDES, Policy

SERVICE_NAME = "alice-cache"
DEFAULT_PORT = 50053
DEFAULT_THRESHOLDS = Path(__file__).with_name("thresholds.json")


@dataclass(frozen=True)
class RedisSettings:
    """How the cache talks to Redis: short timeouts, so a dead Redis costs a lookup tens of milliseconds."""

    url: str = "redis://127.0.0.1:6390/0"
    socket_timeout_s: float = 0.05
    connect_timeout_s: float = 0.05
    max_connections: int = 64
    backoff_min_s: float = 0.25
    backoff_max_s: float = 5.0
    health_interval_s: float = 1.0


@dataclass(frozen=True)
class L2Settings:
    """Semantic tier: fitted per-intent cosine thresholds and the guard settings fitted with them."""

    thresholds: Mapping[str, float] = field(default_factory=dict)
    default_threshold: float = 0.95
    allow_extra_words: int = 1
    candidates: int = 5
    embedding_dim: int = 384

    def threshold(self, intent: str) -> float:
        return self.thresholds.get(intent, self.default_threshold)


@dataclass(frozen=True)
class Limits:
    """Input bounds; larger values are INVALID_ARGUMENT."""

    max_answer_bytes: int = 16 * 1024
    max_text_chars: int = 2000
    max_field_chars: int = 256
    latency_window: int = 10_000


def load_l2_settings(path: Path, *, candidates: int, embedding_dim: int) -> L2Settings:
    """Read the fitted thresholds file (scripts/fit_cache_thresholds.py writes it)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ConfigError(f"cannot read L2 thresholds {path}: {error}") from None
    try:
        thresholds = {str(k): float(v["threshold"]) for k, v in data["intents"].items()}
        default = float(data["default_threshold"])
        allow_extra = int(data["allow_extra_words"])
    except (KeyError, TypeError, ValueError) as error:
        raise ConfigError(f"L2 thresholds {path} are malformed: {error!r}") from None
    unknown = set(thresholds) - TEXT_DECIDES
    if unknown:
        raise ConfigError(f"L2 thresholds {path} name intents without L2: {', '.join(sorted(unknown))}")
    for name, value in [*thresholds.items(), ("default", default)]:
        if not -1.0 < value <= 1.0:
            raise ConfigError(f"L2 threshold {name}={value} is not a cosine in (-1, 1]")
    if not 0 <= allow_extra <= 3:
        raise ConfigError(f"allow_extra_words={allow_extra} must be 0..3")
    return L2Settings(thresholds, default, allow_extra, candidates, embedding_dim)


def _env_name(intent: str) -> str:
    return intent.upper().replace(".", "_")


@dataclass(frozen=True)
class Config:
    """Every setting of the cache service."""

    server: ServerSettings
    telemetry: TelemetrySettings
    redis: RedisSettings
    l2: L2Settings
    limits: Limits
    ttls_s: Mapping[str, int]
    failure_ttls_s: Mapping[str, float]

    def policy(self) -> Policy:
        return Policy(self.ttls_s, self.failure_ttls_s)

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Config:
        e = Env(env)
        redis = RedisSettings(
            url=e.text("REDIS_URL", RedisSettings.url),
            socket_timeout_s=e.number("CACHE_REDIS_TIMEOUT_S", RedisSettings.socket_timeout_s,
                                      minimum=0.001, maximum=10.0),
            connect_timeout_s=e.number("CACHE_REDIS_CONNECT_TIMEOUT_S", RedisSettings.connect_timeout_s,
                                       minimum=0.001, maximum=10.0),
            max_connections=e.integer("CACHE_REDIS_MAX_CONNECTIONS", RedisSettings.max_connections,
                                      minimum=1, maximum=10_000),
            backoff_min_s=e.number("CACHE_REDIS_BACKOFF_MIN_S", RedisSettings.backoff_min_s,
                                   minimum=0.01, maximum=60.0),
            backoff_max_s=e.number("CACHE_REDIS_BACKOFF_MAX_S", RedisSettings.backoff_max_s,
                                   minimum=0.01, maximum=600.0),
            health_interval_s=e.number("CACHE_REDIS_HEALTH_INTERVAL_S", RedisSettings.health_interval_s,
                                       minimum=0.05, maximum=60.0),
        )
        if not redis.url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError(f"REDIS_URL={redis.url!r} is not a redis://, rediss:// or unix:// URL")
        if redis.backoff_max_s < redis.backoff_min_s:
            raise ConfigError("CACHE_REDIS_BACKOFF_MAX_S must be >= CACHE_REDIS_BACKOFF_MIN_S")
        l2 = load_l2_settings(
            e.path("CACHE_THRESHOLDS_FILE", str(DEFAULT_THRESHOLDS)) or DEFAULT_THRESHOLDS,
            candidates=e.integer("CACHE_L2_CANDIDATES", 5, minimum=1, maximum=100),
            embedding_dim=e.integer("CACHE_EMBEDDING_DIM", 384, minimum=8, maximum=8192),
        )
        limits = Limits(
            max_answer_bytes=e.integer("CACHE_MAX_ANSWER_BYTES", Limits.max_answer_bytes, minimum=256,
                                       maximum=1 << 20),
            max_text_chars=e.integer("CACHE_MAX_TEXT_CHARS", Limits.max_text_chars, minimum=16, maximum=100_000),
        )
        ttls = {
            intent: e.integer(f"CACHE_TTL_{_env_name(intent)}_S", default, minimum=1, maximum=30 * 86400)
            for intent, default in DEFAULT_TTLS_S.items()
        }
        for intent in NEVER_CACHE:
            if e.optional_text(f"CACHE_TTL_{_env_name(intent)}_S"):
                raise ConfigError(f"{intent} is never cached (side effects or always changing); remove its TTL")
        failure_ttls = {
            name: e.number(f"CACHE_FAILURE_TTL_{name}_S", default, minimum=0.1, maximum=3600.0)
            for name, default in DEFAULT_FAILURE_TTLS_S.items()
        }
        for name in set(CODE_NAMES.values()) - set(failure_ttls):
            value = e.optional_text(f"CACHE_FAILURE_TTL_{name}_S")
            if value:
                failure_ttls[name] = e.number(f"CACHE_FAILURE_TTL_{name}_S", 1.0, minimum=0.1, maximum=3600.0)
        return cls(
            server=ServerSettings.from_env(e, service_name=SERVICE_NAME, default_port=DEFAULT_PORT),
            telemetry=TelemetrySettings.from_env(e, service_name=SERVICE_NAME),
            redis=redis,
            l2=l2,
            limits=limits,
            ttls_s=ttls,
            failure_ttls_s=failure_ttls,
        )
