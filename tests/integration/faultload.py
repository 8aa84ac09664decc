"""Helpers of the fault tests: traffic picked from the standard file, a bench run with faults, one-off asks."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from alice.bench.faults import FaultSchedule, parse_faults
from alice.bench.monitor import StatusPoller
from alice.bench.runner import Plan, Runner
from alice.bench.stats import Outcome, split_phases, summarize
from alice.bench.traffic import TrafficItem, load_traffic
from alice.cli.ask import build_request
from alice.cli.common import reference_time
from alice.local.mesh import LocalMesh
from alice.router.v1 import router_service_pb2 as pb
from alice.router.v1 import router_service_pb2_grpc as pb_grpc
from alice.runtime.auth import DevCredentials, bearer_metadata

ROOT = Path(__file__).resolve().parents[2]
STANDARD = ROOT / "data" / "traffic" / "standard.jsonl"
NOW = reference_time("2026-03-10T09:00", "Europe/Stockholm")


def standard_items(intents: Sequence[str], per_intent: int | None = None, unique: bool = False) -> list[TrafficItem]:
    """Items of the standard traffic file with these intents, in file order (at most `per_intent` of each)."""
    items, _ = load_traffic(STANDARD)
    counts: dict[str, int] = {}
    texts: set[str] = set()
    chosen = []
    for item in items:
        intent = item.intent or ""
        if intent not in intents or (unique and item.text in texts):
            continue
        if per_intent is not None and counts.get(intent, 0) >= per_intent:
            continue
        counts[intent] = counts.get(intent, 0) + 1
        texts.add(item.text)
        chosen.append(item)
    return chosen


@dataclass
class FaultRun:
    """Outcomes of one open-loop run with faults, split into phases, and what the router's breakers did."""

    outcomes: list[Outcome]
    schedule: FaultSchedule
    breakers: dict[str, Any]
    phases: dict[str, list[Outcome]] = field(default_factory=dict)

    def summary(self, phase: str) -> dict[str, Any]:
        return summarize(self.phases[phase])

    def transitions(self, breaker: str) -> list[str]:
        return [t["transition"] for t in self.breakers["transitions"] if t["breaker"] == breaker]


def run_with_faults(mesh: LocalMesh, credentials: DevCredentials, items: Sequence[TrafficItem], *, rate: float,
                    duration_s: float, faults: str, deadline_s: float = 5.0) -> FaultRun:
    """An open-loop bench run against the mesh's router while `faults` happen to its processes."""
    plan = Plan(items=items, rate=rate, duration_s=duration_s, loop=True, deadline_s=deadline_s, now=NOW)
    schedule = FaultSchedule(mesh, parse_faults(faults))
    poller = StatusPoller(mesh.address("router"), credentials.api_key(), interval_s=0.5)

    async def run() -> list[Outcome]:
        loop = asyncio.get_running_loop()
        t0 = loop.time() + 0.1
        background = [loop.create_task(schedule.run(t0)), loop.create_task(poller.run(t0))]
        result = await Runner(mesh.address("router"), plan, progress=False, bearer=credentials.bearer_for).run(t0)
        await background[0]  # every event applied (a restart may outlast the load)
        background[1].cancel()
        await asyncio.gather(*background, return_exceptions=True)
        return list(result.outcomes)

    outcomes = asyncio.run(run())
    fault_run = FaultRun(outcomes, schedule, poller.summary())
    fault_run.phases = split_phases(outcomes, schedule.event_times())
    return fault_run


def ask(mesh: LocalMesh, credentials: DevCredentials, text: str, user: str = "u01") -> pb.AskResponse:
    """One request through the router as `user`, at the standard traffic's reference time."""
    with grpc.insecure_channel(mesh.address("router")) as channel:
        reply: pb.AskResponse = pb_grpc.RouterServiceStub(channel).Ask(
            build_request(text, user, now=NOW), timeout=5,
            metadata=bearer_metadata(credentials.bearer_for(user)))
    return reply


def breaker_states(mesh: LocalMesh, credentials: DevCredentials) -> dict[str, str]:
    """The router's breaker states now (MonitoringService.GetStatus, as `alice status` reads them)."""
    with grpc.insecure_channel(mesh.address("router")) as channel:
        status = pb_grpc.MonitoringServiceStub(channel).GetStatus(
            pb.GetStatusRequest(), timeout=5, metadata=bearer_metadata(credentials.api_key()))
    return {b.name: b.state for b in status.breakers}
