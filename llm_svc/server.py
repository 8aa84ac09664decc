"""Wiring of the llm service: build back ends, the server, health; warm up; serve until stopped."""

from __future__ import annotations

import datetime as dt
import logging
import os
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx

from alice.llm.v1 import llm_service_pb2, llm_service_pb2_grpc
from alice.runtime.server import ServiceHost
from alice.runtime.telemetry import Telemetry, setup_logging, setup_telemetry
from llm_svc.backends import Backend
from llm_svc.backends.embedded import EmbeddedLlama, EmbeddedSettings
from llm_svc.backends.remote import OllamaBackend, OpenAICompatibleBackend
from llm_svc.config import Config
from llm_svc.engine import Limits, LlmEngine
from llm_svc.fault import FaultDelay
from llm_svc.models import MODELS, ModelMissingError, require_model
from llm_svc.scheduler import QueueMetrics, Scheduler
from llm_svc.service import DEFAULT_TIME_ZONE, LlmServicer

SERVICE = llm_service_pb2.DESCRIPTOR.services_by_name["LlmService"].full_name
log = logging.getLogger(__name__)


def build_backends(config: Config, client: httpx.AsyncClient | None,
                   queue_metrics: QueueMetrics | None = None) -> dict[str, Backend]:
    """One back end per role; roles naming the same model share one instance (one model in memory)."""
    if any(r.backend == "embedded" for r in config.roles.values()):
        # Read by the OpenMP runtime when llama.cpp is first imported (see docs/llm.md for the measurement).
        os.environ["OMP_WAIT_POLICY"] = config.omp_wait_policy
    shared: dict[tuple[str, str], Backend] = {}
    backends: dict[str, Backend] = {}
    for role, settings in config.roles.items():
        key = (settings.backend, settings.model)
        if key not in shared:
            shared[key] = _backend(config, settings.backend, settings.model, client, queue_metrics)
        backends[role] = shared[key]
    return backends


def _backend(config: Config, kind: str, model: str, client: httpx.AsyncClient | None,
             queue_metrics: QueueMetrics | None) -> Backend:
    if kind == "embedded":
        path = require_model(MODELS[model], config.model_dir) if model in MODELS else _gguf(model)
        return EmbeddedLlama(
            path,
            name=path.stem,
            settings=EmbeddedSettings(config.n_threads, config.n_threads_batch, config.n_ctx),
            scheduler=Scheduler(path.stem, concurrency=1, max_queue=config.queue_size, instruments=queue_metrics),
        )
    assert client is not None
    scheduler = Scheduler(model, concurrency=config.remote_concurrency, max_queue=config.queue_size,
                          instruments=queue_metrics)
    if kind == "ollama":
        return OllamaBackend(client, config.base_url, model, scheduler=scheduler, timeout_s=config.remote_timeout_s)
    return OpenAICompatibleBackend(
        client, config.base_url, model, scheduler=scheduler, timeout_s=config.remote_timeout_s,
        response_format="json_object" if config.openai_response_format == "json_object" else "json_schema",
        api_key=config.api_key,
    )


def _gguf(model: str) -> Path:
    path = Path(model).expanduser()
    if not path.is_file():
        raise ModelMissingError(f"GGUF file {path} not found")
    return path


class LlmServer:
    """The LLM host: `start` binds (health NOT_SERVING), `load` loads and warms the models, then SERVING."""

    def __init__(self, config: Config, telemetry: Telemetry, client: httpx.AsyncClient | None = None) -> None:
        self.config = config
        self.telemetry = telemetry
        needs_http = any(r.backend != "embedded" for r in config.roles.values())
        self._own_client = client is None and needs_http
        self._client = httpx.AsyncClient() if self._own_client else client
        self.backends = build_backends(config, self._client, QueueMetrics.create(telemetry.meter))
        limits = Limits(config.max_text_chars, config.tool_max_tokens, config.answer_max_tokens,
                        config.max_tokens_limit, FaultDelay(config.fault_delay_ms, config.fault_delay_file))
        self.engine = LlmEngine(self.backends, telemetry, limits)
        self.host = ServiceHost(config.server, telemetry, [SERVICE])
        llm_service_pb2_grpc.add_LlmServiceServicer_to_server(LlmServicer(self.engine), self.host.server)
        self._unique = list({id(b): b for b in self.backends.values()}.values())

    @property
    def port(self) -> int:
        return self.host.port

    async def start(self) -> int:
        return await self.host.start()

    async def load(self) -> None:
        """Load every model (or check every remote server), warm the prompt prefixes, then report SERVING."""
        for backend in self._unique:
            await backend.start()
        warm_day = (dt.date.fromisoformat(self.config.warm_date) if self.config.warm_date
                    else dt.datetime.now(ZoneInfo(DEFAULT_TIME_ZONE)).date())
        await self.engine.warm(warm_day)
        await self.host.set_serving()

    async def close(self) -> None:
        for backend in self._unique:
            await backend.aclose()
        if self._own_client and self._client is not None:
            await self._client.aclose()

    async def stop(self) -> None:
        """NOT_SERVING, drain, stop, close the back ends."""
        await self.host.shutdown(self.close)


async def build(config: Config, telemetry: Telemetry, client: httpx.AsyncClient | None = None) -> LlmServer:
    """A started, loaded and SERVING LLM server."""
    server = LlmServer(config, telemetry, client)
    await server.start()
    try:
        await server.load()
    except BaseException:
        await server.stop()
        raise
    return server


async def serve(config: Config) -> None:
    setup_logging(config.server.service_name, config.server.log_level, config.server.log_format)
    telemetry = setup_telemetry(config.telemetry)
    server = await build(config, telemetry)

    async def close() -> None:
        await server.close()
        telemetry.shutdown()

    await server.host.run_until_stopped(close)
