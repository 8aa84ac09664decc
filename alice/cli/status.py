"""`alice status`: the router's live monitoring view (latency, routes, cache, quota, breakers, SLOs)."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict

from alice.cli.ask import CallAuth, add_auth_args, default_target, explain
from alice.cli.scoring import format_table
from alice.router.v1 import router_service_pb2 as pb
from alice.router.v1 import router_service_pb2_grpc as pb_grpc


def register(commands: Any) -> None:
    parser = commands.add_parser("status", help="the router's monitoring view: breakers, quota, latency, SLOs")
    parser.add_argument("--target", help="router HOST:PORT (default: the running `alice up`)")
    parser.add_argument("--watch", type=float, metavar="SECONDS", help="refresh every SECONDS until Ctrl-C")
    parser.add_argument("--reset", action="store_true", help="reset the counters after printing")
    parser.add_argument("--json", action="store_true", help="print the status as JSON")
    add_auth_args(parser)
    parser.set_defaults(run=run)


def render(status: pb.GetStatusResponse) -> str:
    latency = status.latency
    lines = [f"requests {status.requests}  success {status.success_rate:.3f}  p50 {latency.p50_ms:.1f} ms  "
             f"p95 {latency.p95_ms:.1f} ms  p99 {latency.p99_ms:.1f} ms", ""]
    rows: list[tuple[object, ...]] = [
        (route, stats.count, status.route_shares.get(route, 0.0), stats.p50_ms, stats.p95_ms, stats.p99_ms)
            for route, stats in sorted(status.latency_by_route.items())]
    lines += [format_table(rows, ("route", "n", "share", "p50_ms", "p95_ms", "p99_ms")), ""]
    hits = ", ".join(f"{tier}={n}" for tier, n in sorted(status.cache_hits_by_tier.items())) or "none"
    lines.append(f"cache hits {hits}; misses {status.cache_misses}")
    q = status.quota
    lines.append(f"micro quota: share {q.share:.2f} of max {q.max_share:.2f} over the last {q.window} decisions; "
                 f"overflowed to planner {q.overflowed}")
    if status.errors_by_code:
        lines.append("errors " + ", ".join(f"{c}={n}" for c, n in sorted(status.errors_by_code.items())))
    if status.degradations:
        lines.append("degraded " + ", ".join(f"{d}={n}" for d, n in sorted(status.degradations.items())))
    lines.append("")
    rows = [(b.name, b.state.upper(), b.failure_rate, b.slow_call_rate, b.calls_in_window, b.rejected,
             b.transitions[-1] if b.transitions else "") for b in status.breakers]
    lines += [format_table(rows, ("breaker", "state", "fail", "slow", "calls", "rejected", "last transition")), ""]
    rows = [(s.name, s.target, s.value, "PASS" if s.passed else "FAIL") for s in status.slos]
    lines.append(format_table(rows, ("slo", "target", "value", "status")))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    target = args.target or default_target()
    auth = CallAuth.from_args(args)
    metadata = auth.metadata(auth.dev.user_id if auth.dev is not None else "")
    with grpc.insecure_channel(target) as channel:
        stub = pb_grpc.MonitoringServiceStub(channel)
        while True:
            try:
                status = stub.GetStatus(pb.GetStatusRequest(), timeout=5, metadata=metadata)
            except grpc.RpcError as error:
                print(explain(error))
                return 1
            if args.json:
                print(json.dumps(MessageToDict(status, preserving_proto_field_name=True), ensure_ascii=False))
            else:
                print(("\033[2J\033[H" if args.watch else "") + render(status), flush=True)
            if args.reset:
                stub.ResetStats(pb.ResetStatsRequest(), timeout=5, metadata=metadata)
            if not args.watch:
                return 0
            time.sleep(args.watch)
