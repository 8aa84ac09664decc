"""Security fixtures: certificates and the whole mesh with auth on, TLS off and on (see security_helpers)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from security_helpers import Stack, load_gen_certs, start_stack

from alice.local.redis_server import RedisServer
from alice.runtime.telemetry import Telemetry


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A local server CA, a client CA, server certificates for every service and the router's client certificate."""
    paths: dict[str, Path] = load_gen_certs().generate(tmp_path_factory.mktemp("certs"), days=1)
    return paths


@pytest.fixture(scope="module", params=[False, True], ids=["plaintext", "tls"])
async def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer,
                make_telemetry: Callable[[str], Telemetry], certs: dict[str, Path]) -> AsyncIterator[Stack]:
    """The whole mesh with auth on, once in plaintext on loopback and once with TLS and mTLS everywhere."""
    running = await start_stack(tmp_path_factory.mktemp("stack"), redis_server.url, make_telemetry,
                                certs=certs if request.param else None)
    yield running
    await running.close()
