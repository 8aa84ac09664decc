"""Server TLS credentials that reload the certificate, key and client CA when their files change on disk."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import grpc

from alice.runtime.config import TlsSettings

log = logging.getLogger(__name__)

# Per file: (device, inode, size, mtime in ns). A Kubernetes Secret volume replaces its files by swapping a
# symlink to a new directory, so the inode changes even where the mtime would not.
_Signature = tuple[tuple[int, int, int, int], ...]


class ReloadingCertificates:
    """A certificate-configuration fetcher for `grpc.dynamic_ssl_server_credentials`.

    gRPC calls it before the TLS handshake of every new connection (from a core thread, holding the GIL), so it
    only stats the files and reads them again when one of them changed: that is how cert-manager renewals and
    Secret volume updates arrive. Connections already open keep the certificate they were set up with.
    """

    def __init__(self, tls: TlsSettings) -> None:
        self._files: tuple[Path, ...] = tuple(
            path for path in (tls.cert_file, tls.key_file, tls.client_ca_file) if path is not None)
        self._tls = tls
        self._signature = self._stat()
        self.initial = self._load()
        if self._stat() != self._signature:  # changed while reading: the next connection reloads
            self._signature = ()

    def __call__(self) -> grpc.ServerCertificateConfiguration | None:
        """A new configuration when a file changed since the last load, else None (keep the current one)."""
        try:
            signature = self._stat()
            if signature == self._signature:
                return None
            config = self._load()
            if self._stat() != signature:
                return None  # caught in the middle of an update; the next connection tries again
        except OSError as error:
            # A file missing or unreadable for a moment (being replaced): keep serving the current certificate.
            log.warning("TLS files not readable, keeping the current certificate: %s", error)
            return None
        self._signature = signature
        log.info("TLS certificate files changed: reloaded %s", ", ".join(str(path) for path in self._files))
        # If the new key does not match the new certificate (e.g. the certificate was copied before the key),
        # gRPC refuses this configuration and keeps the previous one; the key's arrival changes the files again.
        return config

    def _stat(self) -> _Signature:
        signature = []
        for path in self._files:
            status = os.stat(path)
            signature.append((status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns))
        return tuple(signature)

    def _load(self) -> grpc.ServerCertificateConfiguration:
        tls = self._tls
        return grpc.ssl_server_certificate_configuration(
            [(tls.key_file.read_bytes(), tls.cert_file.read_bytes())],
            root_certificates=tls.client_ca_file.read_bytes() if tls.client_ca_file else None,
        )


def server_credentials(tls: TlsSettings) -> grpc.ServerCredentials:
    """TLS (mutual TLS when a client CA is set) whose files are re-read when they change, without a restart."""
    fetcher = ReloadingCertificates(tls)
    # grpc-stubs types the fetcher as never returning None; gRPC documents None as "no change".
    return grpc.dynamic_ssl_server_credentials(
        fetcher.initial, fetcher,  # type: ignore[arg-type]
        require_client_authentication=tls.client_ca_file is not None)
