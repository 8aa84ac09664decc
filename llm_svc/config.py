"""Configuration of the llm service, read once from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from alice.runtime.config import ConfigError, Env, ServerSettings, TelemetrySettings
from llm_svc.models import DEFAULT_MODEL_DIR, MODELS

SERVICE_NAME = "alice-llm"
DEFAULT_PORT = 50054
BACKENDS = ("embedded", "ollama", "openai")
ROLES = ("micro", "planner")


@dataclass(frozen=True)
class RoleSettings:
    """Which back end and model serve one role.

    For `embedded`, `model` is a key of llm_svc.models.MODELS ("micro", "planner") or a path to a .gguf file;
    for `ollama` / `openai` it is the server's model name.
    """

    backend: str
    model: str


@dataclass(frozen=True)
class Config:
    """Every setting of the llm service."""

    server: ServerSettings
    telemetry: TelemetrySettings
    roles: dict[str, RoleSettings]
    model_dir: Path
    base_url: str
    api_key: str | None
    openai_response_format: str
    remote_timeout_s: float
    remote_concurrency: int
    n_threads: int
    n_threads_batch: int
    n_ctx: int
    omp_wait_policy: str
    queue_size: int
    tool_max_tokens: int
    answer_max_tokens: int
    max_tokens_limit: int
    max_text_chars: int
    fault_delay_ms: int
    fault_delay_file: Path | None
    """LLM_FAULT_DELAY_FILE: a file of ms re-read when it changes (llm_svc/fault.py); fault tests only."""
    warm_date: str | None

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Config:
        e = Env(env)
        backend = e.text("LLM_BACKEND", "embedded", choices=BACKENDS)
        roles = {
            role: RoleSettings(
                backend=e.text(f"LLM_{role.upper()}_BACKEND", backend, choices=BACKENDS),
                model=e.text(f"LLM_{role.upper()}_MODEL", role),
            )
            for role in ROLES
        }
        for role, settings in roles.items():
            if settings.backend == "embedded" and settings.model not in MODELS and not settings.model.endswith(".gguf"):
                raise ConfigError(f"LLM_{role.upper()}_MODEL={settings.model!r}: use one of "
                                  f"{', '.join(MODELS)} or a path to a .gguf file for the embedded back end")
        base_url = e.text("LLM_BASE_URL", "http://127.0.0.1:11434")
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"LLM_BASE_URL={base_url!r} must start with http:// or https://")
        warm_date = e.optional_text("LLM_WARM_DATE")
        config = cls(
            server=ServerSettings.from_env(e, service_name=SERVICE_NAME, default_port=DEFAULT_PORT),
            telemetry=TelemetrySettings.from_env(e, service_name=SERVICE_NAME),
            roles=roles,
            model_dir=e.path("LLM_MODEL_DIR", DEFAULT_MODEL_DIR) or Path(DEFAULT_MODEL_DIR).expanduser(),
            base_url=base_url,
            api_key=e.optional_text("LLM_API_KEY"),
            openai_response_format=e.text("LLM_OPENAI_RESPONSE_FORMAT", "json_schema",
                                          choices=("json_schema", "json_object")),
            remote_timeout_s=e.number("LLM_REMOTE_TIMEOUT_S", 30.0, minimum=0.1, maximum=600.0),
            remote_concurrency=e.integer("LLM_REMOTE_CONCURRENCY", 4, minimum=1, maximum=256),
            n_threads=e.integer("LLM_THREADS", 1, minimum=1, maximum=64),
            n_threads_batch=e.integer("LLM_BATCH_THREADS", 2, minimum=1, maximum=64),
            n_ctx=e.integer("LLM_CTX", 2048, minimum=512, maximum=32768),
            omp_wait_policy=e.text("LLM_OMP_WAIT_POLICY", "passive", choices=("passive", "active")),
            queue_size=e.integer("LLM_QUEUE_SIZE", 4, minimum=0, maximum=1000),
            tool_max_tokens=e.integer("LLM_TOOL_MAX_TOKENS", 64, minimum=16, maximum=512),
            answer_max_tokens=e.integer("LLM_ANSWER_MAX_TOKENS", 96, minimum=8, maximum=1024),
            max_tokens_limit=e.integer("LLM_MAX_TOKENS_LIMIT", 512, minimum=16, maximum=4096),
            max_text_chars=e.integer("LLM_MAX_TEXT_CHARS", 2000, minimum=1, maximum=100_000),
            fault_delay_ms=e.integer("LLM_FAULT_DELAY_MS", 0, minimum=0, maximum=600_000),
            fault_delay_file=e.path("LLM_FAULT_DELAY_FILE"),
            warm_date=warm_date,
        )
        if warm_date is not None:
            import datetime as dt

            try:
                dt.date.fromisoformat(warm_date)
            except ValueError:
                raise ConfigError(f"LLM_WARM_DATE={warm_date!r} is not YYYY-MM-DD") from None
        return config
