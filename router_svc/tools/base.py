"""The tool layer's contract: ToolContext, ToolResult, the Tool protocol, the registry and the per-user key layout.

Time: `ToolContext.now` is the request's reference time in the user's time zone; relative things ("today",
"the next meeting") resolve against it. `ToolContext.clock` is the wall clock for what is about the real present
(time.now, a timer's fire time). The router passes `fixed_clock(reference_time)` when the request carried a
reference time, so evaluations are reproducible, and `system_clock` otherwise.

Tenant isolation by construction: every personal key is `alice:t:{u:<user>}:<kind>`; the user id comes from
`ToolContext.user_id` only (no tool reads a user id from its arguments), and it is percent-encoded so it can
neither close the hash tag nor act as a SCAN glob. The hash tag keeps one user's keys on one Cluster shard.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import unicodedata
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Protocol
from urllib.parse import quote

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from alice.runtime.errors import InvalidArgument, Unavailable
from alice.taxonomy import SLOT_KEYS, TOOLS, TaxonomyError, tool_for

__all__ = [
    "KEY_PREFIX",
    "USER_KEY_KINDS",
    "Clock",
    "Tool",
    "ToolContext",
    "ToolRegistry",
    "ToolResult",
    "as_text",
    "clean_text",
    "fixed_clock",
    "forget_user",
    "has_control_chars",
    "retries_within",
    "shown",
    "storage",
    "storage_retry",
    "system_clock",
    "user_key",
    "user_tag",
]


Clock = Callable[[], dt.datetime]
"""Returns the current time, time-zone aware."""

KEY_PREFIX = "alice:t:"
USER_KEY_KINDS: tuple[str, ...] = ("cal", "cal:start", "email", "timers", "mem")
"""Every kind of per-user key the tools write (forget_user deletes these, then sweeps the prefix)."""
MAX_USER_ID_CHARS = 256


def system_clock() -> dt.datetime:
    """The real wall clock, in UTC."""
    return dt.datetime.now(dt.UTC)


def fixed_clock(at: dt.datetime) -> Clock:
    """A clock that always answers `at` (for requests with a reference time, and for tests)."""
    if at.tzinfo is None:
        raise ValueError("a fixed clock needs a time-zone aware datetime")
    return lambda: at


def _check_user_id(user_id: str) -> None:
    if not user_id or not user_id.strip():
        raise InvalidArgument("user id is empty")
    if len(user_id) > MAX_USER_ID_CHARS:
        raise InvalidArgument(f"user id is longer than {MAX_USER_ID_CHARS} characters")
    if any(unicodedata.category(c).startswith("C") for c in user_id):
        raise InvalidArgument("user id contains control characters")


def user_tag(user_id: str) -> str:
    """The Cluster hash tag of one user's keys: "{u:<percent-encoded id>}" (no "{", "}", "*", "?", "[" inside)."""
    _check_user_id(user_id)
    return "{u:" + quote(user_id, safe="") + "}"


def user_key(user_id: str, kind: str) -> str:
    """A per-user key, e.g. user_key("u1", "cal") == "alice:t:{u:u1}:cal"."""
    if kind not in USER_KEY_KINDS:
        raise ValueError(f"unknown per-user key kind {kind!r}")
    return f"{KEY_PREFIX}{user_tag(user_id)}:{kind}"


def as_text(value: object) -> str:
    """A Redis reply item as text, whether the client decodes responses or not."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, str):
        return value
    raise TypeError(f"unexpected Redis reply item of type {type(value).__name__}")


def shown(value: object, limit: int = 40) -> str:
    """A bad value as quoted in an error message, cut short so huge inputs are not echoed back."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def has_control_chars(text: str) -> bool:
    return any(unicodedata.category(c) in ("Cc", "Cf", "Co", "Cs") for c in text)


