"""Security test harness: the real router, NLU, cache service, tools and Redis in-process, with auth on, TLS on or off.

Only the LLM is a fake (the embedded models take minutes to load); it answers UNAVAILABLE, so requests that
would need a model get the router's honest fallbacks, which is enough for isolation and privacy.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import redis.asyncio as aioredis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from alice.llm.v1 import llm_service_pb2 as llm_pb
from alice.llm.v1 import llm_service_pb2_grpc as llm_grpc
from alice.router.v1 import router_service_pb2 as pb
from alice.router.v1 import router_service_pb2_grpc as pb_grpc
from alice.runtime.auth import ADMIN_ROLE, add_api_key, bearer_metadata, issue_jwt
from alice.runtime.config import ServerSettings, TlsSettings
from alice.runtime.server import ServiceHost
from alice.runtime.telemetry import Telemetry
from router_svc.tools import remember, user_tag

ROOT = Path(__file__).resolve().parents[2]
ISSUER, AUDIENCE = "https://id.example.test", "alice-router"
Metadata = tuple[tuple[str, str], ...]


def load_gen_certs() -> Any:
    spec = importlib.util.spec_from_file_location("gen_certs", ROOT / "scripts" / "gen_certs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class DownLlm(llm_grpc.LlmServiceServicer):
    """An LLM service that is down: every call UNAVAILABLE (the router then uses its fallbacks)."""

    async def SelectTool(self, request: llm_pb.SelectToolRequest, context: grpc.aio.ServicerContext[Any, Any]
                         ) -> llm_pb.SelectToolResponse:
        await context.abort(grpc.StatusCode.UNAVAILABLE, "no model in this test")

    async def GenerateStream(self, request: llm_pb.GenerateStreamRequest,
                             context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        await context.abort(grpc.StatusCode.UNAVAILABLE, "no model in this test")
        yield  # pragma: no cover


def server_tls_env(certs: Mapping[str, Path], service: str, *, mtls: bool) -> dict[str, str]:
    env = {"TLS_CERT_FILE": str(certs[service]), "TLS_KEY_FILE": str(certs[f"{service}-key"])}
    if mtls:
        env["TLS_CLIENT_CA_FILE"] = str(certs["client-ca"])
    return env


def router_client_tls_env(certs: Mapping[str, Path]) -> dict[str, str]:
    return {"TLS_CA_FILE": str(certs["ca"]), "TLS_CLIENT_CERT_FILE": str(certs["router-client"]),
            "TLS_CLIENT_KEY_FILE": str(certs["router-client-key"])}


@dataclass
class Stack:
    """A running mesh and the credentials of its users."""

    router_port: int
    cache_port: int
    nlu_port: int
    redis: aioredis.Redis
    keys: dict[str, str]
    signing_key: ec.EllipticCurvePrivateKey
    certs: Mapping[str, Path] | None
    users: dict[str, str]
    _stop: list[Callable[[], Any]] = field(default_factory=list)
    _channels: list[grpc.aio.Channel] = field(default_factory=list)

    @property
    def tls(self) -> bool:
        return self.certs is not None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.router_port}"

    def channel(self) -> grpc.aio.Channel:
        if self.certs is None:
            channel = grpc.aio.insecure_channel(self.address)
        else:
            credentials = grpc.ssl_channel_credentials(root_certificates=self.certs["ca"].read_bytes())
            channel = grpc.aio.secure_channel(self.address, credentials)
        self._channels.append(channel)
        return channel

    def stub(self) -> pb_grpc.RouterServiceAsyncStub:
        return pb_grpc.RouterServiceStub(self.channel())

    def monitoring(self) -> pb_grpc.MonitoringServiceAsyncStub:
        return pb_grpc.MonitoringServiceStub(self.channel())

    def api_key(self, name: str) -> Metadata:
        return bearer_metadata(self.keys[name])

    def jwt(self, name: str, **kwargs: Any) -> Metadata:
        return bearer_metadata(issue_jwt(self.signing_key, user_id=self.users[name], issuer=ISSUER,
                                         audience=AUDIENCE, **kwargs))

    async def close(self) -> None:
        for channel in self._channels:
            await channel.close(None)
        for stop in reversed(self._stop):
            await stop()
        await self.redis.aclose()


async def start_stack(tmp: Path, redis_url: str, make_telemetry: Callable[[str], Telemetry], *,
                      certs: Mapping[str, Path] | None = None, router_env: Mapping[str, str] | None = None
                      ) -> Stack:
    """Real NLU, cache and router (with its Redis tools) plus the down LLM; mTLS between them when `certs`."""
    from cache_svc.config import Config as CacheConfig
    from cache_svc.server import build as build_cache
    from nlu_svc.config import Config as NluConfig
    from nlu_svc.server import build as build_nlu
    from router_svc.config import Config as RouterConfig
    from router_svc.server import build as build_router

    suffix = uuid.uuid4().hex[:8]
    users = {name: f"{name}-{suffix}" for name in ("alice", "bob", "carol", "ops")}
    keys_file = tmp / "api-keys.json"
    keys = {name: add_api_key(keys_file, user, name=name, roles=[ADMIN_ROLE] if name == "ops" else [])
            for name, user in users.items()}
    signing_key = ec.generate_private_key(ec.SECP256R1())
    public_key_file = tmp / "jwt-public.pem"
    public_key_file.write_bytes(signing_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    base = {"GRPC_PORT": "0", "DRAIN_DELAY_S": "0", "GRACE_PERIOD_S": "1"}
    stops: list[Callable[[], Any]] = []
    try:
        nlu = await build_nlu(NluConfig.from_env(
            {**base, **(server_tls_env(certs, "nlu", mtls=True) if certs else {})}), make_telemetry("alice-nlu"))
        stops.append(nlu.stop)
        cache = await build_cache(CacheConfig.from_env(
            {**base, "REDIS_URL": redis_url, **(server_tls_env(certs, "cache", mtls=True) if certs else {})}),
            make_telemetry("alice-cache"))
        stops.append(lambda: cache.host.shutdown(cache.close))
        tls = None
        if certs:
            tls = TlsSettings(certs["llm"], certs["llm-key"], certs["client-ca"])
        llm_host = ServiceHost(ServerSettings("alice-llm", "127.0.0.1", 0, 1.0, 0.0, 1 << 20, 100, "INFO", "text", tls),
                               make_telemetry("alice-llm"), ["alice.llm.v1.LlmService"])
        llm_grpc.add_LlmServiceServicer_to_server(DownLlm(), llm_host.server)  # type: ignore[abstract]
        await llm_host.start()
        await llm_host.set_serving()
        stops.append(llm_host.shutdown)
        env = {
            **base, "NLU_ADDR": f"127.0.0.1:{nlu.port}", "CACHE_ADDR": f"127.0.0.1:{cache.host.port}",
            "LLM_ADDR": f"127.0.0.1:{llm_host.port}", "REDIS_URL": redis_url,
            "WEATHER_BASE_URL": "http://127.0.0.1:9",  # nothing listens: weather degrades honestly
            "AUTH_MODE": "both", "AUTH_API_KEYS_FILE": str(keys_file),
            "AUTH_JWT_PUBLIC_KEY_FILE": str(public_key_file), "AUTH_ISSUER": ISSUER, "AUTH_AUDIENCE": AUDIENCE,
            "AUTH_JWT_ALGORITHMS": "ES256,RS256", "RATE_LIMIT_PER_S": "1000", "RATE_LIMIT_BURST": "1000",
            # Generous hop budgets: the first calls pay TLS handshakes and a cold NLU.
            "CACHE_TIMEOUT_S": "1", "NLU_TIMEOUT_S": "2", "TOOL_TIMEOUT_S": "2",
            # "Boka ett möte" (no time) must reach the unavailable model, so its failure is remembered (L3).
            "CLARIFY_MIN_CONFIDENCE": "1.0",
            **(server_tls_env(certs, "router", mtls=False) | router_client_tls_env(certs) if certs else {}),
            **(router_env or {}),
        }
        router = await build_router(RouterConfig.from_env(env), make_telemetry("alice-router"))
        stops.append(lambda: router.host.shutdown(router.close))
    except BaseException:
        for stop in reversed(stops):
            await stop()
        raise
    return Stack(router.host.port, cache.host.port, nlu.port, aioredis.Redis.from_url(redis_url), keys,
                 signing_key, certs, users, stops)




NOW = dt.datetime(2026, 3, 10, 8, 0, tzinfo=dt.UTC)
"""Reference time of every request: Tuesday 10 March 2026, 09:00 in Stockholm."""
ALICE_SETUP = (
    "Boka möte med Anna imorgon kl 14",
    "Boka hemligt möte om Projekt Falk med Anna på torsdag kl 10",
    "Skicka ett mejl till anna@example.com om budgeten",
    "Sätt en timer på tre kvart",
)
ALICE_MEMORY = "Portkoden till Gunnars lägenhet är 4711"


def request(text: str, user_id: str = "") -> pb.AskRequest:
    message = pb.AskRequest(text=text, user_id=user_id, time_zone="Europe/Stockholm")
    message.reference_time.FromDatetime(NOW)
    return message


async def ask(stub: pb_grpc.RouterServiceAsyncStub, text: str, metadata: Metadata,
              user_id: str = "") -> pb.AskResponse:
    reply: pb.AskResponse = await stub.Ask(request(text, user_id), metadata=metadata, timeout=10)
    return reply


async def seed_alice(stack: Stack) -> None:
    """Alice's calendar entries, an e-mail draft and a timer through the router; a memory note directly."""
    stub = stack.stub()
    for text in ALICE_SETUP:
        reply = await ask(stub, text, stack.api_key("alice"))
        assert reply.HasField("tool_call"), (text, reply.answer)
    await remember(stack.redis, stack.users["alice"], ALICE_MEMORY)


async def dump_user(stack: Stack, user_id: str) -> dict[bytes, object]:
    """Every tool key of a user with its full value, for before/after comparisons."""
    dumped: dict[bytes, object] = {}
    async for key in stack.redis.scan_iter(match=f"alice:t:{user_tag(user_id)}:*", count=1000):
        kind = await stack.redis.type(key)
        if kind == b"hash":
            dumped[key] = await stack.redis.hgetall(key)
        elif kind == b"zset":
            dumped[key] = await stack.redis.zrange(key, 0, -1, withscores=True)
        else:
            dumped[key] = await stack.redis.dump(key)
    return dumped


async def user_keys(stack: Stack, user_id: str) -> list[bytes]:
    """Every Redis key, of any service, that carries the user's hash tag."""
    return [key async for key in stack.redis.scan_iter(match=f"*{user_tag(user_id)}*", count=1000)]
