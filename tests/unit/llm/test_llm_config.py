"""Config: back end per role, defaults, fail-fast validation."""

from __future__ import annotations

import pytest

from alice.runtime.config import ConfigError
from llm_svc.config import Config


def test_defaults_are_embedded_with_one_model_per_role() -> None:
    config = Config.from_env({})
    assert {r: (s.backend, s.model) for r, s in config.roles.items()} == {
        "micro": ("embedded", "micro"), "planner": ("embedded", "planner")}
    assert (config.n_threads, config.queue_size, config.fault_delay_ms, config.omp_wait_policy) == (1, 4, 0,
                                                                                                     "passive")


def test_backend_per_role_and_remote_model_names() -> None:
    config = Config.from_env({"LLM_BACKEND": "embedded", "LLM_PLANNER_BACKEND": "ollama",
                              "LLM_PLANNER_MODEL": "qwen2.5-coder:7b", "LLM_BASE_URL": "http://gpu:11434"})
    assert config.roles["planner"].backend == "ollama" and config.roles["micro"].backend == "embedded"


@pytest.mark.parametrize(
    "env",
    [{"LLM_BACKEND": "vllm"}, {"LLM_MICRO_MODEL": "qwen:7b"}, {"LLM_BASE_URL": "gpu:11434"},
     {"LLM_QUEUE_SIZE": "-1"}, {"LLM_WARM_DATE": "tisdag"}, {"LLM_OMP_WAIT_POLICY": "spin"}],
    ids=["backend", "embedded-model", "url", "queue", "warm-date", "omp"],
)
def test_invalid_settings_fail_fast(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        Config.from_env(env)
