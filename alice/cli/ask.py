"""`alice ask "..."`: one request to the router; prints the answer, route and latency breakdown."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict

from alice.cli.common import DEFAULT_TZ, reference_time
from alice.router.v1 import router_service_pb2, router_service_pb2_grpc
from alice.taxonomy import intent_name, route_name, slots_from_proto, tier_name

DEFAULT_TARGET = "127.0.0.1:50051"


def register(commands: Any) -> None:
    parser = commands.add_parser("ask", help="ask the router one question")
    parser.add_argument("text", help="what to ask, in Swedish")
    parser.add_argument("--target", help="router HOST:PORT (default: the running `alice up`, else 127.0.0.1:50051)")
    parser.add_argument("--user", default="demo", help="user id (default demo)")
    parser.add_argument("--session", default="", help="session id")
    parser.add_argument("--now", help="reference time, e.g. 2026-03-10T09:00 (default: now)")
    parser.add_argument("--tz", default=DEFAULT_TZ, help=f"IANA time zone (default {DEFAULT_TZ})")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds (default 10)")
    parser.add_argument("--json", action="store_true", help="print the reply as JSON")
    parser.set_defaults(run=run)


def default_target() -> str:
    state = Path(".alice") / "mesh.json"
    if state.exists():
        return str(json.loads(state.read_text())["router"])
    return DEFAULT_TARGET


def build_request(text: str, user_id: str, session_id: str = "", now: dt.datetime | None = None,
                  tz: str = DEFAULT_TZ) -> router_service_pb2.AskRequest:
    request = router_service_pb2.AskRequest(text=text, user_id=user_id, session_id=session_id, time_zone=tz)
    if now is not None:
        request.reference_time.FromDatetime(now.astimezone(dt.UTC))
    return request


def ask_once(target: str, text: str, *, user_id: str, session_id: str = "", now: dt.datetime | None = None,
             tz: str = DEFAULT_TZ, timeout_s: float = 10.0) -> router_service_pb2.AskResponse:
    with grpc.insecure_channel(target) as channel:
        stub = router_service_pb2_grpc.RouterServiceStub(channel)
        reply: router_service_pb2.AskResponse = stub.Ask(
            build_request(text, user_id, session_id, now, tz), timeout=timeout_s
        )
        return reply


def reply_dict(reply: router_service_pb2.AskResponse) -> dict[str, Any]:
    """The reply in canonical JSON form (intents, routes and slots as in spec/intents.md)."""
    tool = None
    if reply.HasField("tool_call"):
        tool = {"tool": intent_name(reply.tool_call.intent), "arguments": slots_from_proto(reply.tool_call.arguments)}
    return {
        "answer": reply.answer,
        "route": route_name(reply.route) if reply.route else None,
        "intent": intent_name(reply.intent) if reply.intent else None,
        "confidence": round(reply.confidence, 4),
        "slots": slots_from_proto(reply.slots),
        "tool_call": tool,
        "cache_tier": tier_name(reply.cache_tier) or None,
        "latency_ms": MessageToDict(reply.latency, preserving_proto_field_name=True),
        "trace_id": reply.trace_id,
        "degradations": [router_service_pb2.Degradation.Name(d) for d in reply.degradations],
    }


def print_reply(reply: router_service_pb2.AskResponse, indent: str = "") -> None:
    data = reply_dict(reply)
    print(f"{indent}{data['answer']}")
    details = f"route={data['route']} intent={data['intent']} confidence={data['confidence']:.2f}"
    if data["cache_tier"]:
        details += f" cache={data['cache_tier']}"
    if data["degradations"]:
        details += f" degraded={','.join(data['degradations'])}"
    print(f"{indent}  [{details}]")
    stages = " ".join(f"{k.removesuffix('_ms')}={v:.1f}" for k, v in data["latency_ms"].items() if v)
    print(f"{indent}  [ms: {stages}]")
    print(f"{indent}  [trace {data['trace_id']}]")


def run(args: argparse.Namespace) -> int:
    now = reference_time(args.now, args.tz) if args.now else None
    target = args.target or default_target()
    try:
        reply = ask_once(target, args.text, user_id=args.user, session_id=args.session, now=now, tz=args.tz,
                         timeout_s=args.timeout)
    except grpc.RpcError as error:
        print(f"error: {error.code().name}: {error.details()}")
        return 1
    if args.json:
        print(json.dumps(reply_dict(reply), ensure_ascii=False))
    else:
        print_reply(reply)
    return 0
