"""Caller authentication: bearer tokens (signed JWTs or hashed API keys) checked by a gRPC server interceptor."""

from __future__ import annotations

import contextvars
import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import grpc
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

log = logging.getLogger(__name__)

OPEN_METHOD_PREFIXES: tuple[str, ...] = ("/grpc.health.v1.Health/", "/grpc.reflection.")
"""Methods anyone may call without a credential: probes and grpcurl's discovery reveal no user data."""

ASYMMETRIC_ALGORITHMS: frozenset[str] = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"})
"""The only JWT algorithms a verifier may allow: never "none", and never HMAC (a shared secret would let every
service that verifies tokens also mint them, and an HMAC allow-list invites key-confusion attacks)."""
DEFAULT_JWT_ALGORITHMS: tuple[str, ...] = ("RS256", "ES256", "EdDSA")
API_KEY_PREFIX = "alice_"
"""Every API key starts with this, so a leaked key is recognisable (secret scanners) and told apart from a JWT."""
ADMIN_ROLE = "admin"
"""Role needed for operator RPCs that change shared state (MonitoringService.ResetStats)."""
MAX_TOKEN_CHARS = 8192

_identity: contextvars.ContextVar[Identity | None] = contextvars.ContextVar("alice_identity", default=None)


@dataclass(frozen=True)
class Identity:
    """A verified caller: the user every personal operation of the call acts for."""

    user_id: str
    method: str
    """"api_key" or "jwt"."""
    roles: frozenset[str] = frozenset()
    credential: str = ""
    """Which credential (API key name or JWT issuer), for operators; never the secret."""


def current_identity() -> Identity | None:
    """The caller verified by AuthInterceptor for the RPC being served; None when authentication is off."""
    return _identity.get()


class AuthError(Exception):
    """A credential is missing, malformed, unknown, expired or not for us; the message is safe to return."""


class Verifier(Protocol):
    """Checks one kind of bearer token."""

    def accepts(self, token: str) -> bool:
        """Whether the token has this verifier's shape (cheap; no cryptography)."""
        ...

    def verify(self, token: str) -> Identity:
        """The caller the token proves; AuthError when it proves nothing."""
        ...


def _check_user_id(user_id: object, where: str) -> str:
    if not isinstance(user_id, str) or not user_id.strip():
        raise AuthError(f"{where} names no user")
    if len(user_id) > 128 or any(ord(c) < 32 or ord(c) == 127 for c in user_id):
        raise AuthError(f"{where} names an invalid user id")
    return user_id


# --- API keys ------------------------------------------------------------------------------------------------


def hash_api_key(key: str) -> str:
    """The stored form of an API key: SHA-256, hex. Keys are 256-bit random, so a plain hash suffices (no
    password hashing needed: there is nothing to guess from the hash of a random secret)."""
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class ApiKeyEntry:
    sha256: str
    user_id: str
    name: str = ""
    roles: frozenset[str] = frozenset()


