"""`alice bench` (replay traffic through the router under load, with faults, knee search, soak, k6) and
`alice verify` (the standard bench against the committed SLO file; non-zero exit when an SLO fails)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alice.bench.faults import FaultError, FaultFailed, FaultSchedule, parse_faults
from alice.bench.k6compare import cpu_ms_per_request, k6_report, k6_table, run_k6, run_order, write_outcomes
from alice.bench.knee import find_knee, rotate
from alice.bench.monitor import ProcessSampler, StatusPoller
from alice.bench.report import default_report_dir, ordered, terminal_report, write_report
from alice.bench.runner import Plan, Runner, RunResult
from alice.bench.slo import REPO_ROOT, STANDARD_SLO, Objective, SloError, check_slo, load_slo
from alice.bench.stats import PHASES, Outcome, offered_rate, split_phases, summarize
from alice.bench.traffic import load_traffic
from alice.cli.common import DEFAULT_TZ, emit, reference_time
from alice.local.mesh import SERVICES, LocalMesh
from alice.runtime.auth import DevCredentials

STANDARD_TRAFFIC = REPO_ROOT / "data" / "traffic" / "standard.jsonl"
STANDARD_RATE = 5.0
STANDARD_NOW = "2026-03-10T09:00"
"""The reference time the standard traffic file's labels resolve against (data/README.md)."""


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", help="HOST:PORT of a running router; default: start a local mesh for the run")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last stdout line")
    parser.add_argument("--now", help="reference time, e.g. 2026-03-10T09:00 (default: now)")
    parser.add_argument("--tz", default=DEFAULT_TZ, help=f"IANA time zone (default {DEFAULT_TZ})")
    parser.add_argument("--deadline", type=float, default=5.0,
                        help="per-request deadline in seconds; success needs a valid answer within it (default 5)")
    parser.add_argument("--report", type=Path, help="report folder (default reports/bench-<timestamp>/)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    parser.add_argument("--credentials", type=Path,
                        help="with --target: a local dev credentials folder (api-keys.json, dev-key, JWT signing key)"
                             " to act for each user of the file; default: no credentials")


def register(commands: Any) -> None:
    bench = commands.add_parser("bench", help="replay a traffic file through the router under load (KPIs, SLOs)")
    bench.add_argument("--data", type=Path, required=True, help="traffic JSONL file (spec/intents.md)")
    load = bench.add_mutually_exclusive_group()
    load.add_argument("--rate", type=float, help="open loop: Poisson arrivals per second")
    load.add_argument("--concurrency", type=int, help="closed loop: this many workers, each waits for its reply")
    bench.add_argument("--duration", type=float, help="seconds to send for (default: until the file ends)")
    bench.add_argument("--loop", action="store_true", help="wrap around the file until --duration")
    bench.add_argument("--seed", type=int, default=1, help="seed of the Poisson arrivals (default 1)")
    bench.add_argument("--slo", type=Path, default=STANDARD_SLO, help="SLO file (default slo/standard.json)")
    bench.add_argument("--fault", help="events on the local mesh, e.g. kill-nlu@10s,restart-nlu@20s, "
                       "stop-redis@30s,start-redis@40s, llm-slow:1500@50s, llm-normal@.., fill-llm-queue:8@.., "
                       "drain-llm-queue@..")
    bench.add_argument("--find-knee", action="store_true",
                       help="raise the rate until P95 crosses the SLO (steps of --duration, default 20 s)")
    bench.add_argument("--soak", type=float, metavar="MINUTES",
                       help="run this long (wrapping the file), sampling each process's RSS and open fds")
    bench.add_argument("--k6", action="store_true",
                       help="also run benchmarks/k6/router.js at the same --concurrency on the same request "
                            "sequence, in runs of --duration alternating with the bench's; print both percentiles")
    bench.add_argument("--k6-rounds", type=int, default=6,
                       help="with --k6: runs of each client, in the order alice k6 k6 alice ... (default 6)")
    _common(bench)
    bench.set_defaults(run=run_bench)
    verify = commands.add_parser("verify", help="the standard bench against the committed SLO file (exit 1 on a miss)")
    verify.add_argument("--data", type=Path, default=STANDARD_TRAFFIC, help=argparse.SUPPRESS)
    verify.add_argument("--rate", type=float, default=STANDARD_RATE,
                        help=f"arrivals per second (default {STANDARD_RATE:g})")
    verify.add_argument("--slo", type=Path, default=STANDARD_SLO, help=argparse.SUPPRESS)
    _common(verify)
    verify.set_defaults(run=run_verify, now=STANDARD_NOW)


def run_verify(args: argparse.Namespace) -> int:
    args.concurrency, args.duration, args.loop, args.seed = None, None, False, 1
    args.fault, args.find_knee, args.soak, args.k6 = None, False, None, False
    return run_bench(args)


