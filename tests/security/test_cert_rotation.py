"""Certificate rotation without a restart: new certificate files on disk are what the next TLS handshake presents."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from security_helpers import load_gen_certs

from alice.runtime.config import ServerSettings, TlsSettings
from alice.runtime.server import ServiceHost
from alice.runtime.telemetry import Telemetry

Certs = dict[str, Path]


class SecretVolume:
    """A folder laid out like a Kubernetes Secret volume, updated the way the kubelet updates one.

    Each visible file is a symlink into `..data`, itself a symlink to a versioned folder; an update writes a
    complete new folder and renames a new `..data` link over the old one, so readers see all old or all new files.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._versions = itertools.count()
        root.mkdir()

    def publish(self, files: dict[str, bytes]) -> None:
        version = self.root / f"..version-{next(self._versions)}"
        version.mkdir()
        for name, data in files.items():
            (version / name).write_bytes(data)
        staged = self.root / "..data_tmp"
        staged.symlink_to(version.name)
        os.replace(staged, self.root / "..data")
        for name in files:
            link = self.root / name
            if not link.is_symlink():
                link.symlink_to(Path("..data") / name)


def _server_files(certs: Certs) -> dict[str, bytes]:
    """The nlu's Secret: its certificate and key, and the client CA that the router's certificate chains to."""
    return {"tls.crt": certs["nlu"].read_bytes(), "tls.key": certs["nlu-key"].read_bytes(),
            "ca.crt": certs["client-ca"].read_bytes()}


@pytest.fixture(scope="module")
def new_certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    """A second, unrelated set: new server CA, new client CA, new certificates (as after a CA rotation)."""
    paths: Certs = load_gen_certs().generate(tmp_path_factory.mktemp("new-certs"), days=1)
    return paths


async def _start(folder: Path, make_telemetry: Callable[[str], Telemetry]) -> ServiceHost:
    tls = TlsSettings(folder / "tls.crt", folder / "tls.key", folder / "ca.crt")
    host = ServiceHost(ServerSettings("alice-nlu", "127.0.0.1", 0, 1.0, 0.0, 1 << 20, 100, "INFO", "text", tls),
                       make_telemetry("alice-nlu"), ["alice.nlu.v1.NluService"])
    await host.start()
    await host.set_serving()
    return host


async def _presented(port: int, certs: Certs) -> bytes:
    """The certificate the server presents in a new handshake, verified against `certs`' CA (mutual TLS)."""
    return await asyncio.to_thread(_handshake, port, certs)


def _handshake(port: int, certs: Certs) -> bytes:
    context = ssl.create_default_context(cafile=str(certs["ca"]))
    context.load_cert_chain(certs["router-client"], certs["router-client-key"])
    context.set_alpn_protocols(["h2"])
    # Only the handshake matters: the socket is closed without a TLS shutdown, the way a probe would hang up.
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname="localhost") as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


def _der(certificate: Path) -> bytes:
    return ssl.PEM_cert_to_DER_cert(certificate.read_text(encoding="ascii"))


def _channel(port: int, certs: Certs) -> grpc.aio.Channel:
    credentials = grpc.ssl_channel_credentials(root_certificates=certs["ca"].read_bytes(),
                                               private_key=certs["router-client-key"].read_bytes(),
                                               certificate_chain=certs["router-client"].read_bytes())
    return grpc.aio.secure_channel(f"127.0.0.1:{port}", credentials)


async def _check(channel: grpc.aio.Channel) -> int:
    reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=3)
    return int(reply.status)


@pytest.fixture
async def started() -> AsyncIterator[list[ServiceHost]]:
    """Hosts a test started; shut down afterwards even when the test fails."""
    hosts: list[ServiceHost] = []
    yield hosts
    for host in hosts:
        await host.shutdown()


async def test_secret_volume_update_is_presented_by_the_next_handshake(
        tmp_path: Path, make_telemetry: Callable[[str], Telemetry], certs: Certs, new_certs: Certs,
        started: list[ServiceHost]) -> None:
    volume = SecretVolume(tmp_path / "tls")
    volume.publish(_server_files(certs))
    host = await _start(volume.root, make_telemetry)
    started.append(host)
    assert await _presented(host.port, certs) == _der(certs["nlu"])
    old_channel = _channel(host.port, certs)
    assert await _check(old_channel) == health_pb2.HealthCheckResponse.SERVING

    volume.publish(_server_files(new_certs))  # what cert-manager renewing the Secret looks like in the pod

    assert await _presented(host.port, new_certs) == _der(new_certs["nlu"])
    async with _channel(host.port, new_certs) as channel:  # new CA, new client certificate: accepted
        assert await _check(channel) == health_pb2.HealthCheckResponse.SERVING
    async with _channel(host.port, certs) as channel:  # trusts only the old CA: the new certificate is refused
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await _check(channel)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    # A connection made before the update stays up: rotation drops nothing in flight.
    assert await _check(old_channel) == health_pb2.HealthCheckResponse.SERVING
    await old_channel.close(None)


async def test_files_rewritten_one_by_one_switch_only_when_key_and_certificate_match(
        tmp_path: Path, make_telemetry: Callable[[str], Telemetry], certs: Certs, new_certs: Certs,
        started: list[ServiceHost], caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "tls"
    folder.mkdir()
    an_hour_ago = time.time_ns() - 3600 * 10**9
    for name, data in _server_files(certs).items():
        (folder / name).write_bytes(data)
        # Issued long before the renewal (file times are coarse: a rewrite within one tick could look unchanged).
        os.utime(folder / name, ns=(an_hour_ago, an_hour_ago))
    host = await _start(folder, make_telemetry)
    started.append(host)
    assert await _presented(host.port, certs) == _der(certs["nlu"])

    new_files = _server_files(new_certs)
    with caplog.at_level(logging.INFO, logger="alice.runtime.tls"):
        (folder / "tls.crt").write_bytes(new_files["tls.crt"])
        # New certificate, old key: the fetcher offers that pair, gRPC refuses it and keeps the previous one.
        assert await _presented(host.port, certs) == _der(certs["nlu"])
    assert [r.message for r in caplog.records if "reloaded" in r.message], "the new certificate was not offered"
    (folder / "tls.key").write_bytes(new_files["tls.key"])
    (folder / "ca.crt").write_bytes(new_files["ca.crt"])
    assert await _presented(host.port, new_certs) == _der(new_certs["nlu"])
    async with _channel(host.port, new_certs) as channel:
        assert await _check(channel) == health_pb2.HealthCheckResponse.SERVING
