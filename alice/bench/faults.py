"""Fault scenarios on the local mesh during a bench: `kill-nlu@10s,restart-nlu@20s`, `stop-redis@..` …

Each event is a real event on the processes of a LocalMesh: a SIGKILL, a SIGTERM, a fresh process started
with the same port and settings, Redis stopped and started on its port, the LLM restarted with
LLM_FAULT_DELAY_MS, or the LLM's queue filled by direct Generate calls.

An event that cannot be applied (above all: a restart whose port another process took while the service was
down) fails the schedule loudly: it is logged with `failed`, no later event runs, and `run` raises FaultFailed.
The run must not go on against a stranger's server or a mesh that is not in the state the plan says.
"""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import grpc

from alice.llm.v1 import llm_service_pb2 as llm_pb
from alice.llm.v1 import llm_service_pb2_grpc as llm_grpc
from alice.local.mesh import SERVICES, LocalMesh
from alice.local.ports import StartError

ACTIONS = ("kill", "stop", "restart", "start")
"""Service events: kill = SIGKILL (a crash), stop = SIGTERM (graceful), restart/start = a new process."""
SPECIAL = ("llm-slow", "llm-normal", "fill-llm-queue", "drain-llm-queue")
DEFAULT_LLM_DELAY_MS = 1000
DEFAULT_QUEUE_FILLERS = 8
_EVENT = re.compile(r"^(?P<name>[a-z][a-z-]*)(?::(?P<arg>\d+))?@(?P<at>\d+(?:\.\d+)?)(?P<unit>ms|s|m)?$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}


class FaultError(ValueError):
    """A --fault value that cannot be applied."""


class FaultFailed(RuntimeError):
    """An event of a running schedule could not be applied (see the schedule's log)."""


@dataclass(frozen=True)
class FaultEvent:
    action: str
    """kill, stop, restart, start, llm-slow, llm-normal, fill-llm-queue or drain-llm-queue."""
    target: str
    """A service name, "redis", or "llm" for the special events."""
    at_s: float
    arg: int | None = None
    """llm-slow: delay in ms; fill-llm-queue: concurrent callers."""

    @property
    def label(self) -> str:
        name = self.action if self.action in SPECIAL else f"{self.action}-{self.target}"
        return f"{name}{'' if self.arg is None else f':{self.arg}'}@{self.at_s:g}s"


def parse_faults(spec: str) -> list[FaultEvent]:
    """`kill-nlu@10s,restart-nlu@20s,llm-slow:1500@30s,fill-llm-queue:8@40s` -> events sorted by time."""
    events = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        match = _EVENT.match(part)
        if match is None:
            raise FaultError(f"--fault {part!r}: expected NAME@TIME like kill-nlu@10s")
        name, arg = match["name"], int(match["arg"]) if match["arg"] else None
        at_s = float(match["at"]) * _UNIT[match["unit"]]
        if name in SPECIAL:
            events.append(FaultEvent(name, "llm", at_s, arg))
            continue
        action, _, target = name.partition("-")
        if action not in ACTIONS or target not in (*SERVICES, "redis"):
            raise FaultError(f"--fault {part!r}: use {'/'.join(ACTIONS)}-<{'|'.join((*SERVICES, 'redis'))}> "
                             f"or one of {', '.join(SPECIAL)}")
        if arg is not None:
            raise FaultError(f"--fault {part!r}: only llm-slow and fill-llm-queue take a :NUMBER")
        events.append(FaultEvent(action, target, at_s))
    return sorted(events, key=lambda e: e.at_s)


def start_service(mesh: LocalMesh, name: str, extra_env: dict[str, str] | None = None) -> None:
    """Start a service of the mesh again on its old ports (stopping it first if it runs) and wait until it is
    SERVING; raises StartError (PortTaken when another process took its port meanwhile)."""
    mesh.restart_service(name, extra_env)


@dataclass
class QueueFiller:
    """Keeps `callers` long Generate calls in flight on the LLM so its bounded queue stays full."""

    address: str
    callers: int = DEFAULT_QUEUE_FILLERS
    codes: Counter[str] = field(default_factory=Counter)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._caller()) for _ in range(self.callers)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def _caller(self) -> None:
        request = llm_pb.GenerateRequest(
            task=llm_pb.GENERATION_TASK_ANSWER_QUESTION, role=llm_pb.MODEL_ROLE_PLANNER, max_tokens=256,
            text="Berätta utförligt om Sveriges historia från vikingatiden till idag, århundrade för århundrade.")
        async with grpc.aio.insecure_channel(self.address) as channel:
            stub = llm_grpc.LlmServiceStub(channel)
            while True:
                try:
                    await stub.Generate(request, timeout=120)
                    self.codes["OK"] += 1
                except grpc.aio.AioRpcError as error:
                    self.codes[error.code().name] += 1
                    # Rejected callers try again at once: the point is to keep the queue full.
                    await asyncio.sleep(0.05 if error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED else 0.5)


