"""gRPC server bootstrap: health, reflection, error mapping, tracing, TLS, graceful shutdown."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from alice.runtime.config import ServerSettings
from alice.runtime.errors import ServiceError
from alice.runtime.telemetry import Telemetry
from alice.runtime.tls import server_credentials
from alice.runtime.tracing import ServerTracing

log = logging.getLogger(__name__)

ServingStatus = health_pb2.HealthCheckResponse.ServingStatus


class ErrorMappingInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Turns a ServiceError raised by a handler into its gRPC status and message.

    With `require_deadline`, a call without a deadline is refused (INVALID_ARGUMENT) before its handler runs:
    internal services must never hold work for a caller that would wait forever. Health and reflection stay
    open to probes and grpcurl.
    """

    def __init__(self, require_deadline: bool = False) -> None:
        self._require_deadline = require_deadline

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method or ""
        require = self._require_deadline and not method.startswith(_OPEN_METHODS)
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                _wrap_unary(handler.unary_unary, require),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                _wrap_stream(handler.unary_stream, require),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler


def _abort_code(error: ServiceError) -> grpc.StatusCode:
    code: grpc.StatusCode = getattr(grpc.StatusCode, error.code, grpc.StatusCode.INTERNAL)
    return code


_OPEN_METHODS = ("/grpc.health.v1.Health/", "/grpc.reflection.")
NO_DEADLINE = "calls to this service need a deadline (set a timeout on the call)"


def _wrap_unary(behaviour: Callable[..., Any], require_deadline: bool) -> Callable[..., Any]:
    async def wrapped(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        if require_deadline and context.time_remaining() is None:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, NO_DEADLINE)
        try:
            return await behaviour(request, context)
        except ServiceError as error:
            await context.abort(_abort_code(error), error.message)

    return wrapped


def _wrap_stream(behaviour: Callable[..., Any], require_deadline: bool) -> Callable[..., Any]:
    async def wrapped(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
        if require_deadline and context.time_remaining() is None:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, NO_DEADLINE)
        try:
            async for item in behaviour(request, context):
                yield item
        except ServiceError as error:
            await context.abort(_abort_code(error), error.message)

    return wrapped


class ServiceHost:
    """One gRPC server with the standard health and reflection services and graceful shutdown.

    Usage (in a service's server.py): build dependencies, `host.add(...)` the servicer, `await host.start()`,
    warm up, `await host.set_serving()`, then `await host.run_until_stopped(close=...)`.

    With TLS settings the server certificate, key and client CA are re-read when their files change
    (`alice.runtime.tls`). With `health_port`, a second server listens in plaintext on that port with the same
    health servicer and nothing else (no reflection, no service RPCs), for probes that cannot speak TLS.
    """

    def __init__(
        self,
        settings: ServerSettings,
        telemetry: Telemetry,
        service_names: Sequence[str],
        interceptors: Sequence[grpc.aio.ServerInterceptor[Any, Any]] = (),
    ) -> None:
        self.settings = settings
        self._service_names = list(service_names)
        options = [
            ("grpc.max_receive_message_length", settings.max_message_bytes),
            ("grpc.max_send_message_length", settings.max_message_bytes),
            ("grpc.max_concurrent_streams", settings.max_concurrent_streams),
            ("grpc.so_reuseport", 0),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
        ]
        self.server = grpc.aio.server(
            interceptors=[ServerTracing(telemetry.provider),  # health probes are not traced
                          *interceptors,
                          ErrorMappingInterceptor(settings.require_deadline)],
            options=options,
        )
        self.health = HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            [*self._service_names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
             reflection.SERVICE_NAME],
            self.server,
        )
        self.health_server: grpc.aio.Server | None = None
        if settings.health_port is not None:
            # No interceptors: health calls are not traced, and health is exempt from the deadline rule.
            self.health_server = grpc.aio.server(options=[
                ("grpc.max_receive_message_length", 4096),
                ("grpc.max_concurrent_streams", 16),
                ("grpc.so_reuseport", 0),
            ])
            health_pb2_grpc.add_HealthServicer_to_server(self.health, self.health_server)
        self.port = 0
        self.health_port = 0
        self._metrics_port = telemetry.metrics_port
        self._stop = asyncio.Event()

    async def start(self, announce: bool = True) -> int:
        """Bind and start serving; health says NOT_SERVING until `set_serving`. Returns the bound port.

        With `announce` the bound ports go to the port file at once (see `announce`).
        """
        address = f"{self.settings.host}:{self.settings.port}"
        tls = self.settings.tls
        if tls is None:
            self.port = self.server.add_insecure_port(address)
        else:
            self.port = self.server.add_secure_port(address, server_credentials(tls))
        if self.health_server is not None:
            self.health_port = self.health_server.add_insecure_port(
                f"{self.settings.host}:{self.settings.health_port}")
        await self._set_all(ServingStatus.NOT_SERVING)
        await self.server.start()
        log.info("listening on %s:%d (%s)", self.settings.host, self.port,
                 "plaintext" if tls is None else "mutual TLS" if tls.client_ca_file else "TLS")
        if self.health_server is not None:
            await self.health_server.start()
            log.info("health only, plaintext, on %s:%d", self.settings.host, self.health_port)
        if announce:
            self.announce()
        return self.port

    def announce(self, **extra_ports: int | None) -> None:
        """Write the ports this process holds to `settings.port_file` (ALICE_PORT_FILE), when one is set.

        JSON `{"pid": ..., "ports": {"grpc": ..., "health": ..., "metrics": ..., **extra_ports}}` (null: no such
        listener), replaced atomically so a reader never sees half a file. A parent that asked for port 0, or
        for a port someone else may have taken, learns from it which port is really this process's. A host
        with more listeners (the trace store's HTTP ones) starts with `announce=False` and calls this itself.
        """
        path = self.settings.port_file
        if path is None:
            return
        ports = {"grpc": self.port, "health": self.health_port or None, "metrics": self._metrics_port or None,
                 **extra_ports}
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps({"pid": os.getpid(), "ports": ports}))
        os.replace(temporary, path)

    async def set_serving(self, serving: bool = True) -> None:
        await self._set_all(ServingStatus.SERVING if serving else ServingStatus.NOT_SERVING)

    async def _set_all(self, status: int) -> None:
        for name in ("", *self._service_names):
            await self.health.set(name, status)

    def request_stop(self) -> None:
        """Ask `run_until_stopped` to shut down (what SIGTERM and SIGINT do)."""
        self._stop.set()

    async def run_until_stopped(self, close: Callable[[], Awaitable[None]] | None = None) -> None:
        """Serve until SIGTERM/SIGINT or `request_stop`, then drain and close resources."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, self.request_stop)
            except (NotImplementedError, RuntimeError):  # not the main thread (tests)
                pass
        await self._stop.wait()
        await self.shutdown(close)

    async def shutdown(self, close: Callable[[], Awaitable[None]] | None = None) -> None:
        """NOT_SERVING, keep serving for the drain delay, stop accepting and finish in-flight calls, close."""
        log.info("shutting down: not serving, draining for up to %.1f s", self.settings.grace_s)
        await self._set_all(ServingStatus.NOT_SERVING)
        # Load balancers and probes see NOT_SERVING before new calls are refused.
        await asyncio.sleep(self.settings.drain_delay_s)
        try:
            await self.server.stop(self.settings.grace_s)
        finally:
            # The health port answers NOT_SERVING until the main server has finished its calls, then goes too.
            if self.health_server is not None:
                await self.health_server.stop(None)
        if close is not None:
            await close()
        log.info("stopped")