@contextlib.contextmanager
def _mesh(target: str | None, folder: Path, credentials: Path | None, warm_date: str
          ) -> Iterator[tuple[str, LocalMesh | None, DevCredentials | None]]:
    """The router to drive: `--target`, or a local mesh whose router accepts fresh dev credentials."""
    if target:
        yield target, None, DevCredentials.load(credentials) if credentials else None
        return
    (folder / "logs").mkdir(parents=True, exist_ok=True)
    # The LLM warms its prompt prefix for the run's reference day (else the first request re-evaluates it).
    with LocalMesh(services=SERVICES, log_dir=folder / "logs", replay_weather=True,
                   auth_dir=folder / "credentials", env={"LLM_WARM_DATE": warm_date}) as mesh:
        yield mesh.address("router"), mesh, mesh.credentials


def _fail(message: str) -> int:
    print(f"alice bench: {message}", file=sys.stderr)
    return 2


def run_bench(args: argparse.Namespace) -> int:
    try:
        objectives = load_slo(args.slo)
        faults = parse_faults(args.fault) if args.fault else []
    except (SloError, FaultError) as error:
        return _fail(str(error))
    if faults and args.target:
        return _fail("--fault acts on the local mesh's processes; leave out --target")
    if args.k6 and not args.concurrency:
        return _fail("--k6 compares closed loops: give --concurrency")
    if args.k6 and args.k6_rounds < 1:
        return _fail("--k6-rounds must be at least 1")
    try:
        items, problems = load_traffic(args.data)
    except OSError as error:
        return _fail(f"cannot read {args.data}: {error}")
    for problem in problems:
        print(problem, file=sys.stderr)
    duration = args.duration
    if args.soak:
        duration = args.soak * 60
    elif args.find_knee and duration is None:
        duration = 20.0
    rate = args.rate if args.rate or args.concurrency else STANDARD_RATE
    try:
        plan = Plan(items=items, rate=None if args.concurrency else rate, concurrency=args.concurrency,
                    duration_s=duration, loop=args.loop or bool(args.soak) or args.find_knee or args.k6,
                    seed=args.seed, deadline_s=args.deadline, now=reference_time(args.now, args.tz) if args.now else
                    reference_time(None, args.tz), tz=args.tz)
    except ValueError as error:
        return _fail(str(error))
    folder = args.report or default_report_dir()
    if args.credentials and DevCredentials.load(args.credentials) is None:
        return _fail(f"no dev credentials in {args.credentials}")
    warm_date = reference_time(args.now, args.tz).date().isoformat()
    with _mesh(args.target, folder, args.credentials, warm_date) as (router, mesh, creds):
        result, extras = asyncio.run(_bench(router, mesh, creds, plan, args, objectives, faults, folder))
    slo_table, passed = check_slo(objectives, result)
    passed = passed and not result.get("faults_failed", False)
    result.update(slo=slo_table, passed=passed)
    result = ordered(result)
    result["report_dir"] = str(folder)
    write_report(folder, result, extras["outcomes"], _target(objectives, "latency_ms.p95"),
                 _target(objectives, "cache_hit_rate"), extras["event_times"], extras["process_samples"])
    human = "\n".join([terminal_report(result), *([k6_table(result["k6"])] if "k6" in result else []),
                       f"report: {folder}/"])
    emit(result, args.json, human)
    return 0 if passed else 1


def _target(objectives: list[Objective], metric: str) -> float | None:
    return next((o.target for o in objectives if o.metric == metric), None)