@dataclass
class FaultSchedule:
    """Applies events to a LocalMesh at their times (relative to the run's start) and records what happened."""

    mesh: LocalMesh
    events: list[FaultEvent]
    log: list[dict[str, Any]] = field(default_factory=list)
    filler: QueueFiller | None = None

    async def run(self, t0: float) -> None:
        loop = asyncio.get_running_loop()
        try:
            for event in self.events:
                delay = t0 + event.at_s - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                started = loop.time() - t0
                try:
                    note = await self._apply(event)
                except StartError as error:
                    self.log.append({"event": event.label, "planned_s": event.at_s, "started_s": round(started, 2),
                                     "finished_s": round(loop.time() - t0, 2), "note": f"FAILED: {error}",
                                     "failed": True})
                    print(f"\nfault {event.label} FAILED: {error} ({started:.1f}-{loop.time() - t0:.1f} s); "
                          "no later events applied", file=sys.stderr)
                    raise FaultFailed(f"{event.label}: {error}") from error
                self.log.append({"event": event.label, "planned_s": event.at_s, "started_s": round(started, 2),
                                 "finished_s": round(loop.time() - t0, 2), "note": note})
                print(f"\nfault {event.label}: {note} ({started:.1f}-{loop.time() - t0:.1f} s)", file=sys.stderr)
        finally:
            if self.filler is not None:
                await self.filler.stop()

    @property
    def failed(self) -> bool:
        """Whether an event could not be applied (the run's results then do not describe the planned faults)."""
        return any(entry.get("failed") for entry in self.log)

    def event_times(self) -> list[float]:
        """When each applied event started (phases split on these)."""
        return [float(entry["started_s"]) for entry in self.log]

    async def _apply(self, event: FaultEvent) -> str:
        mesh = self.mesh
        if event.target == "redis":
            assert mesh.redis is not None
            if event.action in ("kill", "stop"):
                await asyncio.to_thread(mesh.redis.stop)
                return f"redis-server on port {mesh.redis.port} stopped"
            await asyncio.to_thread(mesh.redis.start)
            return f"redis-server started again on port {mesh.redis.port} (its append-only file restores the data)"
        if event.action == "kill":
            pid = mesh.processes[event.target].process.pid
            await asyncio.to_thread(mesh.stop_service, event.target, signal.SIGKILL)
            return f"SIGKILL to {event.target} (pid {pid})"
        if event.action == "stop":
            await asyncio.to_thread(mesh.stop_service, event.target)
            return f"SIGTERM to {event.target}, exited"
        if event.action in ("restart", "start"):
            await asyncio.to_thread(start_service, mesh, event.target)
            return f"{event.target} started again (pid {mesh.processes[event.target].process.pid}), SERVING"
        if event.action == "llm-slow":
            delay = event.arg if event.arg is not None else DEFAULT_LLM_DELAY_MS
            mesh.set_llm_delay(delay)
            return f"every LLM call waits {delay} ms first (LLM_FAULT_DELAY_FILE, no restart)"
        if event.action == "llm-normal":
            mesh.set_llm_delay(0)
            return "LLM calls without added delay again"
        if event.action == "fill-llm-queue":
            if self.filler is None:
                self.filler = QueueFiller(mesh.address("llm"), event.arg or DEFAULT_QUEUE_FILLERS)
                self.filler.start()
            return f"{self.filler.callers} direct Generate callers keep the LLM queue full"
        if self.filler is not None:
            await self.filler.stop()
            codes = dict(self.filler.codes)
            self.filler = None
            return f"queue fillers stopped (their calls: {codes})"
        return "no queue fillers were running"
