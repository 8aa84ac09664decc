"""TLS for clients and mutual TLS between services: internal services accept the router's client certificate and
nothing else; the router serves TLS to clients that check its name; grpcurl recipes with a token over TLS."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import grpc
import pytest
from security_helpers import Stack, ask, start_stack

from alice.cache.v1 import cache_service_pb2 as cache_pb
from alice.cache.v1 import cache_service_pb2_grpc as cache_grpc
from alice.local.redis_server import RedisServer
from alice.nlu.v1 import nlu_service_pb2 as nlu_pb
from alice.nlu.v1 import nlu_service_pb2_grpc as nlu_grpc
from alice.runtime.telemetry import Telemetry

GRPCURL = shutil.which("grpcurl") or str(Path(sys.executable).parent / "grpcurl")


@pytest.fixture(scope="module")
async def tls_stack(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer,
                    make_telemetry: Callable[[str], Telemetry], certs: dict[str, Path]) -> AsyncIterator[Stack]:
    running = await start_stack(tmp_path_factory.mktemp("tls"), redis_server.url, make_telemetry, certs=certs)
    yield running
    await running.close()


def _credentials(certs: dict[str, Path], client: str | None) -> grpc.ChannelCredentials:
    if client is None:
        return grpc.ssl_channel_credentials(root_certificates=certs["ca"].read_bytes())
    return grpc.ssl_channel_credentials(root_certificates=certs["ca"].read_bytes(),
                                        private_key=certs[f"{client}-key"].read_bytes(),
                                        certificate_chain=certs[client].read_bytes())


async def _cache_stats(channel: grpc.aio.Channel) -> cache_pb.StatsResponse:
    stub = cache_grpc.CacheServiceStub(channel)  # type: ignore[no-untyped-call,unused-ignore]
    reply: cache_pb.StatsResponse = await stub.Stats(cache_pb.StatsRequest(), timeout=3)
    return reply


async def _nlu_parse(channel: grpc.aio.Channel) -> nlu_pb.ParseResponse:
    stub = nlu_grpc.NluServiceStub(channel)
    request = nlu_pb.ParseRequest(text="hej")
    request.reference_time.GetCurrentTime()
    reply: nlu_pb.ParseResponse = await stub.Parse(request, timeout=3)
    return reply


@pytest.mark.parametrize("service", ["cache", "nlu"])
async def test_internal_services_accept_the_router_client_certificate(tls_stack: Stack, certs: dict[str, Path],
                                                                     service: str) -> None:
    port = tls_stack.cache_port if service == "cache" else tls_stack.nlu_port
    call = _cache_stats if service == "cache" else _nlu_parse
    async with grpc.aio.secure_channel(f"127.0.0.1:{port}", _credentials(certs, "router-client")) as channel:
        await call(channel)


@pytest.mark.parametrize("client", ["plaintext", "no-client-cert", "nlu-server-cert", "llm-server-cert"])
@pytest.mark.parametrize("service", ["cache", "nlu"])
async def test_internal_services_refuse_every_other_client(tls_stack: Stack, certs: dict[str, Path], service: str,
                                                          client: str) -> None:
    """A valid certificate from the server CA (any other service's) is not enough: only the client CA counts."""
    address = f"127.0.0.1:{tls_stack.cache_port if service == 'cache' else tls_stack.nlu_port}"
    call = _cache_stats if service == "cache" else _nlu_parse
    if client == "plaintext":
        channel = grpc.aio.insecure_channel(address)
    else:
        cert = {"no-client-cert": None, "nlu-server-cert": "nlu", "llm-server-cert": "llm"}[client]
        channel = grpc.aio.secure_channel(address, _credentials(certs, cert))
    async with channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(channel)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_router_serves_only_tls_to_clients_that_check_its_name(tls_stack: Stack, certs: dict[str, Path]
                                                                    ) -> None:
    from alice.router.v1 import router_service_pb2 as pb
    from alice.router.v1 import router_service_pb2_grpc as pb_grpc

    assert (await ask(tls_stack.stub(), "Vad är klockan?", tls_stack.api_key("bob"))).answer
    request = pb.AskRequest(text="Vad är klockan?")
    attempts = {
        "plaintext": grpc.aio.insecure_channel(tls_stack.address),
        "untrusted-ca": grpc.aio.secure_channel(tls_stack.address, grpc.ssl_channel_credentials(
            root_certificates=certs["client-ca"].read_bytes())),
        "wrong-name": grpc.aio.secure_channel(tls_stack.address, _credentials(certs, None),
                                              options=[("grpc.ssl_target_name_override", "evil.example")]),
    }
    for name, channel in attempts.items():
        async with channel:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await pb_grpc.RouterServiceStub(channel).Ask(request, metadata=tls_stack.api_key("bob"), timeout=3)
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE, name


async def _grpcurl(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(GRPCURL, *args, stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), timeout=20)
    return process.returncode or 0, out.decode(), err.decode()


async def test_grpcurl_recipes_over_tls_with_a_token(tls_stack: Stack, certs: dict[str, Path]) -> None:
    """The README's recipes, verbatim in shape."""
    cacert = str(certs["ca"])
    code, out, err = await _grpcurl("-cacert", cacert, tls_stack.address, "grpc.health.v1.Health/Check")
    assert code == 0 and json.loads(out) == {"status": "SERVING"}, err
    code, out, err = await _grpcurl("-cacert", cacert, tls_stack.address, "list")
    assert code == 0 and "alice.router.v1.RouterService" in out, err
    body = json.dumps({"text": "Vad är klockan?", "referenceTime": "2026-03-10T08:00:00Z"})
    code, out, err = await _grpcurl("-cacert", cacert, "-H", f"authorization: Bearer {tls_stack.keys['bob']}",
                                    "-d", body, tls_stack.address, "alice.router.v1.RouterService/Ask")
    assert code == 0, err
    assert json.loads(out)["answer"] == "Klockan är 09:00."
    code, out, err = await _grpcurl("-cacert", cacert, "-d", body, tls_stack.address,
                                    "alice.router.v1.RouterService/Ask")
    assert code != 0 and "Unauthenticated" in err and "missing credentials" in err
    code, out, err = await _grpcurl("-plaintext", tls_stack.address, "grpc.health.v1.Health/Check")
    assert code != 0
