"""Client channels: deadlines on every call, retries only on UNAVAILABLE under a retry budget, tracing."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import grpc

from alice.runtime.config import ClientSettings
from alice.runtime.telemetry import Telemetry
from alice.runtime.tracing import client_interceptors


def service_config(service_names: Sequence[str], retry_attempts: int) -> str:
    """gRPC service config: round-robin, retry on UNAVAILABLE only, and throttling as the retry budget.

    `retryThrottling` (gRFC A6) keeps a token bucket per channel: each failure costs one token, each
    success returns `tokenRatio`; retries stop while the bucket is below half, so retries cannot
    multiply load on a sick downstream.
    """
    config: dict[str, Any] = {
        "loadBalancingConfig": [{"round_robin": {}}],
        "methodConfig": [
            {
                "name": [{"service": name} for name in service_names],
                "retryPolicy": {
                    "maxAttempts": max(2, retry_attempts),
                    "initialBackoff": "0.01s",
                    "maxBackoff": "0.1s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ],
        "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1},
    }
    if retry_attempts <= 1:
        del config["methodConfig"][0]["retryPolicy"]
    return json.dumps(config)


class _DefaultDeadline(
    grpc.aio.UnaryUnaryClientInterceptor,  # type: ignore[type-arg]
    grpc.aio.UnaryStreamClientInterceptor,  # type: ignore[type-arg]
):
    """Gives every call a deadline: a call without one gets the configured default."""

    def __init__(self, timeout_s: float) -> None:
        self._timeout_s = timeout_s

    def _with_deadline(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        if details.timeout is not None:
            return details
        return grpc.aio.ClientCallDetails(
            details.method, self._timeout_s, details.metadata, details.credentials, details.wait_for_ready
        )

    async def intercept_unary_unary(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        return await continuation(self._with_deadline(details), request)

    async def intercept_unary_stream(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        return await continuation(self._with_deadline(details), request)


def open_channel(
    target: str,
    service_names: Sequence[str],
    settings: ClientSettings,
    telemetry: Telemetry,
    extra_interceptors: Sequence[grpc.aio.ClientInterceptor] = (),
) -> grpc.aio.Channel:
    """Open an asyncio channel to `target` with our defaults; the caller closes it."""
    options = [
        ("grpc.service_config", service_config(service_names, settings.retry_attempts)),
        ("grpc.enable_retries", 1),
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 5_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.dns_min_time_between_resolutions_ms", 5_000),
        # gRPC's reconnect back-off grows to 120 s by default: after a 30 s outage the router kept using the
        # NLU fallback for 12 s after the NLU was back (measured, docs/bench.md). Cap it at 2 s; breakers and
        # the retry budget already stop a dead peer from costing anything per request.
        ("grpc.initial_reconnect_backoff_ms", 250),
        ("grpc.max_reconnect_backoff_ms", 2_000),
    ]
    interceptors: list[Any] = [
        *client_interceptors(telemetry.provider),
        _DefaultDeadline(settings.default_timeout_s),
        *extra_interceptors,
    ]
    if settings.tls_ca_file is None:
        return grpc.aio.insecure_channel(target, options=options, interceptors=interceptors)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=settings.tls_ca_file.read_bytes(),
        private_key=settings.tls_key_file.read_bytes() if settings.tls_key_file else None,
        certificate_chain=settings.tls_cert_file.read_bytes() if settings.tls_cert_file else None,
    )
    return grpc.aio.secure_channel(target, credentials, options=options, interceptors=interceptors)
