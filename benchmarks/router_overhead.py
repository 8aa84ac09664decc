"""Router overhead: the router's time on a request minus the time its downstream calls were outstanding.

Starts a local mesh (Redis, weather replay, NLU, cache, router; no LLM) that exports every span to the local
trace store, sends requests one at a time on two paths, and computes per request from the stored trace:

    overhead = router SERVER span (Ask, interceptors included) - union of the intervals during which at least
               one downstream call was outstanding (the router's CLIENT spans to NLU and cache, and the
               `router.tool` stage: the tool's own work and its provider, e.g. the weather replay over HTTP)

The union, not the sum: the NLU parse and the L1 alias lookup run in parallel. What remains is the router's own
work: auth, validation, building requests, routing, the reply, its telemetry. It is split into the part inside
`Pipeline.ask` (the reply's `latency.total_ms` minus the downstream union) and the part around it (server span
minus `total_ms`: the tracing and auth interceptors, validation, the reply proto, the monitor). Also printed:
the same with the client-observed latency in place of the server span (adds transport and the client's stack).

    .venv/bin/python benchmarks/router_overhead.py --requests 300 [--auth api-key]

`--unit-costs` prints, without a mesh, what the router pays per request for its credential check (ES256 JWT,
API key) and per recorded span (SDK with a batch processor and a null exporter), best of five loops.

`--profile FILE` records the router process with py-spy (`pip install py-spy`; raw collapsed stacks, idle
frames left out) while the measured requests run.

Paths: `cache` repeats a weather question whose answer is cached (NLU + alias lookup in parallel, the alias
hits); `fast` asks for the time (never cached: NLU + alias, L1 + L3 lookup, route, tool; since `NEVER_CACHE` moved
to the taxonomy the router no longer sends the Store the cache used to decline).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import grpc

from alice.cli.ask import build_request
from alice.local.mesh import LocalMesh
from alice.local.redis_server import free_port
from alice.local.termination import unwind_on_sigterm
from alice.router.v1 import router_service_pb2_grpc as pb_grpc
from alice.runtime.auth import DevCredentials, bearer_metadata
from alice.runtime.stats import percentile
from alice.runtime.tracing import CALL_END, CALL_START
from alice.taxonomy import Route
from alice.tracestore.store import SpanRecord, TraceNotFound, TraceStore

PATHS = {
    "cache": ("Hur blir vädret i Göteborg på fredag?", Route.ROUTE_CACHE),
    "fast": ("vad är klockan", Route.ROUTE_FAST),
}
NOW = dt.datetime(2026, 3, 10, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
SERVICES = ("nlu", "cache", "router")


def union_ns(intervals: Sequence[tuple[int, int]]) -> int:
    """Total length covered by the intervals (overlaps counted once)."""
    total, end = 0, None
    for start, stop in sorted(intervals):
        if end is None or start > end:
            total += stop - start
            end = stop
        elif stop > end:
            total += stop - end
            end = stop
    return total


def _call_interval(span: SpanRecord) -> tuple[int, int]:
    """A CLIENT span's call: a router stage that carries its one call (as_call_span) records where the call
    itself started and ended, so the stage's own work around it counts as router time, as before the merge."""
    start, end = span.attributes.get(CALL_START), span.attributes.get(CALL_END)
    if isinstance(start, int) and isinstance(end, int):
        return start, end
    return span.start_ns, span.end_ns


def breakdown(spans: Sequence[SpanRecord]) -> dict[str, float]:
    """Router span, downstream union and overhead of one trace, in ms."""
    root = next(s for s in spans if s.service == "alice-router" and s.kind == "SERVER" and not s.parent_id)
    downstream = [_call_interval(s) for s in spans if s.service == "alice-router"
                  and (s.kind == "CLIENT" or s.name == "router.tool")]
    down = union_ns(downstream)
    return {"router_ms": root.duration_ns / 1e6, "downstream_ms": down / 1e6,
            "overhead_ms": (root.duration_ns - down) / 1e6, "calls": float(len(downstream))}


