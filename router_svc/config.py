"""Configuration of the router service, read once from the environment."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from alice.runtime.auth import DEFAULT_JWT_ALGORITHMS, check_algorithms
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
class InvalidationRetry:
    """Background retries of a user's cache invalidation that failed after their data changed.

    `give_up_after_s` is the cache's longest TTL of a personal answer (memory.query, 1 h: the cache service's
    CACHE_TTL_MEMORY_QUERY_S); raise it with that setting. Once it has passed since the last failed
    invalidation, every entry that invalidation should have deleted has expired.
    """

    first_delay_s: float = 0.5
    """Back-off before the first retry; it doubles per failure (jittered) up to `max_delay_s`."""
    max_delay_s: float = 30.0
    give_up_after_s: float = 3600.0
    attempt_timeout_s: float = 1.0
    """Deadline of one retry (no request waits for it; a sweep of a user's index can take a few round trips)."""


AUTH_MODES = ("none", "api_key", "jwt", "both")


@dataclass(frozen=True)
class AuthSettings:
    """Who may call the router. Authentication is on unless AUTH_MODE=none is set explicitly."""

    mode: str
    api_keys_file: Path | None
    jwks_file: Path | None
    jwt_public_key_file: Path | None
    issuer: str
    audience: str
    leeway_s: float
    jwt_algorithms: tuple[str, ...]
    rate_per_s: float
    rate_burst: int

    @property
    def enabled(self) -> bool:
        return self.mode != "none"

    @classmethod
    def from_env(cls, e: Env) -> AuthSettings:
        mode = e.text("AUTH_MODE", "api_key", choices=AUTH_MODES)
        keys, jwks, pem = e.path("AUTH_API_KEYS_FILE"), e.path("AUTH_JWKS_FILE"), e.path("AUTH_JWT_PUBLIC_KEY_FILE")
        issuer, audience = e.text("AUTH_ISSUER", ""), e.text("AUTH_AUDIENCE", "")
        if mode in ("api_key", "both") and keys is None:
            raise ConfigError(f"AUTH_MODE={mode} needs AUTH_API_KEYS_FILE (a file of hashed keys; see "
                              "docs/security.md), or set AUTH_MODE=none explicitly to serve without authentication")
        if mode in ("jwt", "both"):
            if (jwks is None) == (pem is None):
                raise ConfigError(f"AUTH_MODE={mode} needs exactly one of AUTH_JWKS_FILE and AUTH_JWT_PUBLIC_KEY_FILE")
            if not issuer or not audience:
                raise ConfigError(f"AUTH_MODE={mode} needs AUTH_ISSUER and AUTH_AUDIENCE")
        for name, path in (("AUTH_API_KEYS_FILE", keys), ("AUTH_JWKS_FILE", jwks), ("AUTH_JWT_PUBLIC_KEY_FILE", pem)):
            if path is not None and mode != "none" and not path.is_file():
                raise ConfigError(f"{name}={path} does not exist")
        try:
            algorithms = check_algorithms(
                a.strip() for a in e.text("AUTH_JWT_ALGORITHMS", ",".join(DEFAULT_JWT_ALGORITHMS)).split(",")
                if a.strip())
        except ValueError as error:
            raise ConfigError(f"AUTH_JWT_ALGORITHMS: {error}") from None
        return cls(
            mode=mode, api_keys_file=keys, jwks_file=jwks, jwt_public_key_file=pem, issuer=issuer, audience=audience,
            leeway_s=e.number("AUTH_LEEWAY_S", 30.0, minimum=0.0, maximum=300.0),
            jwt_algorithms=algorithms,
            rate_per_s=e.number("RATE_LIMIT_PER_S", 5.0, minimum=0.01, maximum=100_000.0),
            rate_burst=e.integer("RATE_LIMIT_BURST", 20, minimum=1, maximum=1_000_000),
        )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


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
    clarify_min_confidence: float
    max_text_chars: int
    answer_version: str
    weather_base_url: str
    budgets: Budgets
    breaker: BreakerConfig
    llm_breaker: BreakerConfig
    slo: Slo
    stats_window: int
    auth: AuthSettings
    invalidation_retry: InvalidationRetry

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
                # NLU and cache answer in single-digit ms; 0.4 s only happens when they are sick or starved.
                slow_call_duration_s=e.number("BREAKER_SLOW_CALL_S", 0.4, minimum=0.001),
                wait_in_open_s=e.number("BREAKER_OPEN_S", 2.0, minimum=0.01),
                half_open_permitted_calls=e.integer("BREAKER_HALF_OPEN_CALLS", 2, minimum=1),
            )
            llm_breaker = BreakerConfig(
                window_size=e.integer("LLM_BREAKER_WINDOW", 10, minimum=1),
                minimum_calls=e.integer("LLM_BREAKER_MIN_CALLS", 3, minimum=1),
                failure_rate_threshold=e.number("LLM_BREAKER_FAILURE_RATE", 0.5, minimum=0.01, maximum=1.0),
                slow_call_rate_threshold=e.number("LLM_BREAKER_SLOW_RATE", 0.6, minimum=0.01, maximum=1.0),
                # Measured both ways at 5 req/s (docs/benchmarks.md): 2.5 s sheds load to the honest reply
                # earlier than 5 s and gave fewer requests past their deadline (3 vs 8) and more answers.
                slow_call_duration_s=e.number("LLM_BREAKER_SLOW_CALL_S", 2.5, minimum=0.001),
                wait_in_open_s=e.number("LLM_BREAKER_OPEN_S", 5.0, minimum=0.01),
                half_open_permitted_calls=e.integer("LLM_BREAKER_HALF_OPEN_CALLS", 1, minimum=1),
            )
        except ValueError as error:
            raise ConfigError(f"breaker settings: {error}") from None
        invalidation_retry = InvalidationRetry(
            first_delay_s=e.number("INVALIDATION_RETRY_FIRST_S", InvalidationRetry.first_delay_s,
                                   minimum=0.01, maximum=600.0),
            max_delay_s=e.number("INVALIDATION_RETRY_MAX_DELAY_S", InvalidationRetry.max_delay_s,
                                 minimum=0.01, maximum=3600.0),
            give_up_after_s=e.number("INVALIDATION_RETRY_GIVE_UP_S", InvalidationRetry.give_up_after_s,
                                     minimum=1.0, maximum=30 * 86400.0),
            attempt_timeout_s=e.number("INVALIDATION_RETRY_TIMEOUT_S", InvalidationRetry.attempt_timeout_s,
                                       minimum=0.01, maximum=60.0),
        )
        if invalidation_retry.max_delay_s < invalidation_retry.first_delay_s:
            raise ConfigError("INVALIDATION_RETRY_MAX_DELAY_S must be >= INVALIDATION_RETRY_FIRST_S")
        server = ServerSettings.from_env(e, service_name=SERVICE_NAME, default_port=DEFAULT_PORT)
        # Bearer tokens must not cross a network in clear text: off loopback, plaintext is an explicit choice
        # (e.g. behind a TLS-terminating ingress or a service mesh that encrypts pod traffic).
        if server.tls is None and not _is_loopback(server.host) and not e.flag("ALLOW_PLAINTEXT", False):
            raise ConfigError(f"GRPC_HOST={server.host} is not loopback: set TLS_CERT_FILE and TLS_KEY_FILE, or "
                              "ALLOW_PLAINTEXT=true when something in front of the router encrypts the traffic")
        return cls(
            server=server,
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
            clarify_min_confidence=e.number("CLARIFY_MIN_CONFIDENCE", 0.9, minimum=0.0, maximum=1.0),
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
            auth=AuthSettings.from_env(e),
            invalidation_retry=invalidation_retry,
        )
