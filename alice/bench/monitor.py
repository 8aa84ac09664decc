"""What the bench watches besides replies: the router's breakers (GetStatus) and each process's RSS and fds."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from alice.router.v1 import router_service_pb2 as pb
from alice.router.v1 import router_service_pb2_grpc as pb_grpc
from alice.runtime.auth import bearer_metadata
from alice.runtime.stats import percentile


def new_transitions(previous: Sequence[str], current: Sequence[str]) -> list[str]:
    """Entries of a bounded "newest last" list that were not in the previous poll (overlap by suffix)."""
    for k in range(min(len(previous), len(current)), 0, -1):
        if list(previous[-k:]) == list(current[:k]):
            return list(current[k:])
    return list(current)


@dataclass
class StatusPoller:
    """Polls MonitoringService.GetStatus; keeps breaker states over time and the transitions seen."""

    target: str
    token: str | None = None
    """Bearer token of an operator (GetStatus needs the admin role when authentication is on)."""
    interval_s: float = 1.0
    samples: list[tuple[float, dict[str, str]]] = field(default_factory=list)
    transitions: list[dict[str, Any]] = field(default_factory=list)
    degradations: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    last_error: str = ""
    _last: dict[str, list[str]] = field(default_factory=dict)

    async def run(self, t0: float) -> None:
        """Poll until cancelled."""
        loop = asyncio.get_running_loop()
        async with grpc.aio.insecure_channel(self.target) as channel:
            stub = pb_grpc.MonitoringServiceStub(channel)
            while True:
                try:
                    metadata = bearer_metadata(self.token) if self.token else None
                    status = await stub.GetStatus(pb.GetStatusRequest(), timeout=2.0, metadata=metadata)
                    self.record(loop.time() - t0, status)
                except grpc.aio.AioRpcError as error:
                    self.errors += 1
                    self.last_error = f"{error.code().name}: {error.details()}"
                await asyncio.sleep(self.interval_s)

    def record(self, at_s: float, status: pb.GetStatusResponse) -> None:
        self.samples.append((round(at_s, 2), {b.name: b.state for b in status.breakers}))
        for breaker in status.breakers:
            previous = self._last.get(breaker.name)
            current = list(breaker.transitions)
            fresh = current if previous is None else new_transitions(previous, current)
            if previous is not None:  # transitions before the run started are not the run's
                self.transitions += [{"at_s": round(at_s, 2), "breaker": breaker.name, "transition": t}
                                     for t in fresh]
            self._last[breaker.name] = current
        self.degradations = dict(status.degradations)

    def summary(self) -> dict[str, Any]:
        states: dict[str, list[str]] = {}
        for _, sample in self.samples:
            for name, state in sample.items():
                seen = states.setdefault(name, [])
                if not seen or seen[-1] != state:
                    seen.append(state)
        return {"transitions": self.transitions, "states_seen": states, "polls": len(self.samples),
                "poll_errors": self.errors, "last_poll_error": self.last_error or None}


def read_proc(pid: int, proc: Path = Path("/proc")) -> tuple[int, int] | None:
    """(RSS in KiB, open file descriptors) of a live process, None when it is gone."""
    try:
        status = (proc / str(pid) / "status").read_text()
        fds = len(os.listdir(proc / str(pid) / "fd"))
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]), fds
    return None


@dataclass
class ProcessSampler:
    """Samples RSS and open fds of named processes every `interval_s` (the soak's memory watch)."""

    pids: Callable[[], Mapping[str, int]]
    """Current pid per name (a restarted service gets a new pid)."""
    interval_s: float = 5.0
    samples: dict[str, list[tuple[float, int, int]]] = field(default_factory=dict)

    async def run(self, t0: float) -> None:
        loop = asyncio.get_running_loop()
        while True:
            at = loop.time() - t0
            for name, pid in self.pids().items():
                reading = read_proc(pid)
                if reading is not None:
                    self.samples.setdefault(name, []).append((round(at, 1), *reading))
            await asyncio.sleep(self.interval_s)

    def summary(self, warmup_s: float, limit_pct: float = 5.0) -> dict[str, Any]:
        """Per process: RSS after warm-up vs at the end (medians of the first and last sixth after warm-up)."""
        return {name: memory_growth(rows, warmup_s, limit_pct) for name, rows in sorted(self.samples.items())}


def memory_growth(rows: Sequence[tuple[float, int, int]], warmup_s: float, limit_pct: float) -> dict[str, Any]:
    """Growth of RSS from just after warm-up to the end; medians of windows so one spike does not decide."""
    after = [r for r in rows if r[0] >= warmup_s]
    if len(after) < 2:
        return {"samples": len(rows), "growth_pct": None, "passed": None, "why": "too few samples after warm-up"}
    width = max(1, len(after) // 6)
    base = percentile([r[1] for r in after[:width]], 50)
    end = percentile([r[1] for r in after[-width:]], 50)
    growth = 100 * (end - base) / base if base else 0.0
    return {
        "samples": len(rows),
        "rss_kib_after_warmup": int(base),
        "rss_kib_end": int(end),
        "rss_kib_max": max(r[1] for r in rows),
        "growth_pct": round(growth, 2),
        "fds_after_warmup": after[0][2],
        "fds_end": after[-1][2],
        "fds_max": max(r[2] for r in rows),
        "passed": growth <= limit_pct,
    }
