"""`alice eval e2e`: every utterance of an intent file through the router; tools, slots, success, latency."""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import grpc

from alice.bench.stats import NOT_ANSWERS
from alice.cli.ask import CallAuth, add_auth_args, build_request, reply_dict
from alice.cli.common import add_target_args, emit, latency_summary, local_or_target, read_jsonl, reference_time
from alice.cli.scoring import ToolScore, format_table
from alice.local.mesh import SERVICES
from alice.router.v1 import router_service_pb2_grpc as pb_grpc


def register(evaluations: Any) -> None:
    parser = evaluations.add_parser("e2e", help="end to end through the router (tools, slots, success, latency)")
    parser.add_argument("--data", type=Path, required=True, help="intent-and-slot JSONL file")
    parser.add_argument("--user", default="eval", help="user id for the requests (default eval)")
    parser.add_argument("--timeout", type=float, default=10.0, help="deadline per request in seconds")
    add_target_args(parser, time_args=True)
    add_auth_args(parser)
    parser.set_defaults(run=run)


async def _evaluate(target: str, items: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    now = reference_time(args.now, args.tz)
    score = ToolScore()
    latencies: list[float] = []
    by_route: dict[str, list[float]] = defaultdict(list)
    failures: list[dict[str, Any]] = []
    answered = 0
    auth = CallAuth.from_args(args)
    async with grpc.aio.insecure_channel(target) as channel:
        stub = pb_grpc.RouterServiceStub(channel)
        for item in items:
            started = time.perf_counter()
            user = str(item.get("user", args.user))
            try:
                reply = await stub.Ask(build_request(str(item["text"]), auth.user(user), "", now, args.tz),
                                       timeout=args.timeout, metadata=auth.metadata(user))
            except grpc.aio.AioRpcError as error:
                failures.append({"id": item.get("id"), "text": item["text"], "error": error.code().name,
                                 "message": error.details()})
                score.add(item.get("tool"), None, item.get("slots", {}), {})
                continue
            elapsed = (time.perf_counter() - started) * 1000
            data = reply_dict(reply)
            # The same rule as the bench: an honest "cannot answer now" is a reply, not a valid answer.
            ok = bool(data["answer"]) and data["answer"] not in NOT_ANSWERS and elapsed <= args.timeout * 1000
            answered += ok
            latencies.append(elapsed)
            by_route[data["route"] or "unknown"].append(elapsed)
            call = data["tool_call"]
            predicted_tool = call["tool"] if call else None
            predicted_slots = call["arguments"] if call else data["slots"]
            score.add(item.get("tool"), predicted_tool, item.get("slots", {}), predicted_slots)
            if predicted_tool != item.get("tool") or not ok:
                failures.append({"id": item.get("id"), "text": item["text"], "expected_tool": item.get("tool"),
                                 "predicted_tool": predicted_tool, "route": data["route"], "answer": data["answer"]})
    return {
        "n": score.n,
        "success_rate": answered / score.n if score.n else 0.0,
        "tool_accuracy": score.tool_accuracy,
        "tool_precision": score.tool_precision,
        "slot_exact_match": score.slot_exact_match,
        "latency_ms": latency_summary(latencies),
        "by_route": {route: {"n": len(v), "latency_ms": latency_summary(v)} for route, v in sorted(by_route.items())},
        "failures": failures,
    }


def run(args: argparse.Namespace) -> int:
    lines, problems = read_jsonl(args.data, required=("text",))
    items = [line.data for line in lines]
    # The LLM warms its prompt prefix for the evaluation's reference day (else the first request re-evaluates it).
    warm = {"LLM_WARM_DATE": reference_time(args.now, args.tz).date().isoformat()}
    with local_or_target(args.target, SERVICES, env=warm, replay_weather=True) as addresses:
        result = asyncio.run(_evaluate(addresses["router"], items, args))
    rows = [(route, v["n"], v["latency_ms"]["p50"], v["latency_ms"]["p95"], v["latency_ms"]["p99"])
            for route, v in result["by_route"].items()]
    human = "\n".join([
        *problems,
        f"n={result['n']} success={result['success_rate']:.3f} tool_accuracy={result['tool_accuracy']:.3f} "
        f"tool_precision={result['tool_precision']:.3f} slot_exact_match={result['slot_exact_match']:.3f}",
        f"latency ms: {result['latency_ms']}",
        format_table(rows, ("route", "n", "p50_ms", "p95_ms", "p99_ms")),
        *(f"  miss {f}" for f in result["failures"][:40]),
    ])
    emit(result, args.json, human)
    return 0
