"""Generate a local CA, per-service server certificates and the router's client certificate (for tests and dev).

Two CAs, on purpose:
  ca.pem         signs the server certificates; clients trust it to check whom they dial (TLS_CA_FILE).
  client-ca.pem  signs only the router's client certificate; internal services trust it for client
                 certificates (TLS_CLIENT_CA_FILE), so with mTLS on they accept the router and nobody else,
                 not even another service holding a valid server certificate.

Usage: .venv/bin/python scripts/gen_certs.py --out .alice/certs [--namespace alice] [--days 30]
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import os
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SERVICES = ("router", "nlu", "cache", "llm")
ROUTER_CLIENT = "alice-router"


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Alice mesh (local)"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _ca(common_name: str, days: int) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name)).issuer_name(_name(common_name))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _leaf(common_name: str, ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, days: int, *,
          dns: Sequence[str] = (), ips: Sequence[str] = (), client: bool = False,
          ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name)).issuer_name(ca_cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return key, builder.sign(ca_key, hashes.SHA256())


def service_names(service: str, namespace: str) -> list[str]:
    """DNS names a service is dialled by: loopback, the k8s Service and headless Service, short and qualified."""
    names = ["localhost", service, f"{service}-headless"]
    for base in (service, f"{service}-headless"):
        names += [f"{base}.{namespace}", f"{base}.{namespace}.svc", f"{base}.{namespace}.svc.cluster.local"]
    return names


def generate(out: Path, *, namespace: str = "alice", days: int = 30,
             services: Sequence[str] = SERVICES) -> dict[str, Path]:
    """Write every file into `out` and return their paths by name (e.g. "ca", "nlu", "nlu-key")."""
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}

    def save(label: str, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> None:
        paths[label], paths[f"{label}-key"] = out / f"{label}.pem", out / f"{label}-key.pem"
        _write_cert(paths[label], cert)
        _write_key(paths[f"{label}-key"], key)

    ca_key, ca_cert = _ca("Alice local server CA", days)
    save("ca", ca_key, ca_cert)
    client_ca_key, client_ca_cert = _ca("Alice local client CA", days)
    save("client-ca", client_ca_key, client_ca_cert)
    for service in services:
        save(service, *_leaf(f"alice-{service}", ca_key, ca_cert, days, dns=service_names(service, namespace),
                             ips=("127.0.0.1", "::1")))
    save("router-client", *_leaf(ROUTER_CLIENT, client_ca_key, client_ca_cert, days, client=True))
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(".alice") / "certs", help="output folder")
    parser.add_argument("--namespace", default="alice", help="Kubernetes namespace for the service DNS names")
    parser.add_argument("--days", type=int, default=30, help="validity in days (default 30)")
    args = parser.parse_args(argv)
    paths = generate(args.out, namespace=args.namespace, days=args.days)
    for label, path in paths.items():
        print(f"{label:<18} {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
