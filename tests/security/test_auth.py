"""Caller authentication at the real router: API keys and JWTs, every way a credential can be wrong, open health
and reflection, operator roles, and the configuration that decides whether authentication is on."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from security_helpers import AUDIENCE, ISSUER, Metadata, Stack, ask

from alice.router.v1 import router_service_pb2 as pb
from alice.runtime.auth import (
    ApiKeyVerifier,
    AuthError,
    DevCredentials,
    JwtVerifier,
    add_api_key,
    bearer_metadata,
    hash_api_key,
    issue_jwt,
    load_api_keys,
)
from alice.runtime.config import ConfigError
from router_svc.config import Config

TEXT = "Vad är klockan?"


async def rejected(stack: Stack, metadata: Metadata) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await ask(stack.stub(), TEXT, metadata)
    return caught.value


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(stack: Stack, **overrides: Any) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC)
    return {"sub": stack.users["bob"], "iss": ISSUER, "aud": AUDIENCE, "iat": now,
            "exp": now + dt.timedelta(minutes=5)} | overrides


async def test_valid_api_key_and_jwt_are_accepted(stack: Stack) -> None:
    assert (await ask(stack.stub(), TEXT, stack.api_key("bob"))).answer.startswith("Klockan är")
    assert (await ask(stack.stub(), TEXT, stack.jwt("bob"))).answer.startswith("Klockan är")


def _bad_tokens(stack: Stack) -> dict[str, tuple[Metadata, str]]:
    other_key = ec.generate_private_key(ec.SECP256R1())
    public_pem = stack.signing_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    now = dt.datetime.now(dt.UTC)
    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64({**_claims(stack), 'iat': 0, 'exp': 4102444800})}."

    # The classic key-confusion forgery: HS256 "signed" with the verifier's own public key as the secret.
    forged = {"sub": stack.users["alice"], "iss": ISSUER, "aud": AUDIENCE, "exp": 4102444800}
    header_payload = f"{_b64({'alg': 'HS256', 'typ': 'JWT'})}.{_b64(forged)}"
    signature = base64.urlsafe_b64encode(
        hmac.new(public_pem, header_payload.encode(), hashlib.sha256).digest()).rstrip(b"=").decode()
    return {
        "missing": ((), "missing credentials"),
        "not-bearer": ((("authorization", f"Basic {stack.keys['bob']}"),), "must be 'Bearer <token>'"),
        "empty-bearer": ((("authorization", "Bearer "),), "must be 'Bearer <token>'"),
        "unknown-api-key": (bearer_metadata("alice_" + "x" * 43), "unknown API key"),
        "api-key-hash-as-key": (bearer_metadata("alice_" + hash_api_key(stack.keys["bob"])), "unknown API key"),
        "garbage": (bearer_metadata("hello"), "unrecognised credential"),
        "expired": (stack.jwt("bob", ttl_s=-120), "expired"),
        "wrong-issuer": (bearer_metadata(issue_jwt(stack.signing_key, user_id="bob", issuer="https://evil.test",
                                                   audience=AUDIENCE)), "untrusted issuer"),
        "wrong-audience": (bearer_metadata(issue_jwt(stack.signing_key, user_id="bob", issuer=ISSUER,
                                                     audience="another-service")), "another audience"),
        "other-signing-key": (bearer_metadata(issue_jwt(other_key, user_id="bob", issuer=ISSUER, audience=AUDIENCE)),
                              "signature is invalid"),
        "alg-none": (bearer_metadata(unsigned), "algorithm 'none' is not allowed"),
        "hs256-key-confusion": (bearer_metadata(f"{header_payload}.{signature}"), "algorithm 'HS256' is not allowed"),
        "no-expiry": (bearer_metadata(jwt.encode({"sub": "bob", "iss": ISSUER, "aud": AUDIENCE}, stack.signing_key,
                                                 algorithm="ES256")), "lacks the 'exp' claim"),
        "no-subject": (bearer_metadata(jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "exp": now + dt.timedelta(60)},
                                                  stack.signing_key, algorithm="ES256")), "lacks the 'sub' claim"),
        "not-yet-valid": (bearer_metadata(jwt.encode(_claims(stack, nbf=now + dt.timedelta(hours=1)),
                                                     stack.signing_key, algorithm="ES256")), "not valid yet"),
        "tampered-subject": (bearer_metadata(_tamper(issue_jwt(stack.signing_key, user_id=stack.users["bob"],
                                                               issuer=ISSUER, audience=AUDIENCE),
                                                     stack.users["alice"])), "signature is invalid"),
    }


def _tamper(token: str, subject: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = subject
    return f"{header}.{_b64(claims)}.{signature}"


BAD = ["missing", "not-bearer", "empty-bearer", "unknown-api-key", "api-key-hash-as-key", "garbage", "expired",
       "wrong-issuer", "wrong-audience", "other-signing-key", "alg-none", "hs256-key-confusion", "no-expiry",
       "no-subject", "not-yet-valid", "tampered-subject"]


@pytest.mark.parametrize("case", BAD)
async def test_bad_credentials_are_unauthenticated_with_a_clear_message(stack: Stack, case: str) -> None:
    metadata, message = _bad_tokens(stack)[case]
    error = await rejected(stack, metadata)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert message in (error.details() or "")
    for _, value in metadata:  # the reply never echoes the credential
        token = value.partition(" ")[2]
        assert not token or token not in (error.details() or "")


async def test_clock_skew_within_the_leeway_is_accepted(stack: Stack) -> None:
    # Expired 10 s ago; the router allows 30 s of clock skew (AUTH_LEEWAY_S).
    assert (await ask(stack.stub(), TEXT, stack.jwt("bob", ttl_s=-10))).answer


async def test_every_rpc_but_health_and_reflection_needs_a_credential(stack: Stack) -> None:
    channel = stack.channel()
    health = health_pb2_grpc.HealthStub(channel)
    assert (await health.Check(health_pb2.HealthCheckRequest(), timeout=5)).status == \
        health_pb2.HealthCheckResponse.SERVING
    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
    replies = [r async for r in reflection.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5)]
    assert any(s.name == "alice.router.v1.RouterService" for s in replies[0].list_services_response.service)
    stub, monitoring = stack.stub(), stack.monitoring()
    calls: list[Awaitable[Any]] = [
        stub.Ask(pb.AskRequest(text=TEXT), timeout=5),
        stub.Forget(pb.ForgetRequest(), timeout=5),
        monitoring.GetStatus(pb.GetStatusRequest(), timeout=5),
        monitoring.ResetStats(pb.ResetStatsRequest(), timeout=5),
    ]
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in stub.AskStream(pb.AskStreamRequest(request=pb.AskRequest(text=TEXT)), timeout=5):
            pass
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_status_is_for_any_caller_and_reset_only_for_admins(stack: Stack) -> None:
    monitoring = stack.monitoring()
    await monitoring.GetStatus(pb.GetStatusRequest(), metadata=stack.api_key("bob"), timeout=5)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await monitoring.ResetStats(pb.ResetStatsRequest(), metadata=stack.jwt("bob"), timeout=5)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    await monitoring.ResetStats(pb.ResetStatsRequest(), metadata=stack.api_key("ops"), timeout=5)


# --- configuration and verifiers (no server) ------------------------------------------------------------------


def test_authentication_is_on_unless_explicitly_off(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="AUTH_MODE=none explicitly"):
        Config.from_env({})
    assert not Config.from_env({"AUTH_MODE": "none"}).auth.enabled
    keys = tmp_path / "keys.json"
    add_api_key(keys, "u1")
    assert Config.from_env({"AUTH_API_KEYS_FILE": str(keys)}).auth.mode == "api_key"


@pytest.mark.parametrize(("env", "message"), [
    ({"AUTH_MODE": "jwt", "AUTH_ISSUER": "i", "AUTH_AUDIENCE": "a"}, "exactly one of AUTH_JWKS_FILE"),
    ({"AUTH_MODE": "jwt", "AUTH_JWKS_FILE": "/nonexistent.json", "AUTH_ISSUER": "i", "AUTH_AUDIENCE": "a"},
     "does not exist"),
    ({"AUTH_MODE": "jwt", "AUTH_JWKS_FILE": "/x.json"}, "AUTH_ISSUER and AUTH_AUDIENCE"),
    ({"AUTH_MODE": "none", "AUTH_JWT_ALGORITHMS": "none"}, "not allowed"),
    ({"AUTH_MODE": "none", "AUTH_JWT_ALGORITHMS": "HS256"}, "not allowed"),
    ({"AUTH_MODE": "none", "GRPC_HOST": "0.0.0.0"}, "is not loopback"),
    ({"AUTH_MODE": "password"}, "not one of"),
], ids=["jwt-without-keys", "missing-jwks", "no-issuer", "alg-none", "alg-hmac", "public-plaintext", "bad-mode"])
def test_invalid_auth_settings_fail_at_start(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Config.from_env(env)


def test_plaintext_off_loopback_only_when_explicit() -> None:
    config = Config.from_env({"AUTH_MODE": "none", "GRPC_HOST": "0.0.0.0", "ALLOW_PLAINTEXT": "true"})
    assert config.server.tls is None


def test_api_keys_are_stored_only_as_hashes(tmp_path: Path) -> None:
    keys_file = tmp_path / "keys.json"
    key = add_api_key(keys_file, "anna", name="phone")
    assert key not in keys_file.read_text() and hash_api_key(key) in keys_file.read_text()
    assert keys_file.stat().st_mode & 0o777 == 0o600
    assert ApiKeyVerifier(load_api_keys(keys_file)).verify(key).user_id == "anna"
    with pytest.raises(AuthError):
        ApiKeyVerifier(load_api_keys(keys_file)).verify(key[:-1] + ("A" if key[-1] != "A" else "B"))


def test_jwks_keys_are_picked_by_kid_and_bound_to_their_algorithm(tmp_path: Path) -> None:
    ec_key, rsa_key = ec.generate_private_key(ec.SECP256R1()), rsa.generate_private_key(65537, 2048)
    jwks = {"keys": [
        {**json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec_key.public_key())), "kid": "ec1", "alg": "ES256"},
        {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key())), "kid": "rsa1", "alg": "RS256"},
    ]}
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks))
    verifier = JwtVerifier.from_files(issuer=ISSUER, audience=AUDIENCE, jwks_file=path)
    for key, kid, algorithm in ((ec_key, "ec1", "ES256"), (rsa_key, "rsa1", "RS256")):
        token = issue_jwt(key, user_id="anna", issuer=ISSUER, audience=AUDIENCE, algorithm=algorithm, key_id=kid)
        assert verifier.verify(token).user_id == "anna"
    wrong_kid = issue_jwt(ec_key, user_id="anna", issuer=ISSUER, audience=AUDIENCE, key_id="rsa1")
    with pytest.raises(AuthError, match="does not match its key"):
        verifier.verify(wrong_kid)
    with pytest.raises(AuthError, match="key id not found"):
        verifier.verify(issue_jwt(ec_key, user_id="anna", issuer=ISSUER, audience=AUDIENCE, key_id="gone"))


def test_dev_credentials_keep_secrets_private(tmp_path: Path) -> None:
    creds = DevCredentials.ensure(tmp_path / ".alice")
    for path in (creds.key_file, creds.keys_file, creds.signing_key_file):
        assert path.stat().st_mode & 0o777 == 0o600, path
    assert creds.api_key() not in creds.keys_file.read_text()
    again = DevCredentials.ensure(tmp_path / ".alice")
    assert again.api_key() == creds.api_key()  # reused, not rotated on every start
    verifier = ApiKeyVerifier.from_file(creds.keys_file)
    assert verifier.verify(creds.api_key()).user_id == "demo"
    token = creds.token_for("u7")
    jwt_verifier = JwtVerifier.from_files(issuer="alice-dev", audience="alice-router",
                                          public_key_file=creds.public_key_file)
    assert jwt_verifier.verify(token).user_id == "u7"


def test_a_verified_jwt_is_remembered_but_still_expires_on_time(monkeypatch: pytest.MonkeyPatch) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    now = [dt.datetime.now(dt.UTC).timestamp()]
    verifier = JwtVerifier(issuer=ISSUER, audience=AUDIENCE, public_key=key.public_key(), leeway_s=30,
                           cache_size=2, clock=lambda: now[0])
    decodes = []
    real_decode = jwt.decode
    monkeypatch.setattr(jwt, "decode", lambda *a, **k: decodes.append(1) or real_decode(*a, **k))
    token = issue_jwt(key, user_id="anna", issuer=ISSUER, audience=AUDIENCE, ttl_s=60)
    assert [verifier.verify(token).user_id for _ in range(3)] == ["anna"] * 3
    assert len(decodes) == 1  # the signature was checked once
    tampered = _tamper(token, "bertil")  # a different token string: never answered from the cache
    with pytest.raises(AuthError):
        verifier.verify(tampered)
    now[0] += 60 + 29  # inside the leeway: still valid
    assert verifier.verify(token).user_id == "anna"
    now[0] += 2  # past expiry plus leeway: refused without a new signature check
    with pytest.raises(AuthError, match="expired"):
        verifier.verify(token)
    others = [issue_jwt(key, user_id=f"u{i}", issuer=ISSUER, audience=AUDIENCE, ttl_s=3600) for i in range(3)]
    now[0] = dt.datetime.now(dt.UTC).timestamp()
    for other in others:
        verifier.verify(other)
    assert len(verifier._cache) == 2  # bounded, least recently used out
