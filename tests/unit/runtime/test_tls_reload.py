"""The certificate fetcher behind dynamic TLS credentials: reload only when a file changed, never fail a handshake."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import grpc
import pytest

from alice.runtime.config import TlsSettings
from alice.runtime.tls import ReloadingCertificates, server_credentials


@pytest.fixture
def tls(tmp_path: Path) -> TlsSettings:
    # gRPC parses the PEM only when it builds the handshaker, so any bytes do for the fetcher's logic.
    for name in ("tls.crt", "tls.key", "ca.crt"):
        (tmp_path / name).write_bytes(b"first " + name.encode())
    return TlsSettings(tmp_path / "tls.crt", tmp_path / "tls.key", tmp_path / "ca.crt")


def _replace(path: Path, data: bytes) -> None:
    """Write a new file and rename it over the old one (new inode), as an atomic update does."""
    fresh = path.with_name(path.name + ".new")
    fresh.write_bytes(data)
    os.replace(fresh, path)


def test_unchanged_files_keep_the_current_configuration(tls: TlsSettings) -> None:
    fetcher = ReloadingCertificates(tls)
    assert isinstance(fetcher.initial, grpc.ServerCertificateConfiguration)
    assert fetcher() is None and fetcher() is None


@pytest.mark.parametrize("changed", ["tls.crt", "tls.key", "ca.crt"], ids=["cert", "key", "client-ca"])
def test_a_changed_file_gives_a_new_configuration_once(tls: TlsSettings, changed: str) -> None:
    fetcher = ReloadingCertificates(tls)
    _replace(tls.cert_file.with_name(changed), b"second")
    assert isinstance(fetcher(), grpc.ServerCertificateConfiguration)
    assert fetcher() is None


def test_a_missing_file_keeps_the_current_certificate_until_it_is_back(
        tls: TlsSettings, caplog: pytest.LogCaptureFixture) -> None:
    fetcher = ReloadingCertificates(tls)
    tls.key_file.unlink()
    with caplog.at_level(logging.WARNING, logger="alice.runtime.tls"):
        assert fetcher() is None
    assert "keeping the current certificate" in caplog.text
    tls.key_file.write_bytes(b"second key")
    assert isinstance(fetcher(), grpc.ServerCertificateConfiguration)


def test_without_a_client_ca_only_cert_and_key_are_watched(tmp_path: Path) -> None:
    for name in ("tls.crt", "tls.key"):
        (tmp_path / name).write_bytes(b"x")
    settings = TlsSettings(tmp_path / "tls.crt", tmp_path / "tls.key")
    fetcher = ReloadingCertificates(settings)
    assert fetcher() is None
    assert isinstance(server_credentials(settings), grpc.ServerCredentials)