def load_api_keys(path: Path) -> list[ApiKeyEntry]:
    """Read an API keys file: {"keys": [{"sha256": hex, "user_id": str, "name": str, "roles": [str]}]}."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read API keys from {path}: {error}") from None
    raw = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(raw, list):
        raise ValueError(f"{path}: expected an object with a list under \"keys\"")
    entries = []
    for number, item in enumerate(raw, start=1):
        if not isinstance(item, dict):
            raise ValueError(f"{path}: key {number} is not an object")
        digest, user = item.get("sha256"), item.get("user_id")
        if not isinstance(digest, str) or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ValueError(f"{path}: key {number} has no lower-case hex SHA-256 under \"sha256\"")
        try:
            _check_user_id(user, f"key {number}")
        except AuthError as error:
            raise ValueError(f"{path}: {error}") from None
        roles = item.get("roles", [])
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise ValueError(f"{path}: key {number} has roles that are not a list of strings")
        entries.append(ApiKeyEntry(digest, str(user), str(item.get("name", "")), frozenset(roles)))
    return entries


class ApiKeyVerifier:
    """Static API keys, stored only as SHA-256 hashes, each mapped to one user id."""

    def __init__(self, entries: Sequence[ApiKeyEntry]) -> None:
        self._entries = list(entries)

    @classmethod
    def from_file(cls, path: Path) -> ApiKeyVerifier:
        return cls(load_api_keys(path))

    def accepts(self, token: str) -> bool:
        return token.startswith(API_KEY_PREFIX)

    def verify(self, token: str) -> Identity:
        digest = hash_api_key(token)
        found: ApiKeyEntry | None = None
        # Compare against every entry in constant time per entry, without stopping at the first match.
        for entry in self._entries:
            if hmac.compare_digest(entry.sha256, digest) and found is None:
                found = entry
        if found is None:
            raise AuthError("unknown API key")
        return Identity(found.user_id, "api_key", found.roles, found.name)


def new_api_key() -> str:
    """A fresh random API key (256 bits)."""
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def add_api_key(keys_file: Path, user_id: str, *, name: str = "", roles: Iterable[str] = ()) -> str:
    """Create an API key for `user_id`, append its hash to `keys_file` (created 0600), return the plaintext once."""
    _check_user_id(user_id, "the key")
    key = new_api_key()
    entries: list[dict[str, Any]] = []
    if keys_file.exists():
        load_api_keys(keys_file)  # refuse to extend a malformed file
        entries = json.loads(keys_file.read_text(encoding="utf-8"))["keys"]
    entries.append({"sha256": hash_api_key(key), "user_id": user_id, "name": name, "roles": sorted(roles)})
    _write_private(keys_file, json.dumps({"keys": entries}, indent=2) + "\n")
    return key


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (created with 0600, never world-readable in between)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.unlink(missing_ok=True)  # a leftover could have other permissions; O_EXCL then creates it 0600
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(temporary, path)


# --- JWTs ----------------------------------------------------------------------------------------------------


def check_algorithms(algorithms: Iterable[str]) -> tuple[str, ...]:
    """The allow-list, validated: asymmetric algorithms only."""
    chosen = tuple(algorithms)
    bad = [a for a in chosen if a not in ASYMMETRIC_ALGORITHMS]
    if bad or not chosen:
        raise ValueError(f"JWT algorithms {', '.join(bad) or '(none)'} not allowed; "
                         f"use some of {', '.join(sorted(ASYMMETRIC_ALGORITHMS))}")
    return chosen


class JwtVerifier:
    """Signed JWTs (PyJWT): signature by a configured key, issuer, audience, expiry (with leeway) and subject.

    A token that verified once is remembered (up to `cache_size` tokens, least recently used out) with its
    validity window, so a client reusing its token costs a dictionary lookup instead of an ECDSA verification
    (0.26-0.34 ms, the largest part of the router's own time: docs/benchmarks.md). The window is checked on
    every use, so a remembered token still expires on time; a token is bound to the keys it was checked with.
    """

    def __init__(self, *, issuer: str, audience: str, algorithms: Iterable[str] = DEFAULT_JWT_ALGORITHMS,
                 leeway_s: float = 30.0, jwks: jwt.PyJWKSet | None = None, public_key: Any = None,
                 cache_size: int = 4096, clock: Callable[[], float] = time.time) -> None:
        if (jwks is None) == (public_key is None):
            raise ValueError("a JwtVerifier needs exactly one of a JWKS or a public key")
        if not issuer or not audience:
            raise ValueError("a JwtVerifier needs an issuer and an audience")
        self._issuer, self._audience = issuer, audience
        self._algorithms = check_algorithms(algorithms)
        self._leeway = dt.timedelta(seconds=leeway_s)
        self._jwks = jwks
        self._public_key = public_key
        self._cache: OrderedDict[str, tuple[Identity, float, float]] = OrderedDict()
        self._cache_size = cache_size
        self._clock = clock

    @classmethod
    def from_files(cls, *, issuer: str, audience: str, jwks_file: Path | None = None,
                   public_key_file: Path | None = None, algorithms: Iterable[str] = DEFAULT_JWT_ALGORITHMS,
                   leeway_s: float = 30.0) -> JwtVerifier:
        """Keys from a JWKS document or a PEM public key; ValueError when the file is unusable."""
        try:
            if jwks_file is not None:
                return cls(issuer=issuer, audience=audience, algorithms=algorithms, leeway_s=leeway_s,
                           jwks=jwt.PyJWKSet.from_json(jwks_file.read_text(encoding="utf-8")))
            if public_key_file is None:
                raise ValueError("no JWKS file and no public key file")
            key = serialization.load_pem_public_key(public_key_file.read_bytes())
        except (OSError, jwt.PyJWKSetError, jwt.InvalidKeyError) as error:
            raise ValueError(f"cannot load JWT verification keys: {error}") from None
        return cls(issuer=issuer, audience=audience, algorithms=algorithms, leeway_s=leeway_s, public_key=key)

    def accepts(self, token: str) -> bool:
        return token.count(".") == 2

    def _key(self, token: str) -> tuple[Any, list[str]]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError:
            raise AuthError("malformed JWT") from None
        algorithm = header.get("alg")
        if algorithm not in self._algorithms:
            raise AuthError(f"JWT algorithm {algorithm!r} is not allowed")
        if self._jwks is None:
            return self._public_key, [algorithm]
        kid = header.get("kid")
        keys = [k for k in self._jwks.keys if k.key_id == kid] if kid else list(self._jwks.keys)
        if len(keys) != 1:
            raise AuthError("JWT key id not found" if kid else "JWT has no key id (kid)")
        jwk = keys[0]
        # A key is used with its own algorithm only ("alg" in the JWKS, else the one its type implies).
        if jwk.algorithm_name != algorithm:
            raise AuthError("JWT algorithm does not match its key")
        return jwk.key, [algorithm]

    def verify(self, token: str) -> Identity:
        remembered = self._cache.get(token)
        if remembered is not None:
            identity, not_before, expires = remembered
            now = self._clock()
            leeway = self._leeway.total_seconds()
            if now > expires + leeway:
                del self._cache[token]
                raise AuthError("JWT has expired")
            if now >= not_before - leeway:
                self._cache.move_to_end(token)
                return identity
        identity, not_before, expires = self._verify(token)
        self._cache[token] = (identity, not_before, expires)
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return identity

    def _verify(self, token: str) -> tuple[Identity, float, float]:
        key, algorithms = self._key(token)
        try:
            claims = jwt.decode(token, key, algorithms=algorithms, audience=self._audience, issuer=self._issuer,
                                leeway=self._leeway, options={"require": ["exp", "iss", "aud", "sub"]})
        except jwt.ExpiredSignatureError:
            raise AuthError("JWT has expired") from None
        except jwt.ImmatureSignatureError:
            raise AuthError("JWT is not valid yet") from None
        except jwt.InvalidAudienceError:
            raise AuthError("JWT is for another audience") from None
        except jwt.InvalidIssuerError:
            raise AuthError("JWT is from an untrusted issuer") from None
        except jwt.MissingRequiredClaimError as error:
            raise AuthError(f"JWT lacks the {error.claim!r} claim") from None
        except jwt.InvalidSignatureError:
            raise AuthError("JWT signature is invalid") from None
        except jwt.PyJWTError:
            raise AuthError("JWT is invalid") from None
        roles = claims.get("roles", [])
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise AuthError("JWT roles claim is not a list of strings")
        identity = Identity(_check_user_id(claims["sub"], "the JWT subject"), "jwt", frozenset(roles), self._issuer)
        return identity, float(claims.get("nbf", claims.get("iat", 0)) or 0), float(claims["exp"])


def issue_jwt(private_key: Any, *, user_id: str, issuer: str, audience: str, ttl_s: float = 3600.0,
              roles: Iterable[str] = (), algorithm: str = "ES256", key_id: str | None = None) -> str:
    """Sign a token for `user_id` (what an identity provider does; used for local development and tests)."""
    now = dt.datetime.now(dt.UTC)
    claims: dict[str, Any] = {"sub": user_id, "iss": issuer, "aud": audience, "iat": now,
                              "exp": now + dt.timedelta(seconds=ttl_s)}
    if roles:
        claims["roles"] = sorted(roles)
    headers = {"kid": key_id} if key_id else None
    return jwt.encode(claims, private_key, algorithm=algorithm, headers=headers)


class VerifierChain:
    """Several verifiers behind one interface: the first whose token shape matches decides."""

    def __init__(self, verifiers: Sequence[Verifier]) -> None:
        if not verifiers:
            raise ValueError("a VerifierChain needs at least one verifier")
        self._verifiers = list(verifiers)

    def accepts(self, token: str) -> bool:
        return any(v.accepts(token) for v in self._verifiers)

    def verify(self, token: str) -> Identity:
        for verifier in self._verifiers:
            if verifier.accepts(token):
                return verifier.verify(token)
        raise AuthError("unrecognised credential (expected an API key or a JWT)")


# --- the interceptor -----------------------------------------------------------------------------------------


def bearer_token(metadata: Iterable[tuple[str, str | bytes]] | None) -> str:
    """The token of the `authorization: Bearer …` metadata entry; AuthError when absent or malformed."""
    values = [v for k, v in (metadata or ()) if k.lower() == "authorization"]
    if not values:
        raise AuthError("missing credentials: send metadata 'authorization: Bearer <API key or JWT>'")
    if len(values) > 1:
        raise AuthError("more than one authorization header")
    value = values[0].decode() if isinstance(values[0], bytes) else values[0]
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("authorization metadata must be 'Bearer <token>'")
    token = token.strip()
    if len(token) > MAX_TOKEN_CHARS:
        raise AuthError("bearer token is too long")
    return token


def is_open_method(method: str, prefixes: Sequence[str] = OPEN_METHOD_PREFIXES) -> bool:
    return any(method.startswith(p) for p in prefixes)


Behaviour = Callable[..., Any]


def wrap_handler(handler: grpc.RpcMethodHandler[Any, Any],
                 around: Callable[[grpc.aio.ServicerContext[Any, Any]], Awaitable[contextvars.Token[Any] | None]],
                 after: Callable[[contextvars.Token[Any] | None], None] = lambda _: None,
                 ) -> grpc.RpcMethodHandler[Any, Any]:
    """A handler whose behaviour first awaits `around(context)` (which may abort the call) in the RPC's own task,
    so context variables it sets are visible to the servicer; `after` undoes them for unary calls."""

    def unary(behaviour: Behaviour) -> Behaviour:
        async def wrapped(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            token = await around(context)
            try:
                return await behaviour(request, context)
            finally:
                after(token)

        return wrapped

    def streaming(behaviour: Behaviour) -> Behaviour:
        async def wrapped(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            # The RPC's task ends with the stream, and with it the variable; resetting inside an async generator
            # could run in another context when the generator is closed late.
            await around(context)
            async for item in behaviour(request, context):
                yield item

        return wrapped

    options = {"request_deserializer": handler.request_deserializer,
               "response_serializer": handler.response_serializer}
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(unary(handler.unary_unary), **options)
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(streaming(handler.unary_stream), **options)
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(unary(handler.stream_unary), **options)
    if handler.stream_stream is not None:
        return grpc.stream_stream_rpc_method_handler(streaming(handler.stream_stream), **options)
    return handler


class AuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Requires a verified bearer token on every method except health and reflection.

    Missing or bad credentials end the call with UNAUTHENTICATED and a message saying what was wrong (never the
    token). The verified Identity is available to the servicer through `current_identity()`.
    """

    def __init__(self, verifier: Verifier, open_prefixes: Sequence[str] = OPEN_METHOD_PREFIXES) -> None:
        self._verifier = verifier
        self._open = tuple(open_prefixes)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or is_open_method(method, self._open):
            return handler
        metadata = handler_call_details.invocation_metadata

        async def authenticate(context: grpc.aio.ServicerContext[Any, Any]) -> contextvars.Token[Any] | None:
            try:
                identity = self._verifier.verify(bearer_token(metadata))
            except AuthError as error:
                log.info("unauthenticated call to %s: %s", method, error)
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, str(error))
            return _identity.set(identity)

        def reset(token: contextvars.Token[Any] | None) -> None:
            if token is not None:
                _identity.reset(token)

        return wrap_handler(handler, authenticate, reset)


