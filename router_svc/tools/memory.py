"""memory.query: answers from what the user told Alice earlier (notes in Redis), by keyword overlap."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from alice.runtime.errors import InvalidArgument, ResourceExhausted, Unavailable
from router_svc.tools import replies
from router_svc.tools.base import ToolContext, ToolResult, clean_text, storage, system_clock, user_key

MAX_NOTE_CHARS = 1000
MAX_NOTES = 1000
MAX_ANSWERS = 3

_WORD = re.compile(r"\w+")
# Function words and question words: they say nothing about which note is meant.
STOPWORDS: frozenset[str] = frozenset(
    """
    att av de dem den denna det detta dig din dina ditt du efter eller en er ett från för ha hade han har hen
    hon hur i inte jag kan kommer man med mej mig min mina mitt ni när nån någon något och om på sa sade se
    ska skall som till vad var vara vem vilken vilket vilka är åt även mycket så sen då också alltså ju väl
    heter hette kallas berätta berättade berättat sagt säga minns kom ihåg komma vet veta
    """.split()
)
MIN_PREFIX_CHARS = 4
"""Two words match when equal, or when the shorter (at least this long) starts the longer: "hund"/"hunden"."""


@dataclass(frozen=True)
class Note:
    id: str
    text: str
    created_at: str


def content_words(text: str) -> list[str]:
    """Lower-cased words that are not Swedish function words."""
    return [w for w in (m.casefold() for m in _WORD.findall(text)) if w not in STOPWORDS and not w.isdigit()]


def _words_match(a: str, b: str) -> bool:
    if a == b:
        return True
    short, long_ = (a, b) if len(a) <= len(b) else (b, a)
    return len(short) >= MIN_PREFIX_CHARS and long_.startswith(short)


def overlap(question: Sequence[str], note: Sequence[str]) -> int:
    """How many of the question's content words the note contains."""
    return sum(1 for q in set(question) if any(_words_match(q, n) for n in note))


def best_notes(question: str, notes: Sequence[Note], limit: int = MAX_ANSWERS) -> list[Note]:
    """The notes sharing the most content words with the question (at least one), newest first on ties."""
    words = content_words(question)
    if not words:
        return []
    scored = [(overlap(words, content_words(n.text)), n) for n in notes]
    top = max((s for s, _ in scored), default=0)
    if top == 0:
        return []
    winners = [n for s, n in scored if s == top]
    return sorted(winners, key=lambda n: n.created_at, reverse=True)[:limit]


async def remember(
    redis: Redis, user_id: str, text: str, *, at: dt.datetime | None = None, timeout_s: float = 1.0
) -> str:
    """Store one memory note for `user_id` (used by the demo, tests and whoever records memories); its id."""
    note_text = clean_text(text, "memory note", MAX_NOTE_CHARS)
    if note_text is None:
        raise InvalidArgument("memory note is empty")
    note = Note(
        id=uuid.uuid4().hex, text=note_text, created_at=(at or system_clock()).isoformat(timespec="microseconds")
    )
    key = user_key(user_id, "mem")
    try:
        async with asyncio.timeout(timeout_s):
            if await redis.hlen(key) >= MAX_NOTES:
                raise ResourceExhausted(f"at most {MAX_NOTES} memory notes per user")
            await redis.hset(key, note.id, json.dumps(asdict(note), ensure_ascii=False, sort_keys=True))
    except (TimeoutError, RedisTimeoutError) as exc:
        raise Unavailable(f"tool storage did not answer within {timeout_s:g} s") from exc
    except RedisConnectionError as exc:
        raise Unavailable("tool storage is unreachable") from exc
    return note.id


async def notes_of(ctx: ToolContext) -> list[Note]:
    """This user's memory notes, in no particular order."""
    async with storage(ctx):
        raws = await ctx.redis.hvals(ctx.key("mem"))
    return [Note(**json.loads(r)) for r in raws]


class MemoryQueryTool:
    name = "memory.query"
    arg_names: frozenset[str] = frozenset()

    async def run(self, args: Mapping[str, object], ctx: ToolContext) -> ToolResult:
        found = best_notes(ctx.text, await notes_of(ctx))
        if not found:
            # Not cacheable: the user may tell Alice this later, and remember() does not reach the cache.
            return ToolResult(reply=replies.MEMORY_NOTHING, data={"matches": []})
        return ToolResult(
            reply=replies.memory_found([n.text for n in found]),
            data={"matches": [asdict(n) for n in found]},
            cacheable=True,
        )
