"""The local mesh talks only to its own children: ports come from each child's port file, a health reply counts
only from the child's own listener, and a restart whose port another process took fails loudly."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from fakes import settings
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

import alice.local.mesh as mesh_module
import alice.local.redis_server as redis_module
from alice.bench.faults import FaultFailed, FaultSchedule, parse_faults
from alice.local.mesh import LocalMesh
from alice.local.ports import ChildExited, PortTaken, StartError, listening_ports, owns_port, wait_serving
from alice.local.redis_server import RedisServer
from alice.runtime.config import TelemetrySettings
from alice.runtime.server import ServiceHost
from alice.runtime.telemetry import setup_telemetry


def _serving_stranger(port: int = 0) -> tuple[grpc.Server, int]:
    """Another process's gRPC server (say another session's router) that answers SERVING to every health check."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), options=[("grpc.so_reuseport", 0)])
    servicer = health.HealthServicer()
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    return server, bound


@pytest.fixture
def stranger() -> Iterator[int]:
    server, port = _serving_stranger()
    yield port
    server.stop(None)


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A live child that listens on nothing."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield process
    process.kill()
    process.wait()


async def test_service_host_reports_the_ports_it_bound(tmp_path: Path) -> None:
    telemetry = setup_telemetry(TelemetrySettings("alice-x", None, 1.0, False, False, metrics_port=0))
    port_file = tmp_path / "ports.json"
    host = ServiceHost(dataclasses.replace(settings("alice-x"), health_port=0, port_file=port_file), telemetry, [])
    try:
        await host.start()
        report = json.loads(port_file.read_text())
        assert report == {"pid": os.getpid(), "ports": {"grpc": host.port, "health": host.health_port,
                                                        "metrics": telemetry.metrics_port}}
        assert 0 not in report["ports"].values()
        assert set(report["ports"].values()) <= (listening_ports(os.getpid()) or set())
        host.announce(web=1234)  # a host with more listeners adds them
        assert json.loads(port_file.read_text())["ports"]["web"] == 1234
        assert os.listdir(tmp_path) == ["ports.json"]  # no temporary file left behind
    finally:
        await host.shutdown()
        telemetry.shutdown()


def test_wait_serving_takes_serving_only_from_the_child_that_holds_the_port(
        stranger: int, sleeper: subprocess.Popen[bytes]) -> None:
    address = f"127.0.0.1:{stranger}"
    wait_serving(address, 10.0)  # without a process to check, any SERVING would do
    assert owns_port(sleeper.pid, stranger) is False
    with pytest.raises(StartError, match=f"pid {sleeper.pid} does not hold that port"):
        wait_serving(address, 10.0, sleeper)
    exited = subprocess.Popen([sys.executable, "-c", "pass"])
    exited.wait()
    with pytest.raises(ChildExited, match="exited with code 0"):
        wait_serving(address, 10.0, exited)


def _cache_mesh(preferred_ports: bool = True) -> LocalMesh:
    """The cheapest real service (starts in about a second), without the router's credentials."""
    return LocalMesh(services=["cache"], auth_dir=None, quiet=True, start_timeout_s=60,
                     preferred_ports=preferred_ports)


def test_a_port_taken_between_our_look_and_the_childs_bind_is_not_mistaken_for_ours(
        stranger: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # The race seen in practice: the port looked free, another server took it, our child was told to bind it.
    monkeypatch.setattr(mesh_module, "PREFERRED_PORTS", {"cache": stranger})
    monkeypatch.setattr(mesh_module, "PREFERRED_METRICS_PORTS", {"cache": 0})
    monkeypatch.setattr(mesh_module, "preferred_or_any", lambda port: port)
    with _cache_mesh() as mesh:
        entry = mesh.processes["cache"]
        assert entry.port != stranger  # the child could not bind it and was started again on a free port
        assert owns_port(entry.process.pid, entry.port) is True
        assert entry.metrics_port is not None and owns_port(entry.process.pid, entry.metrics_port) is True
        # A router started now would be given the address the child reported.
        assert mesh.service_env()["CACHE_ADDR"] == entry.address


async def test_restart_keeps_the_port_and_fails_loudly_when_a_stranger_took_it() -> None:
    with _cache_mesh(preferred_ports=False) as mesh:
        old = mesh.processes["cache"]
        mesh.stop_service("cache", signal.SIGKILL)
        restarted = mesh.restart_service("cache")
        assert (restarted.port, restarted.metrics_port) == (old.port, old.metrics_port)
        assert restarted.process.pid != old.process.pid

        mesh.stop_service("cache", signal.SIGKILL)
        server, _ = _serving_stranger(restarted.port)  # another server takes the port while cache is down
        try:
            with pytest.raises(PortTaken, match=f"GRPC_PORT={restarted.port}: another process holds it"):
                mesh.restart_service("cache")
            schedule = FaultSchedule(mesh, parse_faults("restart-cache@0s,kill-cache@0.1s"))
            with pytest.raises(FaultFailed, match="another process holds it"):
                await schedule.run(asyncio.get_running_loop().time())
        finally:
            server.stop(None)
        assert schedule.failed and len(schedule.log) == 1  # no later event ran
        assert schedule.log[0]["note"].startswith("FAILED: cache could not bind")
        assert mesh.processes["cache"].process.poll() is not None  # still down; nobody talks to the stranger


class _FakeRedis:
    """Another process's Redis on a port: answers +PONG to anything."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = int(self.sock.getsockname()[1])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            with conn:
                try:
                    conn.recv(64)
                    conn.sendall(b"+PONG\r\n")
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture
def fake_redis() -> Iterator[_FakeRedis]:
    fake = _FakeRedis()
    yield fake
    fake.close()


def test_redis_on_a_taken_port_is_not_mistaken_for_ours(fake_redis: _FakeRedis,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    fixed = RedisServer(port=fake_redis.port)
    try:
        with pytest.raises(PortTaken, match=f"port {fake_redis.port}: another process holds it"):
            fixed.start()
        assert fixed.process is None
    finally:
        fixed.close()
    # A port we chose ourselves is chosen again when another process takes it first.
    offered = iter([fake_redis.port])
    real_free_port = redis_module.free_port
    monkeypatch.setattr(redis_module, "free_port", lambda host: next(offered, None) or real_free_port(host))
    chosen = RedisServer()
    try:
        chosen.start()
        assert chosen.port != fake_redis.port and chosen.process is not None
        assert owns_port(chosen.process.pid, chosen.port) is True
    finally:
        chosen.close()
