"""`alice up` runs real processes and Ctrl-C stops every one of them: no orphans."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def _descendants(pid: int) -> set[int]:
    """Every process below `pid`, from /proc (children of children included)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _stop_and_check(process: subprocess.Popen[Any], sig: int, exit_code: int, children: set[int]) -> None:
    """Send `sig`, expect `exit_code`, and no process the command started may be left."""
    process.send_signal(sig)
    assert process.wait(timeout=60) == exit_code
    time.sleep(0.5)
    assert [pid for pid in children if _alive(pid)] == []


def _kill_leftovers(process: subprocess.Popen[Any], children: set[int]) -> None:
    """After a failed run: the command and its orphans (reparented by then, so not found below it)."""
    if process.poll() is None:
        process.kill()
        process.wait()
    for pid in children:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_ctrl_c_stops_redis_services_and_trace_store(tmp_path: Path) -> None:
    cli = Path(sys.executable).parent / "alice"
    process = subprocess.Popen([str(cli), "up", "--services", "nlu,cache,router", "--logs", str(tmp_path / "logs")],
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    children: set[int] = set()
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 180
        lines: list[str] = []
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            lines.append(line)
            if "Alice mesh is up" in line or not line:
                break
        assert any("Alice mesh is up" in line for line in lines), "".join(lines)
        time.sleep(0.5)
        router = next(line.split()[-1] for line in iter(process.stdout.readline, "")
                      if line.strip().startswith("router"))
        with grpc.insecure_channel(router) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        children = _descendants(process.pid)
        assert len(children) >= 5  # redis, trace store, nlu, cache, router
        _stop_and_check(process, signal.SIGINT, 0, children)
    finally:
        _kill_leftovers(process, children)
        if process.stdout is not None:
            process.stdout.close()


def test_sigterm_to_a_command_with_a_local_mesh_stops_the_mesh(tmp_path: Path) -> None:
    """`timeout`, CI runners and `kill` send SIGTERM: the mesh an evaluation started must not outlive it."""
    cli = Path(sys.executable).parent / "alice"
    data = Path(__file__).resolve().parents[2] / "data" / "cache" / "cache.jsonl"
    process = subprocess.Popen([str(cli), "eval", "cache", "--data", str(data)], cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    children: set[int] = set()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(children) < 3:  # redis, nlu, cache
            time.sleep(0.5)
            children = _descendants(process.pid)
            assert process.poll() is None, "the evaluation ended before its mesh was up"
        assert len(children) >= 3
        time.sleep(2.0)  # the services are answering requests now
        _stop_and_check(process, signal.SIGTERM, 128 + signal.SIGTERM, children)
    finally:
        _kill_leftovers(process, children)