def clean_text(value: object, name: str, max_chars: int) -> str | None:
    """A free-text argument with whitespace collapsed; None when absent or blank; InvalidArgument when bad."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidArgument(f"{name} must be a string, got {type(value).__name__}")
    if has_control_chars(value.replace("\n", " ").replace("\t", " ")):
        raise InvalidArgument(f"{name} contains control characters")
    text = " ".join(value.split())
    if not text:
        return None
    if len(text) > max_chars:
        raise InvalidArgument(f"{name} is {len(text)} characters long; the limit is {max_chars}")
    return text


@dataclass(frozen=True, kw_only=True)
class ToolContext:
    """Everything a tool may use for one request; the user id here is the only one any tool ever uses."""

    user_id: str
    now: dt.datetime
    """The request's reference time, aware, in the user's time zone."""
    redis: Redis
    """Opened and closed by the caller."""
    text: str = ""
    """The user's utterance (memory.query matches notes against it); data, never instructions."""
    clock: Clock = system_clock
    timeout_s: float = 1.0
    """Budget of each storage or provider call made by the tool."""

    def __post_init__(self) -> None:
        _check_user_id(self.user_id)
        if self.now.tzinfo is None or self.now.utcoffset() is None:
            raise InvalidArgument("the reference time must be time-zone aware")
        if not self.timeout_s > 0:
            raise InvalidArgument("the tool timeout must be positive")

    @property
    def tz(self) -> dt.tzinfo:
        tz = self.now.tzinfo
        assert tz is not None  # checked in __post_init__
        return tz

    @property
    def today(self) -> dt.date:
        return self.now.date()

    def key(self, kind: str) -> str:
        """This request's user's key of one kind."""
        return user_key(self.user_id, kind)


@dataclass(frozen=True, kw_only=True)
class ToolResult:
    """What a tool did: structured data, the Swedish reply, and what the router must do about caching."""

    reply: str
    data: dict[str, object] = field(default_factory=dict)
    mutated: bool = False
    """The user's data changed: the router invalidates that user's cached answers."""
    cacheable: bool = False
    """The answer may be stored by the cache (per user for personal intents)."""
    degraded: bool = False
    """A provider was unavailable and the reply says so: the router adds DEGRADATION_TOOL_UNAVAILABLE."""


class Tool(Protocol):
    """One tool; `run` receives only the arguments named in `arg_names`."""

    @property
    def name(self) -> str: ...

    @property
    def arg_names(self) -> frozenset[str]: ...

    async def run(self, args: Mapping[str, object], ctx: ToolContext) -> ToolResult: ...


RETRY_BASE_S = 0.01
RETRY_CAP_S = 0.1
"""Back-off between reconnects of the tool layer's Redis client: up to 20, 40, 80 ms, then up to 100 ms (full
jitter). The cap is short because a restarting Redis refuses connections at once, so tries are cheap, and a long
sleep would waste the end of the budget after Redis is back."""


def retries_within(budget_s: float, base_s: float = RETRY_BASE_S, cap_s: float = RETRY_CAP_S) -> int:
    """The most retries whose back-off sleeps, each at its longest (min(cap, base * 2**k)), add up to `budget_s`."""
    if not (base_s > 0 and cap_s > 0):
        raise ValueError("the back-off base and cap must be positive")
    slept, retries = 0.0, 0
    while slept + min(cap_s, base_s * 2 ** (retries + 1)) <= budget_s:
        retries += 1
        slept += min(cap_s, base_s * 2**retries)
    return retries


def storage_retry(budget_s: float) -> Retry:
    """How the tool layer's Redis client retries a lost connection or a timeout: a restart shorter than the budget
    is ridden out instead of failing the request at once.

    Bounded twice: the back-off alone never sleeps longer than `budget_s` (retries_within), and `storage` stops
    the tries, their sleeps and any redis-py inner reconnect loop at the call's own `ctx.timeout_s`.

    Writes are retried too. redis-py re-sends the very same command, and every tool write is idempotent when
    repeated after a reply was lost: HSET/ZADD of an entry whose id (uuid4) was drawn once before the first try
    (calendar and its MULTI/EXEC, e-mail drafts, timers, memory notes), ZREMRANGEBYSCORE, and DEL (forget_user,
    whose count then misses keys that the lost reply had deleted). A write that is not idempotent (INCR, LPUSH,
    XADD ...) must not be sent with this client as it stands.
    """
    backoff = ExponentialWithJitterBackoff(cap=RETRY_CAP_S, base=RETRY_BASE_S)
    return Retry(backoff, retries_within(budget_s), supported_errors=(RedisConnectionError, RedisTimeoutError))


