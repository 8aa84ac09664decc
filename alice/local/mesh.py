"""Start a local Alice mesh (real Redis plus service processes on loopback) and stop it without orphans."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from alice.local.ports import preferred_or_any, start_reporting_ports
from alice.local.ports import wait_serving as wait_serving  # re-exported: callers import it from here
from alice.local.redis_server import RedisServer
from alice.local.weather_replay import WeatherReplayServer
from alice.runtime.auth import DevCredentials
from alice.tracestore.server import TraceStoreProcess, start_trace_store

SERVICES = ("nlu", "cache", "llm", "router")
"""Start order: the router last, since it dials the others (their reported addresses go into its *_ADDR)."""
PREFERRED_PORTS = {"router": 50051, "nlu": 50052, "cache": 50053, "llm": 50054}
"""Asked for when free, so `alice up` keeps well-known addresses; a child that loses one to another process
between our look and its bind is started again on any free port (its reported port is what counts)."""
PREFERRED_METRICS_PORTS = {"router": 9464, "nlu": 9465, "cache": 9466, "llm": 9467}
"""Prometheus scrape endpoints (`/metrics`); METRICS_PORT in `env` overrides them (the port file still tells)."""
LOCAL_RATE_LIMIT = {"RATE_LIMIT_PER_S": "200", "RATE_LIMIT_BURST": "400"}
"""Evaluations replay hundreds of requests as one user back to back; the production default would throttle them."""


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
    None starts the router with AUTH_MODE=none, explicitly. `preferred_ports` asks for the well-known ports
    (router 50051 ...) when they are free; False lets the kernel pick every port.

    Every service reports the ports it bound in a port file (ALICE_PORT_FILE, see `ServiceHost.announce`) and
    is waited for on those, answered by its own process only (`alice.local.ports`): a port taken by another
    process between our look and the child's bind is never mistaken for ours.
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
    preferred_ports: bool = True
    _shared_env: dict[str, str] = field(default_factory=dict, init=False, repr=False)
    """Endpoints of the mesh's own helpers (trace store, weather replay), given to every service."""
    _workdir: Path | None = field(default=None, init=False, repr=False)
    """Where the services' port files go; removed by `stop`."""

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
        self._workdir = Path(tempfile.mkdtemp(prefix="alice-mesh-"))
        # Written by set_llm_delay (the bench's llm-slow fault); the LLM re-reads it on change.
        self._shared_env["LLM_FAULT_DELAY_FILE"] = str(self._workdir / "llm-fault-delay-ms")
        self.redis = RedisServer().start()
        self._say(f"redis    {self.redis.url} (real redis-server)")
        if self.trace_db is not None:
            self.trace_db.parent.mkdir(parents=True, exist_ok=True)
            if self.log_dir is not None:
                with open(self.log_dir / "tracestore.log", "ab") as log:
                    self.trace_store = start_trace_store(self.trace_db, log=log)
            else:
                self.trace_store = start_trace_store(self.trace_db)
            # Short batch delay: `alice ask` then `alice trace show` finds the spans at once. The store takes
            # traces only: metrics stay on each service's Prometheus endpoint.
            self._shared_env |= {"OTEL_EXPORTER_OTLP_ENDPOINT": self.trace_store.otlp_endpoint,
                                 "OTEL_BSP_SCHEDULE_DELAY": "200", "OTEL_METRICS_EXPORTER": "prometheus"}
            self._say(f"traces   {self.trace_store.web_url} (OTLP {self.trace_store.otlp_endpoint}, {self.trace_db})")
        if self.replay_weather:
            self.weather = WeatherReplayServer().start()
            self._shared_env["WEATHER_BASE_URL"] = self.weather.url
            self._say(f"weather  {self.weather.url} (replay of recorded Open-Meteo responses)")
        if "router" in wanted:
            if self.auth_dir is not None:
                self.credentials = DevCredentials.ensure(self.auth_dir)
                security = {**self.credentials.router_env(), **LOCAL_RATE_LIMIT}
            else:
                security = {"AUTH_MODE": "none"}
            # Kept in `env`, so a service restarted later (alice bench faults) gets the same settings.
            self.env = {**security, **self.env}
        for name in wanted:
            grpc_port = preferred_or_any(PREFERRED_PORTS[name]) if self.preferred_ports else 0
            metrics_port: int | None = None
            if "METRICS_PORT" not in self.env:
                metrics_port = preferred_or_any(PREFERRED_METRICS_PORTS[name]) if self.preferred_ports else 0
            self._start_service(name, grpc_port, metrics_port, fixed=False)

    def service_env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment of a service: ours, the mesh's endpoints (Redis, trace store, weather, the services
        started so far), `env`, then `extra`. Ports and the port file are added per start."""
        return {
            **os.environ,
            **self._shared_env,
            "REDIS_URL": self.redis_url,
            **{f"{name.upper()}_ADDR": entry.address for name, entry in self.processes.items()},
            **self.env,
            "GRPC_HOST": "127.0.0.1",
            **(extra or {}),
        }

    def _start_service(self, name: str, grpc_port: int, metrics_port: int | None, *, fixed: bool,
                       extra_env: Mapping[str, str] | None = None) -> ServiceProcess:
        """Start one service, learn its ports from its port file, and wait until it (and no other) is SERVING.

        `fixed`: the ports must be exactly these (a restart: the router's channels dial the old address), so a
        port another process took in between is an error (PortTaken) instead of a move to a free port.
        """
        assert self._workdir is not None, "start the mesh first"
        requested = {"GRPC_PORT": grpc_port} | ({} if metrics_port is None else {"METRICS_PORT": metrics_port})
        with contextlib.ExitStack() as stack:
            log: IO[bytes] | int = subprocess.DEVNULL
            if self.log_dir is not None:
                # The child keeps its own copy of the descriptor; ours is closed once it runs.
                log = stack.enter_context(open(self.log_dir / f"{name}.log", "ab"))
            process, ports = start_reporting_ports(
                [sys.executable, "-m", f"{name}_svc"], self.service_env(extra_env), requested,
                port_file=self._workdir / f"{name}.ports.json", stdout=log, timeout_s=self.start_timeout_s,
                what=name, fixed=fixed)
        port = ports["grpc"]
        assert port is not None
        entry = ServiceProcess(name, port, process, ports.get("metrics"))
        self.processes[name] = entry
        self._say(f"{name:<8} starting on {entry.address} (pid {process.pid})")
        wait_serving(entry.address, self.start_timeout_s, process)
        self._say(f"{name:<8} SERVING")
        return entry

    def restart_service(self, name: str, extra_env: Mapping[str, str] | None = None) -> ServiceProcess:
        """Start a service again (stopping it first if it runs) on the ports it had, and wait until SERVING.

        The same ports, so the router's channels reconnect; if another process took one meanwhile this raises
        `alice.local.ports.PortTaken` rather than moving (nobody would dial the new port) or accepting a
        stranger's health reply.
        """
        entry = self.processes[name]
        if entry.process.poll() is None:
            self.stop_service(name)
        return self._start_service(name, entry.port, entry.metrics_port, fixed=True, extra_env=extra_env)

    def set_llm_delay(self, delay_ms: int) -> None:
        """Every LLM call waits `delay_ms` first from now on, without a restart (llm_svc/fault.py)."""
        assert self._workdir is not None, "start the mesh first"
        path = self._workdir / "llm-fault-delay-ms"
        staged = path.with_suffix(".tmp")
        staged.write_text(f"{delay_ms}\n", encoding="utf-8")
        os.replace(staged, path)  # the LLM never reads a half-written number

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
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