async def _bench(router: str, mesh: LocalMesh | None, creds: DevCredentials | None, plan: Plan,
                 args: argparse.Namespace,
                 objectives: list[Objective], faults: list[Any], folder: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    extras: dict[str, Any] = {"event_times": [], "process_samples": {}}
    extra_result: dict[str, Any] = {}
    progress = not args.no_progress
    bearer = creds.bearer_for if creds is not None else None
    if args.find_knee:
        p95 = _target(objectives, "latency_ms.p95") or 500.0

        async def step(step_plan: Plan) -> RunResult:
            return await Runner(router, step_plan, progress=progress, bearer=bearer).run()

        knee = await find_knee(step, plan, p95, start_rate=args.rate or 1.0,
                               say=lambda text: print(text, file=sys.stderr))
        extra_result["knee"] = knee
        # The headline KPIs are those of the highest sustainable step.
        plan = dataclasses.replace(plan, rate=knee["highest_sustainable_rate"] or 0.25, concurrency=None)
    k6_order: list[str] = []
    k6_runs: list[list[Outcome]] = []
    k6_notes: list[dict[str, Any]] = []
    if args.k6:
        # Warm the cache with one pass over the file, so no measured run pays for another's misses. Each client
        # then walks the file's sequence from its first request, every run continuing where that client's last
        # run ended: both send the same requests in the same order, as one long run would.
        await Runner(router, dataclasses.replace(plan, duration_s=None, loop=False), progress=progress,
                     bearer=bearer).run()
        tokens = {item.user: creds.bearer_for(item.user) for item in plan.items} if creds is not None else {}
        k6_order = run_order(args.k6_rounds)
        sent = {"alice": 0, "k6": 0}
        for number, client in enumerate(k6_order[:-1], start=1):  # the last is the main run below
            run_plan = rotate(plan, sent[client])
            if client == "k6":
                outcomes, note = await asyncio.to_thread(
                    run_k6, router, run_plan.items, plan.concurrency or 1, plan.duration_s or 30.0, plan.now,
                    plan.tz, plan.deadline_s, folder, tokens, f"k6-run{number}")
            else:
                cpu = time.process_time()
                outcomes = (await Runner(router, run_plan, progress=progress, bearer=bearer).run()).outcomes
                note = {"client_cpu_ms_per_request": cpu_ms_per_request(time.process_time() - cpu, len(outcomes))}
                write_outcomes(folder / f"alice-run{number}-outcomes.jsonl", outcomes)
            sent[client] += max((o.index for o in outcomes), default=-1) + 1
            k6_runs.append(outcomes)
            k6_notes.append(note)
        plan = rotate(plan, sent["alice"])
    loop = asyncio.get_running_loop()
    t0 = loop.time() + 0.2
    poller = StatusPoller(router, creds.api_key() if creds is not None else None)
    background = [loop.create_task(poller.run(t0))]
    schedule = FaultSchedule(mesh, faults) if faults and mesh is not None else None
    fault_task = loop.create_task(schedule.run(t0)) if schedule is not None else None
    sampler = None
    if args.soak and mesh is not None:
        def pids() -> dict[str, int]:
            found = {name: p.process.pid for name, p in mesh.processes.items()}
            if mesh.redis is not None and mesh.redis.process is not None:
                found["redis"] = mesh.redis.process.pid
            return found

        sampler = ProcessSampler(pids)
        background.append(loop.create_task(sampler.run(t0)))
    cpu = time.process_time()
    run = await Runner(router, plan, progress=progress, bearer=bearer).run(t0)
    if k6_order:
        k6_runs.append(run.outcomes)
        k6_notes.append({"client_cpu_ms_per_request": cpu_ms_per_request(time.process_time() - cpu, len(run.outcomes))})
        extra_result["k6"] = k6_report(k6_order, k6_runs, k6_notes)
    if fault_task is not None:
        # A fault that could not be applied (a restart that found its port taken, a crashed redis-server) is in
        # schedule.log and fails the run below; the report is still written.
        with contextlib.suppress(TimeoutError, FaultFailed):
            await asyncio.wait_for(asyncio.shield(fault_task), timeout=1.0)
        fault_task.cancel()
        await asyncio.gather(fault_task, return_exceptions=True)
    for task in background:
        task.cancel()
    await asyncio.gather(*background, return_exceptions=True)
    summary = summarize(run.outcomes, run.elapsed_s)
    result: dict[str, Any] = {
        **summary,
        "offered_rate": round(offered_rate(run.sent_s), 3),
        "achieved_rate": round(summary["achieved_rate"], 3),
        "mode": f"open loop {plan.rate:g}/s" if plan.rate is not None else f"closed loop {plan.concurrency} workers",
        "rate": plan.rate,
        "concurrency": plan.concurrency,
        "duration_s": round(run.elapsed_s, 2),
        "deadline_s": plan.deadline_s,
        "seed": plan.seed,
        "users": len({o.user for o in run.outcomes}),
        "malformed_lines": len(load_traffic(args.data)[1]),
        "data": str(args.data),
        "started_at": run.started_at,
        "weather": "replay (recorded Open-Meteo responses, alice.local.weather_replay)" if mesh is not None
                   else "the target mesh's provider (not controlled by the bench)",
        "target": router if mesh is None else "local mesh started for the run",
        "breakers": poller.summary(),
        **extra_result,
    }
    if schedule is not None:
        times = schedule.event_times()
        phases = split_phases(run.outcomes, times)
        result["faults"] = schedule.log
        result["faults_failed"] = schedule.failed
        result["phases"] = {phase: summarize(phases[phase]) for phase in PHASES}
        extras["event_times"] = times
    if sampler is not None:
        warmup = 0.2 * (plan.duration_s or 0.0)
        soak = sampler.summary(warmup)
        result["soak"] = {"minutes": round((plan.duration_s or 0) / 60, 2), "warmup_s": warmup, "processes": soak,
                          "memory_growth_ok": all(p.get("passed") is not False for p in soak.values()),
                          "errors_outside_faults": sum(summary["errors_by_code"].values())}
        extras["process_samples"] = sampler.samples
    extras["outcomes"] = run.outcomes
    return result, extras
