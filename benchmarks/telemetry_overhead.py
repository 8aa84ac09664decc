"""Tracing + metrics overhead on the cache-hit path: two local meshes side by side, requests interleaved.

One mesh exports spans to the local trace store and serves Prometheus metrics; the other runs with
OTEL_SDK_DISABLED=true and ALICE_METRICS=false. Requests alternate between them (A, B, A, B, ...) so machine
noise hits both equally. Every request repeats a question that is already cached, so it measures the path
NLU + L1 lookup + reply through the router.

    .venv/bin/python benchmarks/telemetry_overhead.py --requests 400
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import grpc

from alice.cli.ask import build_request
from alice.local.mesh import LocalMesh
from alice.router.v1 import router_service_pb2_grpc as pb_grpc
from alice.runtime.auth import DevCredentials, bearer_metadata
from alice.runtime.stats import percentile

QUESTION = "Hur blir vädret i Göteborg på fredag?"
SERVICES = ("nlu", "cache", "router")


async def _timed(stub: pb_grpc.RouterServiceAsyncStub, metadata: tuple[tuple[str, str], ...]) -> float:
    started = time.perf_counter()
    reply = await stub.Ask(build_request(QUESTION, "bench"), metadata=metadata, timeout=5)
    elapsed = (time.perf_counter() - started) * 1000
    if reply.route != 4:  # ROUTE_CACHE
        raise RuntimeError(f"expected a cache hit, got route {reply.route}")
    return elapsed


async def _run(targets: dict[str, str], credentials: dict[str, DevCredentials],
               requests: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {name: [] for name in targets}
    channels = {name: grpc.aio.insecure_channel(address) for name, address in targets.items()}
    stubs = {name: pb_grpc.RouterServiceStub(channel) for name, channel in channels.items()}
    metadata = {name: tuple(bearer_metadata(credentials[name].bearer_for("bench"))) for name in targets}
    try:
        for name, stub in stubs.items():  # fill the cache and warm up
            await stub.Ask(build_request(QUESTION, "bench"), metadata=metadata[name], timeout=10)
            for _ in range(20):
                await _timed(stub, metadata[name])
        for i in range(requests):
            for name in (list(stubs) if i % 2 == 0 else list(reversed(stubs))):
                samples[name].append(await _timed(stubs[name], metadata[name]))
    finally:
        for channel in channels.values():
            await channel.close(None)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=400, help="requests per mesh (default 400)")
    parser.add_argument("--sample-ratio", type=float, default=1.0, help="OTEL_TRACES_SAMPLER_ARG of the 'on' mesh")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="alice-overhead-"))
    off_env = {"OTEL_SDK_DISABLED": "true", "ALICE_METRICS": "false", "RATE_LIMIT_PER_S": "1000"}
    on_env = {"METRICS_PORT": "0", "RATE_LIMIT_PER_S": "1000", "OTEL_TRACES_SAMPLER_ARG": str(args.sample_ratio)}
    with LocalMesh(services=SERVICES, env=on_env, replay_weather=True, trace_db=work / "traces.db",
                   auth_dir=work / "on") as on, \
         LocalMesh(services=SERVICES, env=off_env, replay_weather=True, auth_dir=work / "off") as off:
        assert on.credentials is not None and off.credentials is not None
        samples = asyncio.run(_run({"on": on.address("router"), "off": off.address("router")},
                                   {"on": on.credentials, "off": off.credentials}, args.requests))
    rows = {name: (percentile(v, 50), percentile(v, 95), statistics.fmean(v)) for name, v in samples.items()}
    print(f"{'telemetry':<10} {'n':>5} {'p50_ms':>8} {'p95_ms':>8} {'mean_ms':>8}")
    for name, (p50, p95, mean) in rows.items():
        print(f"{name:<10} {len(samples[name]):>5} {p50:>8.2f} {p95:>8.2f} {mean:>8.2f}")
    print(f"sample ratio of 'on': {args.sample_ratio}")
    print(f"ratio on/off: p50 {rows['on'][0] / rows['off'][0]:.3f}, p95 {rows['on'][1] / rows['off'][1]:.3f}")


if __name__ == "__main__":
    main()
