"""Start a local Alice mesh (real Redis plus service processes on loopback) and stop it without orphans."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from alice.local.redis_server import RedisServer, free_port
from alice.local.weather_replay import WeatherReplayServer
from alice.runtime.auth import DevCredentials
from alice.tracestore.server import TraceStoreProcess, start_trace_store

SERVICES = ("nlu", "cache", "llm", "router")
"""Start order: the router last, since it dials the others."""
PREFERRED_PORTS = {"router": 50051, "nlu": 50052, "cache": 50053, "llm": 50054}
PREFERRED_METRICS_PORTS = {"router": 9464, "nlu": 9465, "cache": 9466, "llm": 9467}
"""Prometheus scrape endpoints (`/metrics`); METRICS_PORT in `env` overrides them (then the port is not known here)."""
LOCAL_RATE_LIMIT = {"RATE_LIMIT_PER_S": "200", "RATE_LIMIT_BURST": "400"}
"""Evaluations replay hundreds of requests as one user back to back; the production default would throttle them."""


def _port_or_free(preferred: int) -> int:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            return free_port()


def wait_serving(address: str, timeout_s: float, process: subprocess.Popen[bytes] | None = None) -> None:
    """Poll grpc.health.v1 until the server answers SERVING; fail early when the process died."""
    deadline = time.monotonic() + timeout_s
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"service at {address} exited with code {process.returncode} while starting")
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.1)
    raise RuntimeError(f"service at {address} was not SERVING within {timeout_s:.0f} s")


@dataclass
class ServiceProcess:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    metrics_port: int | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str | None:
        return None if self.metrics_port is None else f"http://127.0.0.1:{self.metrics_port}/metrics"


@dataclass
class LocalMesh:
    """Redis plus some or all services as child processes; use as a context manager.

    `env` adds settings to every service (e.g. LLM back end choices); `log_dir` receives one log per process.
    `trace_db` starts the local trace store (OTLP receiver + SQLite + web view) and points every service's
    OTLP exporter at it. `replay_weather` points the router's weather provider at a local server replaying
    recorded Open-Meteo responses (this machine is offline; answers are labelled as replayed).
    `auth_dir` holds the development credentials the router accepts (created when missing, see DevCredentials);
    None starts the router with AUTH_MODE=none, explicitly.
    """

    services: Iterable[str] = SERVICES
    env: Mapping[str, str] = field(default_factory=dict)
    log_dir: Path | None = None
    start_timeout_s: float = 600.0
    quiet: bool = False
    replay_weather: bool = False
    trace_db: Path | None = None
    trace_store: TraceStoreProcess | None = None
    auth_dir: Path | None = field(default_factory=lambda: Path(".alice"))
    credentials: DevCredentials | None = None
    redis: RedisServer | None = None
    weather: WeatherReplayServer | None = None
    processes: dict[str, ServiceProcess] = field(default_factory=dict)

    def __enter__(self) -> LocalMesh:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def address(self, service: str) -> str:
        return self.processes[service].address

    @property
    def redis_url(self) -> str:
        assert self.redis is not None
        return self.redis.url

    def _say(self, text: str) -> None:
        if not self.quiet:
            print(text, file=sys.stderr, flush=True)

    def start(self) -> None:
        wanted = [s for s in SERVICES if s in set(self.services)]
        self.redis = RedisServer().start()
        self._say(f"redis    {self.redis.url} (real redis-server)")
        extra: dict[str, str] = {}
        if self.trace_db is not None:
            self.trace_db.parent.mkdir(parents=True, exist_ok=True)
            log = open(self.log_dir / "tracestore.log", "ab") if self.log_dir else subprocess.DEVNULL
            self.trace_store = start_trace_store(self.trace_db, log=log)
            # Short batch delay: `alice ask` then `alice trace show` finds the spans at once.
            extra |= {"OTEL_EXPORTER_OTLP_ENDPOINT": self.trace_store.otlp_endpoint, "OTEL_BSP_SCHEDULE_DELAY": "200"}
            self._say(f"traces   {self.trace_store.web_url} (OTLP {self.trace_store.otlp_endpoint}, {self.trace_db})")
        if self.replay_weather:
            self.weather = WeatherReplayServer().start()
            extra["WEATHER_BASE_URL"] = self.weather.url
            self._say(f"weather  {self.weather.url} (replay of recorded Open-Meteo responses)")
        if "router" in wanted:
            if self.auth_dir is not None:
                self.credentials = DevCredentials.ensure(self.auth_dir)
                security = {**self.credentials.router_env(), **LOCAL_RATE_LIMIT}
            else:
                security = {"AUTH_MODE": "none"}
            # Kept in `env`, so a service restarted later (alice bench faults) gets the same settings.
            self.env = {**security, **self.env}
        ports = {name: _port_or_free(PREFERRED_PORTS[name]) for name in wanted}
        metrics_ports: dict[str, int | None] = {
            name: None if "METRICS_PORT" in self.env else _port_or_free(PREFERRED_METRICS_PORTS[name])
            for name in wanted}
        base = {
            **os.environ,
            **extra,
            "REDIS_URL": self.redis.url,
            **{f"{name.upper()}_ADDR": f"127.0.0.1:{port}" for name, port in ports.items()},
            **self.env,
        }
        for name in wanted:
            env = {**base, "GRPC_PORT": str(ports[name]), "GRPC_HOST": "127.0.0.1"}
            if metrics_ports[name] is not None:
                env["METRICS_PORT"] = str(metrics_ports[name])
            log = (
                open(self.log_dir / f"{name}.log", "ab")
                if self.log_dir is not None
                else subprocess.DEVNULL
            )
            process = subprocess.Popen(
                [sys.executable, "-m", f"{name}_svc"], env=env, stdout=log, stderr=log, start_new_session=True
            )
            self.processes[name] = ServiceProcess(name, ports[name], process, metrics_ports[name])
            self._say(f"{name:<8} starting on 127.0.0.1:{ports[name]} (pid {process.pid})")
            wait_serving(f"127.0.0.1:{ports[name]}", self.start_timeout_s, process)
            self._say(f"{name:<8} SERVING")

    def stop_service(self, name: str, sig: int = signal.SIGTERM, timeout_s: float = 15.0) -> None:
        """Stop one service (SIGTERM, then SIGKILL of its process group after the timeout)."""
        entry = self.processes.get(name)
        if entry is None or entry.process.poll() is not None:
            return
        entry.process.send_signal(sig)
        try:
            entry.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(entry.process.pid, signal.SIGKILL)
            entry.process.wait()

    def stop(self) -> None:
        for name in reversed(list(self.processes)):
            self.stop_service(name)
        if self.redis is not None:
            self.redis.close()
            self.redis = None
        if self.weather is not None:
            self.weather.close()
            self.weather = None
        if self.trace_store is not None:  # last, so the services' final span batches land in it
            self.trace_store.stop()
            self.trace_store = None
