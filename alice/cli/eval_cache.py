"""`alice eval cache`: paraphrase hit rate and false-hit rate of the cache service on any cache file.

Protocol (spec/intents.md, "Cache file"): start from an empty cache; for each group ask the first paraphrase
(a miss that stores the answer), then each other paraphrase (each should hit that entry); for each near-miss
pair store `a`, then ask `b` (must not be answered from `a`'s entry). "Ask" is what the router does: NLU Parse
for intent and slots, NLU Embed when the intent has a semantic tier, cache Lookup, and on a miss cache Store of
a synthetic answer. A run uses its own answer_version and user id, so a shared cache starts empty for it.
A paraphrase hit must return an answer stored for its own group (by its first paraphrase or by an earlier one
that missed); a hit that returns another group's answer is listed as a wrong answer. Latency is the client-side
time of the Lookup RPC.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from alice import taxonomy
from alice.cache.v1 import cache_service_pb2, cache_service_pb2_grpc
from alice.cli.common import DEFAULT_TZ, Line, emit, latency_summary, read_jsonl, reference_time
from alice.common.v1 import types_pb2
from alice.local.mesh import LocalMesh
from alice.nlu.v1 import nlu_service_pb2, nlu_service_pb2_grpc

RPC_TIMEOUT_S = 10.0
SEMANTIC_INTENTS = frozenset({"info.query", "memory.query"})
"""Intents whose text decides the answer: the router embeds them for the cache's L2 tier."""
DEFAULT_NOW = "2026-03-10T09:00"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("cache", help="paraphrase hit rate and false-hit rate of the cache",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="cache file (JSON Lines, spec/intents.md)")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    parser.add_argument("--target", help="HOST:PORT of a running cache service; default: start nlu+cache locally")
    parser.add_argument("--nlu", help="HOST:PORT of the NLU service (default with --target: same host, port 50052)")
    parser.add_argument("--now", default=DEFAULT_NOW, help=f"reference time for the NLU (default {DEFAULT_NOW})")
    parser.add_argument("--tz", default=DEFAULT_TZ, help=f"IANA time zone (default {DEFAULT_TZ})")
    parser.add_argument("--max-listed", type=int, default=30, help="misses and false hits listed in the report")
    parser.set_defaults(run=run)


@dataclass(frozen=True)
class Group:
    line: int
    name: str
    intent: str
    paraphrases: list[str]


@dataclass(frozen=True)
class NearMiss:
    line: int
    name: str
    a: str
    b: str
    why: str


def parse_items(lines: list[Line]) -> tuple[list[Group], list[NearMiss], list[str]]:
    """Groups and near-miss pairs; malformed lines become problems with their line numbers."""
    groups: list[Group] = []
    pairs: list[NearMiss] = []
    problems: list[str] = []
    for line in lines:
        data = line.data
        if "group" in data:
            paraphrases = data.get("paraphrases")
            if (not isinstance(paraphrases, list) or len(paraphrases) < 2
                    or not all(isinstance(p, str) and p.strip() for p in paraphrases)):
                problems.append(f"line {line.number}: group needs at least two non-empty paraphrases; skipped")
                continue
            groups.append(Group(line.number, str(data["group"]), str(data.get("intent", "")), paraphrases))
        elif "near_miss" in data:
            a, b = data.get("a"), data.get("b")
            if not (isinstance(a, str) and a.strip() and isinstance(b, str) and b.strip()):
                problems.append(f"line {line.number}: near_miss needs non-empty strings a and b; skipped")
                continue
            pairs.append(NearMiss(line.number, str(data["near_miss"]), a, b, str(data.get("why", ""))))
        else:
            problems.append(f"line {line.number}: neither a group nor a near_miss; skipped")
    return groups, pairs, problems


@dataclass
class Asked:
    """What one ask did."""

    text: str
    intent: str
    hit: bool
    tier: str
    answer: str
    lookup_ms: float
    rejected_by: str = ""
    similarity: float = 0.0
    error: str = ""


