"""Start child servers and make sure the ports we talk to are theirs: port files, /proc ownership, health waits.

A port that was free when the parent looked may be taken by another process before the child binds it (another
`alice up`, another test run). So a child is never assumed to hold the port it was told: it reports the ports it
bound in ALICE_PORT_FILE (`ServiceHost.announce`), a health reply counts only when the answering listener
belongs to the child (/proc, where there is one), and a child that cannot bind a fixed port is an error.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from alice.runtime.config import PORT_FILE_ENV

Ports = dict[str, int | None]


class StartError(RuntimeError):
    """A child server did not start, or could not be shown to be the one answering."""


class ChildExited(StartError):
    """The child ended before it reported its ports (a port it was told to bind was taken, or bad settings)."""


class PortTaken(StartError):
    """A port the child had to bind is held by another process."""


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Whether binding `port` fails now (with SO_REUSEADDR, as gRPC and redis-server bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
        return False


def preferred_or_any(port: int, host: str = "127.0.0.1") -> int:
    """`port` when it is free now, else 0 (the child lets the kernel pick); either way the child reports it."""
    return 0 if port_in_use(port, host) else port


def listening_ports(pid: int) -> set[int] | None:
    """The TCP ports `pid` listens on (IPv4 and IPv6), from /proc; None where /proc cannot tell."""
    fd_dir = Path(f"/proc/{pid}/fd")
    try:
        fds = list(fd_dir.iterdir())
    except FileNotFoundError:
        return set() if Path("/proc/self/fd").is_dir() else None  # gone, or no /proc at all
    except OSError:
        return None
    inodes = set()
    for fd in fds:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    ports: set[int] = set()
    for table in (Path("/proc/net/tcp"), Path("/proc/net/tcp6")):
        try:
            rows = table.read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            # local_address is HEXIP:HEXPORT; state 0A is LISTEN; field 9 is the socket's inode.
            if len(fields) > 9 and fields[3] == "0A" and fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def owns_port(pid: int, port: int) -> bool | None:
    """Whether `pid` holds the listening socket of `port`; None where /proc cannot tell."""
    ports = listening_ports(pid)
    return None if ports is None else port in ports


def read_port_file(path: Path, process: subprocess.Popen[bytes], timeout_s: float, what: str) -> Ports:
    """The ports `process` wrote to `path` (see `ServiceHost.announce`), waiting while it is alive."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            report = json.loads(path.read_text())
        except (OSError, ValueError):
            report = None
        if isinstance(report, dict) and report.get("pid") == process.pid:
            return {str(name): None if port is None else int(port) for name, port in report["ports"].items()}
        if process.poll() is not None:
            raise ChildExited(f"{what} exited with code {process.returncode} before it reported its ports")
        if time.monotonic() > deadline:
            raise StartError(f"{what} did not report its ports in {path} within {timeout_s:.0f} s")
        time.sleep(0.02)


def stop_process(process: subprocess.Popen[bytes], timeout_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL to its process group (started with start_new_session) after the timeout."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def start_reporting_ports(
    command: Sequence[str],
    env: Mapping[str, str],
    requested: Mapping[str, int],
    *,
    port_file: Path,
    stdout: IO[bytes] | int,
    timeout_s: float,
    what: str,
    fixed: bool,
) -> tuple[subprocess.Popen[bytes], Ports]:
    """Start `command` with the `requested` port variables (e.g. GRPC_PORT) and ALICE_PORT_FILE; return the
    process and the ports it reports having bound.

    A requested port (> 0) that another process holds makes the child exit. With `fixed` (a restart: callers
    hold the old address) that raises PortTaken; otherwise the taken ones are asked for as 0 once more.
    """
    try:
        return _spawn(command, env, requested, port_file, stdout, timeout_s, what)
    except ChildExited as error:
        taken = {name: port for name, port in requested.items() if port > 0 and port_in_use(port)}
        if not taken:
            raise
        held = ", ".join(f"{name}={port}" for name, port in taken.items())
        if fixed:
            raise PortTaken(f"{what} could not bind {held}: another process holds it") from error
        retry = {**requested, **dict.fromkeys(taken, 0)}
        return _spawn(command, env, retry, port_file, stdout, timeout_s, what)


def _spawn(command: Sequence[str], env: Mapping[str, str], requested: Mapping[str, int], port_file: Path,
           stdout: IO[bytes] | int, timeout_s: float, what: str) -> tuple[subprocess.Popen[bytes], Ports]:
    port_file.unlink(missing_ok=True)
    child_env = {**env, **{name: str(port) for name, port in requested.items()}, PORT_FILE_ENV: str(port_file)}
    process = subprocess.Popen(list(command), env=child_env, stdout=stdout, stderr=stdout, start_new_session=True)
    try:
        ports = read_port_file(port_file, process, timeout_s, what)
        _check_owned(process, ports, what)
    except BaseException:
        stop_process(process)
        raise
    return process, ports


def _check_owned(process: subprocess.Popen[bytes], ports: Ports, what: str) -> None:
    for name, port in ports.items():
        if port is not None and owns_port(process.pid, port) is False:
            raise StartError(f"{what} reported {name} port {port}, but pid {process.pid} does not listen on it")


def wait_serving(address: str, timeout_s: float, process: subprocess.Popen[bytes] | None = None,
                 service: str = "") -> None:
    """Poll grpc.health.v1 until the server at `address` answers SERVING (for `service`, "" = the server).

    With `process`: fail as soon as it has exited, and take SERVING only from a listener that process holds
    (checked in /proc where there is one), never from another server that took the port in between.
    """
    deadline = time.monotonic() + timeout_s
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise ChildExited(f"service at {address} exited with code {process.returncode} while starting")
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=1.0)
            except grpc.RpcError:
                reply = None
            if reply is not None and reply.status == health_pb2.HealthCheckResponse.SERVING:
                if process is None:
                    return
                if process.poll() is not None:
                    raise ChildExited(f"service at {address} exited with code {process.returncode} while starting")
                if owns_port(process.pid, int(address.rsplit(":", 1)[1])) is False:
                    raise StartError(f"{address} answered SERVING, but pid {process.pid} does not hold that port: "
                                     "another server took it")
                return
            time.sleep(0.1)
    raise StartError(f"service at {address} was not SERVING within {timeout_s:.0f} s")
