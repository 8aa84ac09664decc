"""Drive the router: open loop (Poisson arrivals that never wait for replies) or closed loop (N workers)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import random
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TextIO

import grpc

from alice.bench.stats import Outcome
from alice.bench.traffic import TrafficItem, cycle
from alice.cli.ask import build_request
from alice.router.v1 import router_service_pb2 as pb
from alice.router.v1 import router_service_pb2_grpc as pb_grpc
from alice.runtime.auth import bearer_metadata
from alice.runtime.stats import percentile
from alice.taxonomy import TaxonomyError, intent_name, route_name, tier_name

CHANNELS = 4
"""HTTP/2 connections the open loop spreads its requests over (one connection caps concurrent streams)."""
CONNECT_TIMEOUT_S = 5.0
"""How long the connections may take before the run starts anyway (a router that is down gives UNAVAILABLE)."""
CHANNEL_OPTIONS = (("grpc.use_local_subchannel_pool", 1),)
"""Each channel its own connection: by default gRPC shares one connection among channels with the same target."""


def poisson_arrivals(rate: float, seed: int) -> Iterator[float]:
    """Arrival offsets in seconds: 0, then exponential gaps with mean 1/rate; the same for the same seed."""
    if rate <= 0:
        raise ValueError("rate must be positive")
    rng = random.Random(seed)
    at = 0.0
    while True:
        yield at
        at += rng.expovariate(rate)


@dataclass(frozen=True)
class Plan:
    """What to send and how."""

    items: Sequence[TrafficItem]
    rate: float | None = None
    concurrency: int | None = None
    duration_s: float | None = None
    loop: bool = False
    seed: int = 1
    deadline_s: float = 5.0
    now: dt.datetime | None = None
    tz: str = "Europe/Stockholm"

    def __post_init__(self) -> None:
        if (self.rate is None) == (self.concurrency is None):
            raise ValueError("give exactly one of rate (open loop) and concurrency (closed loop)")
        if self.loop and self.duration_s is None:
            raise ValueError("--loop needs --duration (it would never end)")

    @property
    def expected_n(self) -> int | None:
        """Requests to send when the file bounds the run (no --loop), for the progress bar."""
        if self.loop:
            return None
        return len(self.items) if self.duration_s is None or self.rate is None else min(
            len(self.items), int(self.duration_s * self.rate) + 1)


@dataclass
class RunResult:
    outcomes: list[Outcome]
    elapsed_s: float
    """From the first due time to the last reply."""
    sent_s: list[float] = field(default_factory=list)
    started_at: str = ""
    """Wall-clock start (ISO), for the report."""


def _parse_reply(reply: pb.AskResponse) -> dict[str, object]:
    def safe(fn: Callable[[int], str], value: int) -> str | None:
        try:
            return fn(value) if value else None
        except TaxonomyError:
            return f"unknown({value})"

    tool = safe(intent_name, reply.tool_call.intent) if reply.HasField("tool_call") else None
    return {
        "answer": reply.answer,
        "route": safe(route_name, reply.route),
        "intent": safe(intent_name, reply.intent),
        "tool": tool,
        "cache_tier": safe(tier_name, reply.cache_tier) or None,
        "degradations": tuple(pb.Degradation.Name(d).removeprefix("DEGRADATION_") for d in reply.degradations),
        "server_ms": reply.latency.total_ms if reply.HasField("latency") else None,
    }


class Progress:
    """A progress bar on stderr: redrawn in place on a terminal, a line every few seconds otherwise."""

    def __init__(self, total: int | None, duration_s: float | None, stream: TextIO = sys.stderr,
                 enabled: bool = True) -> None:
        self.total, self.duration_s, self.stream, self.enabled = total, duration_s, stream, enabled
        self.sent = 0
        self.done: list[Outcome] = []
        self._tty = stream.isatty()
        self._last_line = 0.0

    def draw(self, elapsed_s: float, final: bool = False) -> None:
        if not self.enabled:
            return
        if not self._tty and not final and time.monotonic() - self._last_line < 5.0:
            return
        self._last_line = time.monotonic()
        fraction = (len(self.done) / self.total if self.total
                    else min(1.0, elapsed_s / self.duration_s) if self.duration_s else 0.0)
        bar = "#" * int(30 * fraction) + "." * (30 - int(30 * fraction))
        recent = [o.latency_ms for o in self.done[-200:]]
        errors = sum(not o.ok for o in self.done)
        text = (f"[{bar}] {elapsed_s:6.1f}s sent {self.sent} done {len(self.done)} in-flight "
                f"{self.sent - len(self.done)} errors {errors} p95(last 200) {percentile(recent, 95):.0f} ms")
        end = "\n" if final or not self._tty else ""
        self.stream.write(("\r" if self._tty else "") + text + end)
        self.stream.flush()


class Runner:
    """Sends a plan's requests to one router and records an Outcome for each."""

    def __init__(self, target: str, plan: Plan, progress: bool = True,
                 bearer: Callable[[str], str] | None = None) -> None:
        """`bearer` gives the token a user's requests carry (None: the router runs without authentication)."""
        self.target = target
        self.plan = plan
        self.bearer = bearer
        self.progress = Progress(plan.expected_n, plan.duration_s, enabled=progress)
        self._index = itertools.count()

    async def run(self, t0: float | None = None) -> RunResult:
        """Run the plan; `t0` (loop time) lets fault schedules and pollers share the same clock."""
        loop = asyncio.get_running_loop()
        t0 = loop.time() if t0 is None else t0
        started_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        # Closed loop: one connection per worker, as independent clients (and k6's virtual users) have.
        count = CHANNELS if self.plan.rate is not None else self.plan.concurrency or 1
        channels = [grpc.aio.insecure_channel(self.target, options=CHANNEL_OPTIONS) for _ in range(count)]
        stubs = [pb_grpc.RouterServiceStub(channel) for channel in channels]
        drawer = asyncio.create_task(self._draw(t0))
        try:
            # Connected before the first request, so no request's latency includes a TCP and HTTP/2 handshake.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*(c.channel_ready() for c in channels)), CONNECT_TIMEOUT_S)
            delay = t0 - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if self.plan.rate is not None:
                await self._open_loop(stubs, t0, self.plan.rate)
            else:
                assert self.plan.concurrency is not None
                await self._closed_loop(stubs, t0, self.plan.concurrency)
        finally:
            drawer.cancel()
            for channel in channels:
                await channel.close(None)
        outcomes = sorted(self.progress.done, key=lambda o: o.index)
        elapsed = max((o.sent_s + o.latency_ms / 1000 for o in outcomes), default=0.0)
        self.progress.draw(loop.time() - t0, final=True)
        return RunResult(outcomes, elapsed, sorted(o.sent_s for o in outcomes), started_at)

    async def _draw(self, t0: float) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self.progress.draw(loop.time() - t0)
            await asyncio.sleep(0.25)

    async def _open_loop(self, stubs: Sequence[pb_grpc.RouterServiceAsyncStub], t0: float, rate: float) -> None:
        loop = asyncio.get_running_loop()
        tasks: set[asyncio.Task[None]] = set()
        arrivals = poisson_arrivals(rate, self.plan.seed)
        for item, at in zip(cycle(self.plan.items, self.plan.loop), arrivals, strict=False):
            if self.plan.duration_s is not None and at >= self.plan.duration_s:
                break
            delay = t0 + at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            # Fire and forget: the next arrival never waits for this reply (a slow server cannot slow the load).
            stub = stubs[len(tasks) % len(stubs)]
            task = loop.create_task(self._send(stub, item, t0, t0 + at))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.gather(*tasks)

    async def _closed_loop(self, stubs: Sequence[pb_grpc.RouterServiceAsyncStub], t0: float, concurrency: int) -> None:
        loop = asyncio.get_running_loop()
        source = cycle(self.plan.items, self.plan.loop)

        async def worker(number: int) -> None:
            stub = stubs[number % len(stubs)]
            for item in source:
                if self.plan.duration_s is not None and loop.time() - t0 >= self.plan.duration_s:
                    return
                await self._send(stub, item, t0)

        await asyncio.gather(*(worker(n) for n in range(concurrency)))

    async def _send(self, stub: pb_grpc.RouterServiceAsyncStub, item: TrafficItem, t0: float,
                    due: float | None = None) -> None:
        """Send one request and record its outcome.

        Open loop: latency and deadline count from `due` (a late send gets no extra time). Closed loop (`due`
        None): from just before the call to just after the reply, the window k6's grpc_req_duration times.
        """
        loop = asyncio.get_running_loop()
        index = next(self._index)
        self.progress.sent += 1
        deadline_ms = self.plan.deadline_s * 1000
        request = build_request(item.text, item.user, item.session, self.plan.now, self.plan.tz)
        metadata = bearer_metadata(self.bearer(item.user)) if self.bearer is not None else None
        start = loop.time() if due is None else due
        timeout = max(0.001, start + self.plan.deadline_s - loop.time())
        reply: pb.AskResponse | None = None
        try:
            reply = await stub.Ask(request, timeout=timeout, metadata=metadata)
            code = "OK"
        except grpc.aio.AioRpcError as error:
            code = error.code().name
        latency_ms = (loop.time() - start) * 1000
        fields = _parse_reply(reply) if reply is not None else {}
        self.progress.done.append(Outcome(
            index=index, item_id=item.id, user=item.user, expected_intent=item.intent, expected_tool=item.tool,
            sent_s=start - t0, latency_ms=latency_ms, code=code, deadline_ms=deadline_ms,
            **fields,  # type: ignore[arg-type]
        ))
