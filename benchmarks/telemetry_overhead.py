"""Tracing + metrics overhead on the cache-hit path: local meshes side by side, requests interleaved.

One mesh runs the production telemetry: every span recorded (100 % sampling unless --sample-ratio), the batch
span processor exporting over OTLP/gRPC to the local trace store (a real receiver writing SQLite, on the same
cores), with the SDK's default batch settings (5 s / 512 spans; --bsp-delay-ms 200 is what `alice up` uses),
and metrics on (the Prometheus endpoint; the local mesh sends no metrics over OTLP). The other runs with
OTEL_SDK_DISABLED=true and ALICE_METRICS=false. Requests go to each mesh in turn, the order rotating every
round (A B, B A, A B, ... for two) so machine noise hits all equally, after a warm-up of each. Every request
repeats a question that is already cached: NLU in parallel with the L1 alias lookup, and the reply through the
router. Besides latency it prints the CPU time per request of each process (Linux /proc), which shows where the
overhead goes.

`--variant NAME=PATH[:VAR=VALUE,...]` adds a telemetry-on mesh whose services and trace store run the code at
PATH (a checkout or a copy of one; empty: this one) with those extra variables: two versions of the code, or
two settings, compared in the same run, which is far less noisy than comparing runs (they differ by a few
points on this shared machine).

    .venv/bin/python benchmarks/telemetry_overhead.py --requests 400
    .venv/bin/python benchmarks/telemetry_overhead.py --requests 3000 --variant before=/tmp/old-checkout
    .venv/bin/python benchmarks/telemetry_overhead.py --requests 3000 --variant nometrics=:ALICE_METRICS=false
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
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
        names = list(stubs)
        for i in range(requests):
            shift = i % len(names)  # each mesh takes each place in the order equally often
            for name in names[shift:] + names[:shift]:
                samples[name].append(await _timed(stubs[name], metadata[name]))
        await asyncio.sleep(1.0)  # a 200 ms batch delay has exported by now; with 5 s, batches of 512 have
        cpu = {name: {process: (_cpu_ms(pid) - before[name][process]) / requests
                      for process, pid in _pids(mesh).items()} for name, mesh in meshes.items()}
    finally:
        for channel in channels.values():
            await channel.close(None)
    return samples, cpu


@contextlib.contextmanager
def _code_from(path: str) -> Iterator[None]:
    """Processes started inside import our code from `path` first (empty: as installed)."""
    before = os.environ.get("PYTHONPATH")
    if path:
        os.environ["PYTHONPATH"] = str(Path(path).resolve())
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = before


def _variant(spec: str) -> tuple[str, str, dict[str, str]]:
    name, _, rest = spec.partition("=")
    path, _, settings = rest.partition(":")
    if not name or name in ("on", "off"):
        raise argparse.ArgumentTypeError(f"--variant {spec!r}: NAME=PATH[:VAR=VALUE,...], NAME not on or off")
    pairs = [item.partition("=") for item in settings.split(",") if item]
    if any(not sep for _, sep, _ in pairs):
        raise argparse.ArgumentTypeError(f"--variant {spec!r}: settings are VAR=VALUE, comma-separated")
    return name, path, {key: value for key, _, value in pairs}


def main() -> None:
    unwind_on_sigterm()  # a killed run stops its meshes instead of orphaning them
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=400, help="requests per mesh (default 400)")
    parser.add_argument("--sample-ratio", type=float, default=1.0, help="OTEL_TRACES_SAMPLER_ARG of the 'on' mesh")
    parser.add_argument("--bsp-delay-ms", type=int, default=5000,
                        help="OTEL_BSP_SCHEDULE_DELAY of the 'on' mesh (default 5000, the SDK's and production's)")
    parser.add_argument("--variant", type=_variant, action="append", default=[],
                        help="another telemetry-on mesh: NAME=PATH[:VAR=VALUE,...] (repeatable)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="alice-overhead-"))
    off_env = {"OTEL_SDK_DISABLED": "true", "ALICE_METRICS": "false", "RATE_LIMIT_PER_S": "1000"}
    on_env = {"METRICS_PORT": "0", "RATE_LIMIT_PER_S": "1000", "OTEL_TRACES_SAMPLER_ARG": str(args.sample_ratio),
              "OTEL_BSP_SCHEDULE_DELAY": str(args.bsp_delay_ms)}
    with contextlib.ExitStack() as stack:
        meshes = {
            "on": stack.enter_context(LocalMesh(services=SERVICES, env=on_env, replay_weather=True,
                                                trace_db=work / "traces.db", auth_dir=work / "on")),
            "off": stack.enter_context(LocalMesh(services=SERVICES, env=off_env, replay_weather=True,
                                                 auth_dir=work / "off")),
        }
        for name, path, settings in args.variant:
            env = {**on_env, **settings}
            if path:  # the services' own setting (it also holds when one is restarted)
                env["PYTHONPATH"] = str(Path(path).resolve())
            with _code_from(path):  # the trace store takes the environment it is started in
                meshes[name] = stack.enter_context(LocalMesh(services=SERVICES, env=env, replay_weather=True,
                                                             trace_db=work / f"{name}.db", auth_dir=work / name))
        credentials = {name: mesh.credentials for name, mesh in meshes.items()}
        assert all(value is not None for value in credentials.values())
        samples, cpu = asyncio.run(_run(meshes, credentials, args.requests))  # type: ignore[arg-type]
    rows = {name: (percentile(v, 50), percentile(v, 95), statistics.fmean(v)) for name, v in samples.items()}
    processes = sorted({process for usage in cpu.values() for process in usage}, key=["router", "nlu", "cache",
                       "redis", "tracestore"].index)
    print(f"{'telemetry':<10} {'n':>5} {'p50_ms':>8} {'p95_ms':>8} {'mean_ms':>8}   CPU ms per request: "
          + " ".join(f"{process:>10}" for process in processes))
    for name, (p50, p95, mean) in rows.items():
        print(f"{name:<10} {len(samples[name]):>5} {p50:>8.2f} {p95:>8.2f} {mean:>8.2f}   {'':20}"
              + " ".join(f"{cpu[name].get(process, 0.0):>10.3f}" for process in processes))
    print(f"sample ratio of 'on': {args.sample_ratio}, batch export delay {args.bsp_delay_ms} ms")
    pairs = [(name, "off") for name in rows if name != "off"] + [(name, "on") for name, _, _ in args.variant]
    for name, other in pairs:
        print(f"ratio {name}/{other}: p50 {rows[name][0] / rows[other][0]:.3f}, "
              f"p95 {rows[name][1] / rows[other][1]:.3f}")


if __name__ == "__main__":
    main()