@dataclass
class Asker:
    """Performs the router's cache sequence against an NLU and a cache service."""

    nlu: nlu_service_pb2_grpc.NluServiceAsyncStub
    cache: cache_service_pb2_grpc.CacheServiceAsyncStub
    reference: dt.datetime
    time_zone: str
    user_id: str
    answer_version: str
    latencies_ms: list[float] = field(default_factory=list)

    async def ask(self, text: str, answer: str) -> Asked:
        try:
            request = nlu_service_pb2.ParseRequest(text=text, time_zone=self.time_zone)
            request.reference_time.FromDatetime(self.reference)
            parsed = await self.nlu.Parse(request, timeout=RPC_TIMEOUT_S)
            intent = taxonomy.intent_name(parsed.intent)
            query = cache_service_pb2.CacheQuery(intent=parsed.intent, slots=parsed.slots, text=text,
                                                 user_id=self.user_id, answer_version=self.answer_version)
            if intent in SEMANTIC_INTENTS:
                embedded = await self.nlu.Embed(nlu_service_pb2.EmbedRequest(text=text), timeout=RPC_TIMEOUT_S)
                query.embedding.extend(embedded.embedding)
                query.embedding_model = embedded.model
            started = time.perf_counter()
            found = await self.cache.Lookup(cache_service_pb2.LookupRequest(query=query), timeout=RPC_TIMEOUT_S)
            elapsed = (time.perf_counter() - started) * 1000
            self.latencies_ms.append(elapsed)
            if found.hit and found.tier != types_pb2.CACHE_TIER_L3_NEGATIVE:
                return Asked(text, intent, True, taxonomy.tier_name(found.tier), found.answer.text, elapsed,
                             similarity=found.similarity)
            await self.cache.Store(cache_service_pb2.StoreRequest(
                query=query, answer=cache_service_pb2.CachedAnswer(text=answer, route=taxonomy.Route.ROUTE_PLANNER)),
                timeout=RPC_TIMEOUT_S)
            return Asked(text, intent, False, "", answer, elapsed, found.rejected_by, found.similarity)
        except (grpc.aio.AioRpcError, taxonomy.TaxonomyError) as error:
            detail = error.details() if isinstance(error, grpc.aio.AioRpcError) else str(error)
            code = error.code().name if isinstance(error, grpc.aio.AioRpcError) else "TAXONOMY"
            return Asked(text, "", False, "", "", 0.0, error=f"{code}: {detail}")


async def evaluate(asker: Asker, groups: list[Group], pairs: list[NearMiss], max_listed: int) -> dict[str, Any]:
    hits_by_tier: Counter[str] = Counter()
    later = paraphrase_hits = wrong_hits = 0
    misses: list[dict[str, Any]] = []
    errors: list[str] = []
    for group in groups:
        first = await asker.ask(group.paraphrases[0], f"Svar för grupp {group.name}")
        if first.error:
            errors.append(f"line {group.line}: {first.error}")
        # A paraphrase may hit the entry of the first one or of an earlier paraphrase of the group that missed.
        mine = f"Svar för grupp {group.name}"
        for text in group.paraphrases[1:]:
            later += 1
            asked = await asker.ask(text, f"Svar för grupp {group.name}: {text}")
            if asked.error:
                errors.append(f"line {group.line}: {asked.error}")
            if asked.hit:
                hits_by_tier[asked.tier] += 1
            if asked.hit and (asked.answer == mine or asked.answer.startswith(mine + ":")):
                paraphrase_hits += 1
            else:
                wrong_hits += asked.hit
                misses.append({"group": group.name, "stored": group.paraphrases[0], "asked": text,
                               "intent": asked.intent, "stored_intent": first.intent,
                               "rejected_by": asked.rejected_by, "similarity": round(asked.similarity, 4),
                               "wrong_answer": asked.hit})
    false_hits: list[dict[str, Any]] = []
    for pair in pairs:
        first = await asker.ask(pair.a, f"Svar för near miss {pair.name}")
        asked = await asker.ask(pair.b, f"Svar för near miss {pair.name}: b")
        for result in (first, asked):
            if result.error:
                errors.append(f"line {pair.line}: {result.error}")
        if asked.hit:
            hits_by_tier[asked.tier] += 1
        if asked.hit and asked.answer == first.answer:
            false_hits.append({"near_miss": pair.name, "a": pair.a, "b": pair.b, "why": pair.why,
                               "tier": asked.tier, "similarity": round(asked.similarity, 4)})
    return {
        "groups": len(groups),
        "near_misses": len(pairs),
        "paraphrase_hit_rate": round(paraphrase_hits / later, 4) if later else 0.0,
        "false_hit_rate": round(len(false_hits) / len(pairs), 4) if pairs else 0.0,
        "hits_by_tier": {tier: hits_by_tier.get(tier, 0) for tier in ("l1", "l2", "l3")},
        "latency_ms": latency_summary(asker.latencies_ms),
        "paraphrases_asked": later,
        "paraphrase_hits": paraphrase_hits,
        "wrong_answer_hits": wrong_hits,
        "false_hits": false_hits[:max_listed],
        "misses": misses[:max_listed],
        "errors": errors[:max_listed],
    }