# --- local development credentials ---------------------------------------------------------------------------

DEV_ISSUER = "alice-dev"
DEV_AUDIENCE = "alice-router"
DEV_USER = "demo"


@dataclass(frozen=True)
class DevCredentials:
    """Credentials of a local mesh (never for deployment): an API key for the demo user and a local signing key
    that plays the identity provider, so local evaluations can act for the many users in their data files.

    Files in `directory` (all 0600 except the public key): api-keys.json (hashes only), dev-key (the demo
    user's plaintext API key), dev-jwt-signing.pem (EC P-256 private key), dev-jwt-public.pem.
    """

    directory: Path
    user_id: str = DEV_USER
    _cache: dict[str, tuple[float, str]] = field(default_factory=dict, compare=False, repr=False)

    @property
    def keys_file(self) -> Path:
        return self.directory / "api-keys.json"

    @property
    def key_file(self) -> Path:
        return self.directory / "dev-key"

    @property
    def signing_key_file(self) -> Path:
        return self.directory / "dev-jwt-signing.pem"

    @property
    def public_key_file(self) -> Path:
        return self.directory / "dev-jwt-public.pem"

    @classmethod
    def ensure(cls, directory: Path) -> DevCredentials:
        """Load the credentials in `directory`, creating whatever is missing (the dev key is printed nowhere)."""
        creds = cls(directory)
        if not creds.key_file.exists() or not creds.keys_file.exists():
            key = add_api_key(creds.keys_file, creds.user_id, name="dev", roles=[ADMIN_ROLE])
            _write_private(creds.key_file, key + "\n")
        if not creds.signing_key_file.exists() or not creds.public_key_file.exists():
            private = ec.generate_private_key(ec.SECP256R1())
            _write_private(creds.signing_key_file, private.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption()).decode())
            creds.public_key_file.write_bytes(private.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        return creds

    @classmethod
    def load(cls, directory: Path) -> DevCredentials | None:
        creds = cls(directory)
        if creds.key_file.exists() and creds.signing_key_file.exists():
            return creds
        return None

    def api_key(self) -> str:
        return self.key_file.read_text(encoding="utf-8").strip()

    def token_for(self, user_id: str, ttl_s: float = 3600.0) -> str:
        """A JWT for `user_id` signed by the local signing key (reused until 5 minutes before it expires)."""
        cached = self._cache.get(user_id)
        if cached is not None and cached[0] > time.time() + 300:
            return cached[1]
        private = serialization.load_pem_private_key(self.signing_key_file.read_bytes(), password=None)
        token = issue_jwt(private, user_id=user_id, issuer=DEV_ISSUER, audience=DEV_AUDIENCE, ttl_s=ttl_s)
        self._cache[user_id] = (time.time() + ttl_s, token)
        return token

    def bearer_for(self, user_id: str) -> str:
        """The demo user's API key, or a dev-signed JWT for any other user."""
        return self.api_key() if user_id == self.user_id else self.token_for(user_id)

    def router_env(self) -> dict[str, str]:
        """Router settings that accept these credentials."""
        return {"AUTH_MODE": "both", "AUTH_API_KEYS_FILE": str(self.keys_file.resolve()),
                "AUTH_JWT_PUBLIC_KEY_FILE": str(self.public_key_file.resolve()),
                "AUTH_ISSUER": DEV_ISSUER, "AUTH_AUDIENCE": DEV_AUDIENCE}


def bearer_metadata(token: str) -> tuple[tuple[str, str], ...]:
    """Call metadata carrying `token`."""
    return (("authorization", f"Bearer {token}"),)
