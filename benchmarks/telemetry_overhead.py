"""Tracing + metrics overhead on the cache-hit path: two local meshes side by side, requests interleaved.

One mesh runs the production telemetry: every span recorded (100 % sampling unless --sample-ratio), the batch
span processor exporting over OTLP/gRPC to the local trace store (a real receiver writing SQLite, on the same
cores), with the SDK's default batch settings (5 s / 512 spans; --bsp-delay-ms 200 is what `alice up` uses),
and metrics on (Prometheus endpoint plus the OTLP metric reader). The other runs with OTEL_SDK_DISABLED=true and
ALICE_METRICS=false. Requests alternate between them (A, B, B, A, ...) so machine noise hits both equally, after
a warm-up of each. Every request repeats a question that is already cached: NLU in parallel with the L1 alias
lookup, and the reply through the router. Besides latency it prints the CPU time per request of each process
(Linux /proc), which shows where the overhead goes.

    .venv/bin/python benchmarks/telemetry_overhead.py --requests 400
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

import grpc

from alice.cli.ask import build_request
from alice.local.mesh import LocalMesh
from alice.local.termination import unwind_on_sigterm
from alice.router.v1 import router_service_pb2_grpc as pb_grpc
from alice.runtime.auth import DevCredentials, bearer_metadata
from alice.runtime.stats import percentile

QUESTION = "Hur blir vädret i Göteborg på fredag?"
SERVICES = ("nlu", "cache", "router")
_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def _cpu_ms(pid: int) -> float:
    """User + system CPU time of a process so far (0 where /proc is not available)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) * 1000 / _TICKS_PER_S


def _pids(mesh: LocalMesh) -> dict[str, int]:
    pids = {name: entry.process.pid for name, entry in mesh.processes.items()}
    if mesh.trace_store is not None:
        pids["tracestore"] = mesh.trace_store.process.pid
    if mesh.redis is not None and mesh.redis.process is not None:
        pids["redis"] = mesh.redis.process.pid
    return pids


async def _timed(stub: pb_grpc.RouterServiceAsyncStub, metadata: tuple[tuple[str, str], ...]) -> float:
    started = time.perf_counter()
    reply = await stub.Ask(build_request(QUESTION, "bench"), metadata=metadata, timeout=5)
    elapsed = (time.perf_counter() - started) * 1000
    if reply.route != 4:  # ROUTE_CACHE
        raise RuntimeError(f"expected a cache hit, got route {reply.route}")
    return elapsed


async def _run(meshes: dict[str, LocalMesh], credentials: dict[str, DevCredentials],
               requests: int) -> tuple[dict[str, list[float]], dict[str, dict[str, float]]]:
    samples: dict[str, list[float]] = {name: [] for name in meshes}
    channels = {name: grpc.aio.insecure_channel(mesh.address("router")) for name, mesh in meshes.items()}
    stubs = {name: pb_grpc.RouterServiceStub(channel) for name, channel in channels.items()}
    metadata = {name: tuple(bearer_metadata(credentials[name].bearer_for("bench"))) for name in meshes}
    try:
        for name, stub in stubs.items():  # fill the cache and warm up
            await stub.Ask(build_request(QUESTION, "bench"), metadata=metadata[name], timeout=10)
            for _ in range(20):
                await _timed(stub, metadata[name])
        await asyncio.sleep(1.0)
        before = {name: {process: _cpu_ms(pid) for process, pid in _pids(mesh).items()}
                  for name, mesh in meshes.items()}
        for i in range(requests):
            for name in (list(stubs) if i % 2 == 0 else list(reversed(stubs))):
                samples[name].append(await _timed(stubs[name], metadata[name]))
        await asyncio.sleep(1.0)  # a 200 ms batch delay has exported by now; with 5 s, batches of 512 have
        cpu = {name: {process: (_cpu_ms(pid) - before[name][process]) / requests
                      for process, pid in _pids(mesh).items()} for name, mesh in meshes.items()}
    finally:
        for channel in channels.values():
            await channel.close(None)
    return samples, cpu


def main() -> None:
    unwind_on_sigterm()  # a killed run stops its meshes instead of orphaning them
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=400, help="requests per mesh (default 400)")
    parser.add_argument("--sample-ratio", type=float, default=1.0, help="OTEL_TRACES_SAMPLER_ARG of the 'on' mesh")
    parser.add_argument("--bsp-delay-ms", type=int, default=5000,
                        help="OTEL_BSP_SCHEDULE_DELAY of the 'on' mesh (default 5000, the SDK's and production's)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="alice-overhead-"))
    off_env = {"OTEL_SDK_DISABLED": "true", "ALICE_METRICS": "false", "RATE_LIMIT_PER_S": "1000"}
    on_env = {"METRICS_PORT": "0", "RATE_LIMIT_PER_S": "1000", "OTEL_TRACES_SAMPLER_ARG": str(args.sample_ratio),
              "OTEL_BSP_SCHEDULE_DELAY": str(args.bsp_delay_ms)}
    with LocalMesh(services=SERVICES, env=on_env, replay_weather=True, trace_db=work / "traces.db",
                   auth_dir=work / "on") as on, \
         LocalMesh(services=SERVICES, env=off_env, replay_weather=True, auth_dir=work / "off") as off:
        assert on.credentials is not None and off.credentials is not None
        samples, cpu = asyncio.run(_run({"on": on, "off": off}, {"on": on.credentials, "off": off.credentials},
                                        args.requests))
    rows = {name: (percentile(v, 50), percentile(v, 95), statistics.fmean(v)) for name, v in samples.items()}
    processes = sorted({process for usage in cpu.values() for process in usage}, key=["router", "nlu", "cache",
                       "redis", "tracestore"].index)
    print(f"{'telemetry':<10} {'n':>5} {'p50_ms':>8} {'p95_ms':>8} {'mean_ms':>8}   CPU ms per request: "
          + " ".join(f"{process:>10}" for process in processes))
    for name, (p50, p95, mean) in rows.items():
        print(f"{name:<10} {len(samples[name]):>5} {p50:>8.2f} {p95:>8.2f} {mean:>8.2f}   {'':20}"
              + " ".join(f"{cpu[name].get(process, 0.0):>10.3f}" for process in processes))
    print(f"sample ratio of 'on': {args.sample_ratio}, batch export delay {args.bsp_delay_ms} ms")
    print(f"ratio on/off: p50 {rows['on'][0] / rows['off'][0]:.3f}, p95 {rows['on'][1] / rows['off'][1]:.3f}")


if __name__ == "__main__":
    main()