@asynccontextmanager
async def storage(ctx: ToolContext) -> AsyncIterator[None]:
    """Bound the Redis commands inside by ctx.timeout_s; a slow or unreachable Redis becomes Unavailable.

    The client's own retries (storage_retry) happen inside this bound, so a Redis down for longer fails here.
    """
    try:
        async with asyncio.timeout(ctx.timeout_s):
            yield
    except (TimeoutError, RedisTimeoutError) as exc:
        raise Unavailable(f"tool storage did not answer within {ctx.timeout_s:g} s") from exc
    except RedisConnectionError as exc:
        raise Unavailable("tool storage is unreachable") from exc


class ToolRegistry:
    """Maps intents to tools and runs them: the router's single entry point into the tool layer."""

    def __init__(self, tools: Iterable[Tool]) -> None:
        self._tools: dict[str, Tool] = {}
        for tool in tools:
            if tool.name not in TOOLS:
                raise ValueError(f"tool {tool.name!r} is not in the taxonomy; known: {', '.join(TOOLS)}")
            if tool.name in self._tools:
                raise ValueError(f"tool {tool.name!r} registered twice")
            self._tools[tool.name] = tool

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._tools)

    def get(self, name: str) -> Tool:
        try:
            return self._tools[name]
        except KeyError:
            raise InvalidArgument(f"no tool named {name!r} is registered") from None

    async def run(self, intent: str, args: Mapping[str, object], ctx: ToolContext) -> ToolResult:
        """Run the tool of `intent`. Unknown argument names are an error; slots another tool uses are ignored.

        Raises InvalidArgument (bad intent or arguments), Unavailable (storage down), ResourceExhausted (a
        per-user limit); an unavailable weather provider is not an error but a degraded result.
        """
        try:
            name = tool_for(intent)
        except TaxonomyError as exc:
            raise InvalidArgument(str(exc)) from None
        if name is None:
            raise InvalidArgument(f"intent {intent} has no tool")
        tool = self.get(name)
        unknown = sorted(k for k in args if k not in SLOT_KEYS)
        if unknown:
            raise InvalidArgument(
                f"unknown argument(s) {', '.join(map(repr, unknown))} for tool {name}; "
                f"known: {', '.join(sorted(tool.arg_names)) or 'none'}"
            )
        used = {k: v for k, v in args.items() if k in tool.arg_names}
        ignored = sorted(k for k in args if k not in tool.arg_names)
        result = await tool.run(used, ctx)
        if ignored:
            result = replace(result, data={**result.data, "ignored_args": ignored})
        return result


async def forget_user(redis: Redis, user_id: str, *, timeout_s: float = 5.0) -> int:
    """Delete every tool key of one user (calendar, drafts, timers, memories); returns how many keys went.

    Deletes the known kinds in one command (one hash slot), then sweeps the user's prefix with SCAN MATCH for
    anything else under it. The id is percent-encoded, so the MATCH pattern has no glob characters of the user's.
    """
    tag = user_tag(user_id)
    prefix = f"{KEY_PREFIX}{tag}:"
    try:
        async with asyncio.timeout(timeout_s):
            deleted = int(await redis.delete(*(f"{prefix}{kind}" for kind in USER_KEY_KINDS)))
            leftovers = [key async for key in redis.scan_iter(match=f"{prefix}*", count=500)]
            if leftovers:
                deleted += int(await redis.delete(*leftovers))
    except (TimeoutError, RedisTimeoutError) as exc:
        raise Unavailable(f"tool storage did not answer within {timeout_s:g} s") from exc
    except RedisConnectionError as exc:
        raise Unavailable("tool storage is unreachable") from exc
    return deleted