def start_profiler(pid: int, output: Path) -> subprocess.Popen[bytes]:
    spy = shutil.which("py-spy")
    if spy is None:
        raise SystemExit("--profile needs py-spy on PATH (pip install py-spy)")
    return subprocess.Popen([spy, "record", "--pid", str(pid), "--output", str(output), "--format", "raw",
                             "--rate", "500", "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def drive(address: str, credentials: DevCredentials, requests: int, warmup: int, user: str,
                profile: tuple[int, Path] | None = None) -> dict[str, list[tuple[str, float, float]]]:
    """(trace id, client-observed ms, the reply's pipeline total ms) per measured request and path; the paths
    alternate so machine noise hits both."""
    metadata = bearer_metadata(credentials.bearer_for(user))
    results: dict[str, list[tuple[str, float, float]]] = {name: [] for name in PATHS}
    profiler: subprocess.Popen[bytes] | None = None
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.RouterServiceStub(channel)
        for i in range(warmup + requests):
            if i == warmup and profile is not None:
                profiler = start_profiler(*profile)
                await asyncio.sleep(1.0)  # py-spy attaches
            for name, (text, route) in PATHS.items():
                started = time.perf_counter()
                reply = await stub.Ask(build_request(text, user, now=NOW), metadata=metadata, timeout=5)
                elapsed = (time.perf_counter() - started) * 1000
                if i >= warmup:
                    if reply.route != route:
                        raise RuntimeError(f"{name}: expected route {Route.Name(route)}, got {Route.Name(reply.route)}")
                    results[name].append((reply.trace_id, elapsed, reply.latency.total_ms))
    if profiler is not None:
        profiler.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        profiler.wait(timeout=60)
    return results


def collect(db: Path, trace_ids: Sequence[str], timeout_s: float = 30.0) -> dict[str, list[SpanRecord]]:
    """Each trace's spans once its router server span has arrived (the exporters flush in batches)."""
    found: dict[str, list[SpanRecord]] = {}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and len(found) < len(trace_ids):
        time.sleep(0.5)
        with TraceStore(db) as store:
            for trace_id in trace_ids:
                if trace_id in found:
                    continue
                try:
                    spans = store.get_trace(trace_id)
                except TraceNotFound:
                    continue
                if any(s.service == "alice-router" and s.kind == "SERVER" for s in spans):
                    found[trace_id] = spans
    return found


def measure(work: Path, env: dict[str, str], args: argparse.Namespace
            ) -> tuple[dict[str, list[tuple[str, float, float]]], dict[str, list[SpanRecord]]]:
    """Start the mesh in `work`, drive it, and read the measured requests' traces back."""
    with LocalMesh(services=SERVICES, env=env, replay_weather=True, trace_db=work / "traces.db",
                   auth_dir=work / "auth", quiet=True) as mesh:
        assert mesh.credentials is not None
        profile = (mesh.processes["router"].process.pid, args.profile) if args.profile else None
        user = mesh.credentials.user_id if args.auth == "api-key" else "bench"
        samples = asyncio.run(drive(mesh.address("router"), mesh.credentials, args.requests, args.warmup, user,
                                    profile))
        traces = collect(work / "traces.db", [row[0] for rows in samples.values() for row in rows])
    return samples, traces


def unit_costs() -> None:
    """Microseconds per JWT verification, API key check and recorded span, in a loop in this process."""
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    from alice.runtime.auth import DEV_AUDIENCE, DEV_ISSUER, ApiKeyVerifier, JwtVerifier

    class NullExporter(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    def micros(call: Callable[[], object], n: int = 3000) -> float:
        for _ in range(200):
            call()
        best = []
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(n):
                call()
            best.append((time.perf_counter() - started) / n * 1e6)
        return min(best)

    with tempfile.TemporaryDirectory() as folder:
        creds = DevCredentials.ensure(Path(folder))
        jwt_verifier = JwtVerifier.from_files(issuer=DEV_ISSUER, audience=DEV_AUDIENCE,
                                              public_key_file=creds.public_key_file)
        key_verifier = ApiKeyVerifier.from_file(creds.keys_file)
        token, key = creds.token_for("bench"), creds.api_key()
        print(f"JWT (ES256) verification  {micros(lambda: jwt_verifier.verify(token)):8.1f} us")
        print(f"API key check             {micros(lambda: key_verifier.verify(key)):8.1f} us")
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(NullExporter()))
    tracer = provider.get_tracer("router-overhead")

    def span() -> None:
        with tracer.start_as_current_span("router.stage", attributes={"alice.route": "fast"}):
            pass

    print(f"one recorded span         {micros(span):8.1f} us")
    provider.shutdown()


def main() -> None:
    unwind_on_sigterm()  # a killed run stops its meshes instead of orphaning them
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300, help="measured requests per path (default 300)")
    parser.add_argument("--warmup", type=int, default=30, help="unmeasured requests per path first (default 30)")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    parser.add_argument("--auth", choices=("jwt", "api-key"), default="jwt",
                        help="credential the requests carry: a dev-signed ES256 JWT (default) or the dev API key")
    parser.add_argument("--profile", type=Path, help="record the router with py-spy into this file (raw stacks)")
    parser.add_argument("--unit-costs", action="store_true", help="only print per-request unit costs (no mesh)")
    args = parser.parse_args()
    if args.unit_costs:
        unit_costs()
        return
    env = {"RATE_LIMIT_PER_S": "10000", "RATE_LIMIT_BURST": "10000", "LLM_ADDR": f"127.0.0.1:{free_port()}"}
    with tempfile.TemporaryDirectory(prefix="alice-router-overhead-") as folder:
        samples, traces = measure(Path(folder), env, args)
    report: dict[str, dict[str, object]] = {}
    print(f"auth: {args.auth}")
    print(f"{'path':<6} {'n':>4} {'metric':<30} {'p50_ms':>8} {'p95_ms':>8} {'p99_ms':>8}")
    for name, rows in samples.items():
        parts = [(breakdown(traces[t]), client, pipeline) for t, client, pipeline in rows if t in traces]
        metrics = {
            "router server span": [p["router_ms"] for p, _, _ in parts],
            "downstream (union)": [p["downstream_ms"] for p, _, _ in parts],
            "router overhead": [p["overhead_ms"] for p, _, _ in parts],
            "  in the pipeline": [total - p["downstream_ms"] for p, _, total in parts],
            "  around it (auth, validation)": [p["router_ms"] - total for p, _, total in parts],
            "client-observed": [c for _, c, _ in parts],
            "client-observed - downstream": [c - p["downstream_ms"] for p, c, _ in parts],
        }
        report[name] = {"n": len(parts), "downstream_calls": parts[0][0]["calls"] if parts else 0}
        for metric, values in metrics.items():
            p50, p95, p99 = (percentile(values, q) for q in (50, 95, 99))
            report[name][metric] = {"p50": round(p50, 3), "p95": round(p95, 3), "p99": round(p99, 3)}
            print(f"{name:<6} {len(values):>4} {metric:<30} {p50:>8.3f} {p95:>8.3f} {p99:>8.3f}")
    if args.json:
        print(json.dumps(report))


if __name__ == "__main__":
    main()
