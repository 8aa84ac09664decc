"""What the cache may keep, for how long, for whom, and how long a failure is remembered."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from alice.taxonomy import INTENTS, NEVER_CACHE, is_personal

TEXT_DECIDES: frozenset[str] = frozenset({"info.query", "memory.query"})
"""Intents without slots that decide the answer: the question's content words key L1, and L2 may match."""

NAME_SENSITIVE: frozenset[str] = frozenset({"calendar.list"})
"""Slot-keyed intents whose text may name a person no slot holds ("har jag möte med Erik på fredag"): names
in the text join the L1 key, so "med Sara" is not answered from "med Erik"."""

DEFAULT_TTLS_S: Mapping[str, int] = {
    "greeting.hello": 3600,
    "weather.lookup": 15 * 60,
    "calendar.list": 5 * 60,
    "memory.query": 60 * 60,
    "info.query": 24 * 60 * 60,
}
"""Seconds an answer stays valid; intents in NEVER_CACHE have none."""

# gRPC status code numbers (grpc.StatusCode values) -> seconds a failure is remembered.
CODE_NAMES: Mapping[int, str] = {
    1: "CANCELLED", 2: "UNKNOWN", 3: "INVALID_ARGUMENT", 4: "DEADLINE_EXCEEDED", 5: "NOT_FOUND",
    6: "ALREADY_EXISTS", 7: "PERMISSION_DENIED", 8: "RESOURCE_EXHAUSTED", 9: "FAILED_PRECONDITION",
    10: "ABORTED", 11: "OUT_OF_RANGE", 12: "UNIMPLEMENTED", 13: "INTERNAL", 14: "UNAVAILABLE",
    15: "DATA_LOSS", 16: "UNAUTHENTICATED",
}
DEFAULT_FAILURE_TTLS_S: Mapping[str, float] = {
    "UNAVAILABLE": 5.0,
    "DEADLINE_EXCEEDED": 3.0,
    "RESOURCE_EXHAUSTED": 2.0,
    "INTERNAL": 5.0,
    "UNKNOWN": 2.0,
    "INVALID_ARGUMENT": 60.0,
    "FAILED_PRECONDITION": 10.0,
    "UNIMPLEMENTED": 60.0,
}
"""A sick downstream (UNAVAILABLE, DEADLINE_EXCEEDED) gets seconds to recover; a request it rejects as invalid
will be rejected again, so that is remembered longer. Codes not listed are not remembered."""


@dataclass(frozen=True)
class IntentPolicy:
    """How one intent is cached."""

    intent: str
    ttl_s: int | None
    personal: bool
    text_decides: bool

    @property
    def cacheable(self) -> bool:
        return self.ttl_s is not None

    def scope(self, user_id: str) -> str | None:
        """The user a key is scoped to, or None for answers shared by everyone."""
        return user_id if self.personal else None


class Policy:
    """TTL per intent, the never-cache list, user scoping, and failure TTL per error class."""

    def __init__(self, ttls_s: Mapping[str, int] = DEFAULT_TTLS_S,
                 failure_ttls_s: Mapping[str, float] = DEFAULT_FAILURE_TTLS_S) -> None:
        unknown = (set(ttls_s) - set(INTENTS)) | (set(failure_ttls_s) - set(CODE_NAMES.values()))
        if unknown:
            raise ValueError(f"policy names unknown intents or codes: {', '.join(sorted(unknown))}")
        if set(ttls_s) & NEVER_CACHE:
            raise ValueError(f"intents that must never be cached have a TTL: {sorted(set(ttls_s) & NEVER_CACHE)}")
        if any(ttl <= 0 for ttl in ttls_s.values()) or any(ttl <= 0 for ttl in failure_ttls_s.values()):
            raise ValueError("TTLs must be positive")
        self._intents = {
            intent: IntentPolicy(intent, ttls_s.get(intent), is_personal(intent), intent in TEXT_DECIDES)
            for intent in INTENTS
        }
        self._failure_ttls = dict(failure_ttls_s)

    def for_intent(self, intent: str) -> IntentPolicy:
        """Policy of a canonical intent name; KeyError for names the taxonomy does not know."""
        return self._intents[intent]

    def failure_ttl_s(self, code: int) -> float | None:
        """Seconds to remember a failure with this gRPC status code, or None to not remember it."""
        name = CODE_NAMES.get(code)
        return self._failure_ttls.get(name) if name else None

    @property
    def max_ttl_s(self) -> int:
        return max((p.ttl_s for p in self._intents.values() if p.ttl_s is not None), default=1)
