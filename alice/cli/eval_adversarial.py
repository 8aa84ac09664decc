"""`alice eval adversarial`: hostile and malformed input; rejects must be clear, nothing may crash or hang."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

import grpc

from alice.cli.ask import CallAuth, add_auth_args, build_request, reply_dict
from alice.cli.common import add_target_args, emit, local_or_target, read_jsonl
from alice.local.mesh import SERVICES
from alice.router.v1 import router_service_pb2_grpc as pb_grpc

EXPECTATIONS = ("no_tool", "reject", "any_ok")
# A status that means something broke rather than a clear answer about the input.
CRASH_CODES = frozenset({"INTERNAL", "UNKNOWN", "DATA_LOSS"})


def register(evaluations: Any) -> None:
    parser = evaluations.add_parser("adversarial", help="hostile input: clear rejects, no tools, no crashes")
    parser.add_argument("--data", type=Path, required=True, help="adversarial JSONL file")
    parser.add_argument("--user", default="eval", help="user id for the requests (default eval)")
    parser.add_argument("--timeout", type=float, default=15.0, help="seconds before a request counts as a hang")
    add_target_args(parser)
    add_auth_args(parser)
    parser.set_defaults(run=run)


def _text(item: dict[str, Any]) -> str:
    if "text_repeat" in item:
        return str(item["text_repeat"]) * int(item.get("times", 1))
    return str(item["text"])


async def _check(stub: pb_grpc.RouterServiceAsyncStub, item: dict[str, Any], args: argparse.Namespace,
                 auth: CallAuth) -> tuple[bool, bool, str]:
    """(passed, crashed, what happened)."""
    expect = item["expect"]
    try:
        reply = await stub.Ask(build_request(_text(item), auth.user(args.user)), timeout=args.timeout,
                               metadata=auth.metadata(args.user))
    except grpc.aio.AioRpcError as error:
        code = error.code().name
        what = f"{code}: {(error.details() or '')[:120]}"
        if code == "DEADLINE_EXCEEDED":
            return False, True, f"hang: no answer within {args.timeout} s"
        if code in CRASH_CODES or code == "UNAVAILABLE":
            return False, True, what
        if expect == "reject":
            return code in ("INVALID_ARGUMENT", "RESOURCE_EXHAUSTED") and bool(error.details()), False, what
        return expect == "any_ok", False, what
    data = reply_dict(reply)
    what = f"answered via {data['route']}, tool={data['tool_call']['tool'] if data['tool_call'] else None}"
    if expect == "reject":
        return False, False, what
    if expect == "no_tool":
        return data["tool_call"] is None, False, what
    return True, False, what


async def _evaluate(target: str, items: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    passed, crashes, failed = 0, 0, []
    options = [("grpc.max_send_message_length", 64 << 20)]
    auth = CallAuth.from_args(args)
    async with grpc.aio.insecure_channel(target, options=options) as channel:
        stub = pb_grpc.RouterServiceStub(channel)
        for item in items:
            ok, crashed, what = await _check(stub, item, args, auth)
            passed += ok
            crashes += crashed
            if not ok:
                failed.append({"id": item.get("id"), "expect": item["expect"], "got": what})
    return {"n": len(items), "passed": passed, "failed": failed, "crashes": crashes}


def run(args: argparse.Namespace) -> int:
    lines, problems = read_jsonl(args.data, required=("expect",))
    items = []
    for line in lines:
        if line.data["expect"] not in EXPECTATIONS or not ("text" in line.data or "text_repeat" in line.data):
            problems.append(f"{args.data.name}:{line.number}: needs text or text_repeat and expect in "
                            f"{', '.join(EXPECTATIONS)}; skipped")
            continue
        items.append(line.data)
    with local_or_target(args.target, SERVICES) as addresses:
        result = asyncio.run(_evaluate(addresses["router"], items, args))
        if not args.target:
            result["crashes"] += _dead_services(addresses)
    human = "\n".join([*problems, f"n={result['n']} passed={result['passed']} crashes={result['crashes']}",
                       *(f"  FAILED {f['id']} (expect {f['expect']}): {f['got']}" for f in result["failed"])])
    emit(result, args.json, human)
    return 0 if result["crashes"] == 0 and not result["failed"] else 1


def _dead_services(addresses: dict[str, str]) -> int:
    """Services of the local mesh that no longer answer their health check (each counts as a crash)."""
    from alice.local.mesh import wait_serving

    dead = 0
    for name, address in addresses.items():
        if name == "redis":
            continue
        try:
            wait_serving(address, timeout_s=3.0)
        except RuntimeError:
            dead += 1
    return dead