@contextlib.asynccontextmanager
async def _channels(nlu: str, cache: str) -> AsyncIterator[tuple[grpc.aio.Channel, grpc.aio.Channel]]:
    async with grpc.aio.insecure_channel(nlu) as nlu_channel, grpc.aio.insecure_channel(cache) as cache_channel:
        yield nlu_channel, cache_channel


async def _run_against(nlu: str, cache: str, args: argparse.Namespace, groups: list[Group],
                       pairs: list[NearMiss]) -> dict[str, Any]:
    reference = reference_time(args.now, args.tz)
    run_id = uuid.uuid4().hex[:12]
    async with _channels(nlu, cache) as (nlu_channel, cache_channel):
        asker = Asker(nlu_service_pb2_grpc.NluServiceStub(nlu_channel),  # type: ignore[no-untyped-call,unused-ignore]
                      cache_service_pb2_grpc.CacheServiceStub(cache_channel),  # type: ignore[no-untyped-call,unused-ignore]
                      reference, args.tz, f"eval-{run_id}", f"eval-{run_id}")
        return await evaluate(asker, groups, pairs, args.max_listed)


def _human(result: dict[str, Any], problems: list[str]) -> str:
    lines = [
        f"groups {result['groups']}, near misses {result['near_misses']}",
        f"paraphrase hit rate {result['paraphrase_hit_rate']:.1%} "
        f"({result['paraphrase_hits']}/{result['paraphrases_asked']})",
        f"false-hit rate      {result['false_hit_rate']:.1%} ({len(result['false_hits'])} of {result['near_misses']})",
        f"hits by tier        {result['hits_by_tier']}",
        f"lookup latency ms   {result['latency_ms']}",
    ]
    lines += [f"  false hit {f['near_miss']}: {f['a']!r} -> {f['b']!r} ({f['why']})" for f in result["false_hits"]]
    lines += [f"  miss {m['group']}: {m['stored']!r} / {m['asked']!r} intent={m['intent']} "
              f"rejected_by={m['rejected_by'] or '-'} sim={m['similarity']}" for m in result["misses"]]
    lines += [f"  error {e}" for e in result["errors"]]
    lines += [f"  {p}" for p in problems]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    try:
        lines, problems = read_jsonl(args.data)
    except OSError as error:
        print(f"cannot read {args.data}: {error}", file=sys.stderr)
        return 2
    groups, pairs, more = parse_items(lines)
    problems += more
    for problem in problems:
        print(problem, file=sys.stderr)
    if args.target:
        host = args.target.rsplit(":", 1)[0]
        result = asyncio.run(_run_against(args.nlu or f"{host}:50052", args.target, args, groups, pairs))
    else:
        with LocalMesh(services=["nlu", "cache"], quiet=args.json) as mesh:
            result = asyncio.run(_run_against(mesh.address("nlu"), mesh.address("cache"), args, groups, pairs))
    result["problems"] = problems
    emit(result, args.json, _human(result, problems))
    return 0
