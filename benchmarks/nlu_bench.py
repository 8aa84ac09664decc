"""NLU RPC benchmark: Parse latency P50/P95/P99 with one client, and throughput with 16 concurrent clients.

    .venv/bin/python benchmarks/nlu_bench.py [--data data/nlu/test.jsonl] [--duration 20] [--concurrency 16]
        [--target HOST:PORT] [--env KEY=VALUE ...] [--json]

Without --target it starts a real NLU service process (alice.local.mesh.LocalMesh, its settings plus --env)
and stops it afterwards. Phases: "cold" sends every distinct text once to the fresh service (nothing in the
embedding cache), "single" loops over the texts with one client, "concurrent" with --concurrency clients.
Run with --env NLU_EMBED_CACHE_SIZE=0 to measure every request without the embedding cache.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alice.cli.common import latency_summary, read_jsonl  # noqa: E402
from alice.local.mesh import LocalMesh  # noqa: E402
from alice.local.termination import unwind_on_sigterm  # noqa: E402
from alice.nlu.v1 import nlu_service_pb2, nlu_service_pb2_grpc  # noqa: E402

REFERENCE = dt.datetime(2026, 3, 10, 8, 0, tzinfo=dt.UTC)  # 09:00 in Stockholm


def _request(text: str) -> nlu_service_pb2.ParseRequest:
    stamp = Timestamp()
    stamp.FromDatetime(REFERENCE)
    return nlu_service_pb2.ParseRequest(text=text, reference_time=stamp, time_zone="Europe/Stockholm")


async def _timed(stub: Any, request: nlu_service_pb2.ParseRequest,
                 latencies: list[float], errors: list[str]) -> None:
    started = time.perf_counter()
    try:
        await stub.Parse(request, timeout=5.0)
    except grpc.aio.AioRpcError as error:
        errors.append(error.code().name)
        return
    latencies.append((time.perf_counter() - started) * 1000)


async def _phase(stub: Any, requests: list[nlu_service_pb2.ParseRequest],
                 clients: int, duration_s: float | None) -> dict[str, Any]:
    latencies: list[float] = []
    errors: list[str] = []
    started = time.perf_counter()

    async def client(offset: int) -> None:
        i = offset
        while True:
            if duration_s is None:
                if i >= len(requests):
                    return
            elif time.perf_counter() - started >= duration_s:
                return
            await _timed(stub, requests[i % len(requests)], latencies, errors)
            i += clients if duration_s is None else 1

    offsets = range(clients) if duration_s is None else [k * len(requests) // clients for k in range(clients)]
    await asyncio.gather(*(client(o) for o in offsets))
    elapsed = time.perf_counter() - started
    return {"clients": clients, "n": len(latencies), "errors": len(errors), "seconds": round(elapsed, 2),
            "throughput_per_s": round(len(latencies) / elapsed, 1), "latency_ms": latency_summary(latencies)}


async def _run(address: str, texts: list[str], duration_s: float, concurrency: int) -> dict[str, Any]:
    requests = [_request(t) for t in dict.fromkeys(texts)]
    async with grpc.aio.insecure_channel(address) as channel:
        stub: Any = nlu_service_pb2_grpc.NluServiceStub(channel)
        await stub.Parse(_request("hej"), timeout=30.0, wait_for_ready=True)
        cold = await _phase(stub, requests, 1, None)
        single = await _phase(stub, requests, 1, duration_s)
        concurrent = await _phase(stub, requests, concurrency, duration_s)
    return {"distinct_texts": len(requests), "cold": cold, "single": single, "concurrent": concurrent}


def main() -> int:
    unwind_on_sigterm()  # a killed run stops its meshes instead of orphaning them
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "nlu" / "test.jsonl")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per looping phase")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--target", help="HOST:PORT of a running NLU service")
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for the started service")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    lines, problems = read_jsonl(args.data, required=("text",))
    for problem in problems:
        print(problem, file=sys.stderr)
    texts = [str(line.data["text"]) for line in lines]
    env = dict(item.split("=", 1) for item in args.env)
    if args.target:
        result = asyncio.run(_run(args.target, texts, args.duration, args.concurrency))
    else:
        with LocalMesh(services=["nlu"], env=env, quiet=args.json) as mesh:
            result = asyncio.run(_run(mesh.address("nlu"), texts, args.duration, args.concurrency))
    result["env"] = env
    for name in ("cold", "single", "concurrent"):
        phase = result[name]
        lat = phase["latency_ms"]
        print(f"{name:<10} clients {phase['clients']:>2}  n {phase['n']:>6}  errors {phase['errors']}  "
              f"{phase['throughput_per_s']:>7.1f} parses/s  P50 {lat['p50']:.2f} ms  P95 {lat['p95']:.2f} ms  "
              f"P99 {lat['p99']:.2f} ms", file=sys.stderr if args.json else sys.stdout)
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
