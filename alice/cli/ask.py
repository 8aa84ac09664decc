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
from alice.runtime.auth import DevCredentials, bearer_metadata
from alice.taxonomy import intent_name, route_name, slots_from_proto, tier_name

DEFAULT_TARGET = "127.0.0.1:50051"
DEV_DIR = Path(".alice")
"""Where `alice up` keeps the development credentials (see alice.runtime.auth.DevCredentials)."""
Metadata = tuple[tuple[str, str], ...]


class CallAuth:
    """Credentials of CLI calls: `--token` for every call, else the local development credentials.

    With `--token` the router takes the user from the token, so requests leave user_id empty; with the
    development credentials the demo user sends its API key and any other user a locally signed JWT.
    """

    def __init__(self, token: str | None = None, dev: DevCredentials | None = None) -> None:
        self.token = token
        self.dev = dev

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> CallAuth:
        token = getattr(args, "token", None)
        return cls(token, None if token else DevCredentials.load(DEV_DIR))

    def user(self, wanted: str) -> str:
        """The user_id to put in a request body."""
        return "" if self.token else wanted

    def metadata(self, user_id: str) -> Metadata:
        if self.token:
            return bearer_metadata(self.token)
        if self.dev is not None:
            return bearer_metadata(self.dev.bearer_for(user_id))
        return ()


def add_auth_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--token", help="bearer token (API key or JWT); default: the local development credentials "
                                        "in .alice/ that `alice up` creates")


def explain(error: grpc.RpcError) -> str:
    """One line about a failed call, with a hint for a missing credential."""
    line = f"error: {error.code().name}: {error.details()}"
    if error.code() == grpc.StatusCode.UNAUTHENTICATED:
        line += " (start the mesh with `alice up`, which creates .alice/dev-key, or pass --token)"
    return line


def register(commands: Any) -> None:
    parser = commands.add_parser("ask", help="ask the router one question")
    parser.add_argument("text", help="what to ask, in Swedish")
    parser.add_argument("--target", help="router HOST:PORT (default: the running `alice up`, else 127.0.0.1:50051)")
    parser.add_argument("--user", default="demo", help="user id (default demo; with --token the token's user)")
    parser.add_argument("--session", default="", help="session id")
    parser.add_argument("--now", help="reference time, e.g. 2026-03-10T09:00 (default: now)")
    parser.add_argument("--tz", default=DEFAULT_TZ, help=f"IANA time zone (default {DEFAULT_TZ})")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds (default 10)")
    parser.add_argument("--json", action="store_true", help="print the reply as JSON")
    add_auth_args(parser)
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
             tz: str = DEFAULT_TZ, timeout_s: float = 10.0, auth: CallAuth | None = None
             ) -> router_service_pb2.AskResponse:
    auth = auth or CallAuth(None, DevCredentials.load(DEV_DIR))
    with grpc.insecure_channel(target) as channel:
        stub = router_service_pb2_grpc.RouterServiceStub(channel)
        reply: router_service_pb2.AskResponse = stub.Ask(
            build_request(text, auth.user(user_id), session_id, now, tz), timeout=timeout_s,
            metadata=auth.metadata(user_id),
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
                         timeout_s=args.timeout, auth=CallAuth.from_args(args))
    except grpc.RpcError as error:
        print(explain(error))
        return 1
    if args.json:
        print(json.dumps(reply_dict(reply), ensure_ascii=False))
    else:
        print_reply(reply)
    return 0
