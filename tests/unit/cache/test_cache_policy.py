"""TTL per intent, the never-cache list, user scoping, failure TTL per error class, config validation."""

from __future__ import annotations

import pytest

from alice.runtime.config import ConfigError
from alice.taxonomy import INTENTS, NEVER_CACHE
from cache_svc.config import Config
from cache_svc.policy import Policy


@pytest.mark.parametrize("intent", sorted(NEVER_CACHE))
def test_side_effects_and_time_are_never_cached(intent: str) -> None:
    assert not Policy().for_intent(intent).cacheable


@pytest.mark.parametrize(
    ("intent", "ttl"),
    [
        pytest.param("weather.lookup", 900, id="weather-short"),
        pytest.param("info.query", 86400, id="info-long"),
        pytest.param("calendar.list", 300, id="calendar-list"),
        pytest.param("memory.query", 3600, id="memory"),
    ],
)
def test_default_ttls(intent: str, ttl: int) -> None:
    assert Policy().for_intent(intent).ttl_s == ttl


def test_weather_is_shorter_than_general_knowledge() -> None:
    policy = Policy()
    weather, info = policy.for_intent("weather.lookup").ttl_s, policy.for_intent("info.query").ttl_s
    assert weather is not None and info is not None and weather < info


@pytest.mark.parametrize(
    ("intent", "scope"),
    [
        pytest.param("calendar.list", "u1", id="calendar-personal"),
        pytest.param("memory.query", "u1", id="memory-personal"),
        pytest.param("weather.lookup", None, id="weather-shared"),
        pytest.param("info.query", None, id="info-shared"),
    ],
)
def test_scoping(intent: str, scope: str | None) -> None:
    assert Policy().for_intent(intent).scope("u1") == scope


def test_every_intent_has_a_policy() -> None:
    policy = Policy()
    assert [policy.for_intent(i).intent for i in INTENTS] == list(INTENTS)


@pytest.mark.parametrize(
    ("code", "ttl"),
    [
        pytest.param(14, 5.0, id="unavailable"),
        pytest.param(4, 3.0, id="deadline"),
        pytest.param(8, 2.0, id="resource-exhausted"),
        pytest.param(3, 60.0, id="invalid-argument-longer"),
        pytest.param(0, None, id="ok-not-a-failure"),
        pytest.param(5, None, id="not-found-not-remembered"),
    ],
)
def test_failure_ttl_per_error_class(code: int, ttl: float | None) -> None:
    assert Policy().failure_ttl_s(code) == ttl


def test_a_never_cache_intent_cannot_get_a_ttl() -> None:
    with pytest.raises(ValueError, match="never be cached"):
        Policy({"timer.set": 60})


def test_ttls_come_from_the_environment() -> None:
    config = Config.from_env({"CACHE_TTL_WEATHER_LOOKUP_S": "60", "CACHE_FAILURE_TTL_UNAVAILABLE_S": "1.5"})
    assert config.policy().for_intent("weather.lookup").ttl_s == 60
    assert config.policy().failure_ttl_s(14) == 1.5


@pytest.mark.parametrize(
    "env",
    [
        pytest.param({"CACHE_TTL_WEATHER_LOOKUP_S": "0"}, id="zero-ttl"),
        pytest.param({"CACHE_TTL_TIME_NOW_S": "10"}, id="ttl-for-never-cache"),
        pytest.param({"REDIS_URL": "http://x"}, id="bad-url"),
        pytest.param({"CACHE_REDIS_TIMEOUT_S": "abc"}, id="bad-number"),
        pytest.param({"CACHE_THRESHOLDS_FILE": "/nonexistent.json"}, id="missing-thresholds"),
    ],
)
def test_bad_config_fails_fast(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        Config.from_env(env)


def test_fitted_thresholds_are_loaded() -> None:
    config = Config.from_env({})
    assert 0.5 < config.l2.threshold("info.query") < 1.0
    assert config.l2.threshold("weather.lookup") == config.l2.default_threshold
