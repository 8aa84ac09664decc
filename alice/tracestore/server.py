"""Wiring of the trace store (receiver, OTLP/HTTP, web view), and starting it as a child process."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from alice.local.ports import preferred_or_any, start_reporting_ports, wait_serving
from alice.runtime.config import ServerSettings, TelemetrySettings
from alice.runtime.server import ServiceHost
from alice.runtime.telemetry import Telemetry, setup_telemetry
from alice.tracestore.config import DEFAULT_OTLP_GRPC_PORT, DEFAULT_OTLP_HTTP_PORT, DEFAULT_WEB_PORT, TraceStoreConfig
from alice.tracestore.receiver import SERVICE_NAME, OtlpHttpServer, TraceReceiver, add_to_server
from alice.tracestore.store import TraceStore
from alice.tracestore.web import WebServer


@dataclass
class RunningTraceStore:
    """A started trace store in this process; `close` stops everything it opened."""

    host: ServiceHost
    store: TraceStore
    telemetry: Telemetry
    http: OtlpHttpServer | None
    web: WebServer | None

    @property
    def otlp_endpoint(self) -> str:
        """What services put in OTEL_EXPORTER_OTLP_ENDPOINT."""
        return f"http://{self.host.settings.host}:{self.host.port}"

    @property
    def web_url(self) -> str | None:
        return self.web.url if self.web is not None else None

    async def close(self) -> None:
        await self.host.shutdown(self._close_rest)

    async def _close_rest(self) -> None:
        for server in (self.http, self.web):
            if server is not None:
                await asyncio.to_thread(server.close)
        self.store.close()
        self.telemetry.shutdown()


async def start(config: TraceStoreConfig) -> RunningTraceStore:
    """Open the store, start the OTLP/gRPC receiver (with health), OTLP/HTTP and the web view; SERVING at the end."""
    store = TraceStore(config.db_path, max_spans=config.max_spans, max_age_s=config.max_age_s)
    # The store does not trace itself: its own spans would feed back into it.
    telemetry = setup_telemetry(TelemetrySettings(service_name="alice-tracestore", otlp_endpoint=None,
                                                  sample_ratio=0.0, disabled=True, record_text=False,
                                                  metrics_enabled=False))
    settings = ServerSettings(service_name="alice-tracestore", host=config.host, port=config.otlp_grpc_port,
                              grace_s=2.0, drain_delay_s=0.0, max_message_bytes=config.max_message_bytes,
                              max_concurrent_streams=100, log_level=config.log_level, log_format=config.log_format,
                              port_file=config.port_file)
    host = ServiceHost(settings, telemetry, [SERVICE_NAME])
    add_to_server(TraceReceiver(store), host.server)
    http = web = None
    try:
        await host.start(announce=False)
        if config.otlp_http_port >= 0:
            http = OtlpHttpServer(config.host, config.otlp_http_port, store, config.max_message_bytes).start()
        if config.web_port >= 0:
            web = WebServer(config.host, config.web_port, config.db_path).start()
        host.announce(otlp_http=http.port if http is not None else None, web=web.port if web is not None else None)
    except BaseException:
        for server in (http, web):
            if server is not None:
                server.close()
        await host.server.stop(0)
        store.close()
        telemetry.shutdown()
        raise
    await host.set_serving()
    return RunningTraceStore(host, store, telemetry, http, web)


async def serve(config: TraceStoreConfig) -> None:
    """Run until SIGTERM/SIGINT (what `python -m alice.tracestore` does)."""
    running = await start(config)
    print(f"trace store {config.db_path}: OTLP/gRPC {running.otlp_endpoint}"
          + (f", OTLP/HTTP http://{config.host}:{running.http.port}/v1/traces" if running.http else "")
          + (f", web {running.web_url}" if running.web else ""), file=sys.stderr, flush=True)
    await running.host.run_until_stopped(running._close_rest)


# -- as a child process (what `alice up` uses) ----------------------------------------------------------


@dataclass
class TraceStoreProcess:
    """`python -m alice.tracestore` running as a child process; `stop` ends it."""

    process: subprocess.Popen[bytes]
    db_path: Path
    otlp_endpoint: str
    """For OTEL_EXPORTER_OTLP_ENDPOINT (OTLP/gRPC)."""
    otlp_http_endpoint: str | None
    web_url: str | None

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def __enter__(self) -> TraceStoreProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_trace_store(
    db_path: Path | str,
    *,
    otlp_grpc_port: int = DEFAULT_OTLP_GRPC_PORT,
    otlp_http_port: int = DEFAULT_OTLP_HTTP_PORT,
    web_port: int = DEFAULT_WEB_PORT,
    max_spans: int | None = None,
    max_age_s: float | None = None,
    log: IO[bytes] | int = subprocess.DEVNULL,
    env: Mapping[str, str] | None = None,
    timeout_s: float = 30.0,
) -> TraceStoreProcess:
    """Start the trace store as a child process and wait until its receiver answers SERVING.

    A preferred port that is taken is replaced by a free one (another `alice up` may be running); -1 turns
    the OTLP/HTTP or web listener off. Returns the endpoints the child reports having bound (its port file),
    so a port another process took in between is never mistaken for the store's.
    """
    requested = {
        "TRACESTORE_OTLP_GRPC_PORT": preferred_or_any(otlp_grpc_port),
        "TRACESTORE_OTLP_HTTP_PORT": preferred_or_any(otlp_http_port) if otlp_http_port >= 0 else -1,
        "TRACESTORE_WEB_PORT": preferred_or_any(web_port) if web_port >= 0 else -1,
    }
    child_env = {
        **(os.environ if env is None else env),
        "TRACESTORE_DB": str(db_path),
        "TRACESTORE_HOST": "127.0.0.1",
    }
    if max_spans is not None:
        child_env["TRACESTORE_MAX_SPANS"] = str(max_spans)
    if max_age_s is not None:
        child_env["TRACESTORE_MAX_AGE_S"] = str(max_age_s)
    with tempfile.TemporaryDirectory(prefix="alice-tracestore-") as folder:
        process, ports = start_reporting_ports(
            [sys.executable, "-m", "alice.tracestore"], child_env, requested, port_file=Path(folder) / "ports.json",
            stdout=log, timeout_s=timeout_s, what="trace store", fixed=False)
    grpc_port, http_port, web = ports["grpc"], ports.get("otlp_http"), ports.get("web")
    handle = TraceStoreProcess(
        process, Path(db_path), f"http://127.0.0.1:{grpc_port}",
        f"http://127.0.0.1:{http_port}/v1/traces" if http_port is not None else None,
        f"http://127.0.0.1:{web}/" if web is not None else None,
    )
    try:
        wait_serving(f"127.0.0.1:{grpc_port}", timeout_s, process, service=SERVICE_NAME)
    except BaseException:
        handle.stop()
        raise
    return handle
