"""The cache's domain logic: L1 exact, L2 semantic with guards, L3 negative; policy, scoping and stats."""

from __future__ import annotations

import enum
import json
import math
import time
from collections import Counter, deque
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from opentelemetry import metrics, trace

from alice.runtime.errors import InvalidArgument
from alice.runtime.stats import percentile
from alice.runtime.telemetry import Deferred
from alice.taxonomy import INTENTS
from cache_svc import keys
from cache_svc.config import L2Settings, Limits
from cache_svc.guards import GUARD_SIMILARITY, Analysis, analyse, check
from cache_svc.policy import NAME_SENSITIVE, IntentPolicy, Policy
from cache_svc.store import Candidate, CorruptData, Fields, RedisStore, StoreUnavailable, VectorWrite

TIERS = ("l1", "l2", "l3")
ENTRY_MARK = b"alice-cache/1"
FAILURE_MARK = b"alice-cache-failure/1"
BUCKET_CHARS = 5
"""L2 entries of an intent+slot key are split into small sets by the first letters of their content words (an
entry joins the sets of up to MAX_STORE_BUCKETS of them); a lookup probes the sets of its content words, so any
shared word finds the candidate (docs/cache.md)."""
MAX_STORE_BUCKETS = 4
MAX_PROBES = 8
BUCKET_CAP = 300
"""A bucket that already holds this many entries takes no new ones unless the entry has no other bucket:
one common word ("huvudstaden") must not grow a big set that every lookup with that word has to search."""


@dataclass(frozen=True)
class Request:
    """A canonical request as the cache keys it."""

    intent: str
    slots: Mapping[str, object]
    text: str
    user_id: str
    answer_version: str
    embedding: Sequence[float] = ()
    embedding_model: str = ""
    reference_date: str = ""
    """Local day of the request ("YYYY-MM-DD"); keys the L1 text alias. Empty: no alias."""


@dataclass(frozen=True)
class Failure:
    """A remembered failure: which downstream, its gRPC status code number and message."""

    downstream: str
    code: int
    message: str


@dataclass(frozen=True)
class LookupResult:
    """A hit (tier "l1"/"l2"/"l3") or a miss (tier "")."""

    tier: str = ""
    similarity: float = 0.0
    age_s: float = 0.0
    answer: bytes | None = None
    failure: Failure | None = None
    rejected_by: str = ""

    @property
    def hit(self) -> bool:
        return bool(self.tier)


class StoreOutcome(enum.Enum):
    STORED = "stored"
    SKIPPED_POLICY = "skipped_policy"
    DROPPED_UNAVAILABLE = "dropped_unavailable"


@dataclass(frozen=True)
class StoreResult:
    outcome: StoreOutcome
    ttl_s: float = 0.0


@dataclass(frozen=True)
class LatencySummary:
    count: int
    p50_ms: float
    p95_ms: float
    p99_ms: float


@dataclass(frozen=True)
class StatsSnapshot:
    hits_by_tier: Mapping[str, int]
    misses: int
    rejections_by_guard: Mapping[str, int]
    stores: int
    skipped: int
    dropped: int
    lookup_latency: Mapping[str, LatencySummary]
    redis_up: bool
    corrupt_entries: int


@dataclass
class CacheStats:
    """Counters and a bounded window of lookup latencies per tier consulted, for the Stats RPC; every update
    also goes to the OpenTelemetry instruments (Prometheus and OTLP), which `reset` does not touch."""

    window: int = 10_000
    meter: metrics.Meter = field(default_factory=lambda: metrics.NoOpMeter("alice"))
    hits: Counter[str] = field(default_factory=Counter)
    misses: int = 0
    rejections: Counter[str] = field(default_factory=Counter)
    stores: int = 0
    skipped: int = 0
    dropped: int = 0
    corrupt: int = 0
    latency_ms: dict[str, deque[float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._duration = Deferred(self.meter.create_histogram(
            "alice.cache.lookup.duration", unit="ms", description="Redis round trip of one lookup step, by tier"))
        self._lookups = Deferred(self.meter.create_counter(
            "alice.cache.lookups", description="Tiers consulted, by tier and result"))
        self._stores = self.meter.create_counter(
            "alice.cache.stores", description="Store requests by tier (l1 answers, l3 failures) and outcome")
        self._corrupt = self.meter.create_counter(
            "alice.cache.corrupt_entries", description="Foreign or malformed values found under cache keys")

    def observe(self, tier: str, ms: float, key: str = "canonical") -> None:
        self.latency_ms.setdefault(tier, deque(maxlen=self.window)).append(ms)
        self._duration.record(ms, {"alice.cache.tier": tier, "alice.cache.key": key})

    def consulted(self, tier: str, result: LookupResult | None, key: str = "canonical") -> None:
        """One tier's answer to a lookup; None when Redis was unavailable."""
        attributes = {"alice.cache.tier": tier, "alice.cache.key": key}
        if result is None:
            attributes["alice.cache.result"] = "unavailable"
        elif result.hit:
            attributes["alice.cache.result"] = "hit"
        elif result.rejected_by:
            attributes |= {"alice.cache.result": "rejected", "alice.cache.guard": result.rejected_by}
        else:
            attributes["alice.cache.result"] = "miss"
        self._lookups.add(1, attributes)

    def answered(self, result: LookupResult) -> None:
        """The outcome of a whole lookup, as the Stats RPC reports it."""
        if result.hit:
            self.hits[result.tier] += 1
        else:
            self.misses += 1
            if result.rejected_by:
                self.rejections[result.rejected_by] += 1

    def stored(self, tier: str, outcome: StoreOutcome) -> None:
        """A store of an answer (tier l1, with its L2 vectors) or of a failure (l3) and its outcome."""
        self._stores.add(1, {"alice.cache.tier": tier, "alice.cache.outcome": outcome.value})
        if outcome is StoreOutcome.SKIPPED_POLICY:
            self.skipped += 1
        elif outcome is StoreOutcome.DROPPED_UNAVAILABLE:
            self.dropped += 1
        elif tier == "l1":  # Stats.stores counts answers; remembered failures show as l3 hits
            self.stores += 1

    def found_corrupt(self, count: int = 1) -> None:
        if count:
            self.corrupt += count
            self._corrupt.add(count)

    def snapshot(self, redis_up: bool) -> StatsSnapshot:
        latency = {}
        for tier, samples in self.latency_ms.items():
            values = list(samples)
            latency[tier] = LatencySummary(len(values), percentile(values, 50), percentile(values, 95),
                                           percentile(values, 99))
        return StatsSnapshot(dict(self.hits), self.misses, dict(self.rejections), self.stores, self.skipped,
                             self.dropped, latency, redis_up, self.corrupt)

    def reset(self) -> None:
        self.hits.clear()
        self.rejections.clear()
        self.latency_ms.clear()
        self.misses = self.stores = self.skipped = self.dropped = self.corrupt = 0


def _bucket(word: str) -> str:
    return word.split(":", 1)[-1][:BUCKET_CHARS]


def _words(analysis: Analysis) -> list[str]:
    return sorted((w.split(":", 1)[-1] for w in analysis.content), key=lambda w: (-len(w), w))


def store_buckets(analysis: Analysis) -> list[str]:
    """The buckets an entry is stored in: its longest content words' first letters ("" without content)."""
    buckets = list(dict.fromkeys(_bucket(w) for w in _words(analysis)))[:MAX_STORE_BUCKETS]
    return buckets or [""]


def probe_buckets(analysis: Analysis) -> list[str]:
    """The buckets a lookup searches: one per content word (longest first), and the empty one."""
    buckets = list(dict.fromkeys(_bucket(w) for w in _words(analysis)))[:MAX_PROBES]
    return [*buckets, ""] if len(analysis.content) <= 1 else buckets


def residual_names(text: str, slots: Mapping[str, object]) -> str:
    """Names in the text that no slot holds ("möte med Erik" for calendar.list, which has no person slot)."""
    values = " ".join(str(v) for value in slots.values()
                      for v in (value if isinstance(value, list | tuple) else [value]))
    covered = analyse(values).content
    return ",".join(sorted(analyse(text).names - covered))


@dataclass(frozen=True)
class _Keyed:
    policy: IntentPolicy
    scope: str | None
    analysis: Analysis | None
    text_form: str
    l1: str
    l3: str


class Cache:
    """Slot-aware answer cache; all Redis access goes through `store`, spans through `tracer`."""

    def __init__(self, store: RedisStore, policy: Policy, l2: L2Settings, limits: Limits, tracer: trace.Tracer,
                 wall_clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.perf_counter, *, meter: metrics.Meter | None = None) -> None:
        self._store = store
        self._policy = policy
        self._l2 = l2
        self._limits = limits
        self._tracer = tracer
        self._wall = wall_clock
        self._monotonic = monotonic
        self.stats = CacheStats(window=limits.latency_window, meter=meter or metrics.NoOpMeter("alice"))

    # --- validation and keys -----------------------------------------------------------------------------

    def _validate(self, request: Request) -> None:
        if request.intent not in INTENTS:
            raise InvalidArgument(f"unknown or unspecified intent {request.intent!r}")
        if len(request.text) > self._limits.max_text_chars:
            raise InvalidArgument(f"text has {len(request.text)} characters; at most {self._limits.max_text_chars}")
        for name, value in (("user_id", request.user_id), ("answer_version", request.answer_version),
                            ("embedding_model", request.embedding_model)):
            if len(value) > self._limits.max_field_chars:
                raise InvalidArgument(f"{name} is longer than {self._limits.max_field_chars} characters")
        if request.embedding:
            if len(request.embedding) != self._l2.embedding_dim:
                raise InvalidArgument(
                    f"embedding has {len(request.embedding)} dimensions; the cache expects {self._l2.embedding_dim}")
            if not all(math.isfinite(v) for v in request.embedding):
                raise InvalidArgument("embedding holds a non-finite value")
            if not request.embedding_model:
                raise InvalidArgument("embedding_model is required with an embedding")
        if self._policy.for_intent(request.intent).personal and not request.user_id:
            raise InvalidArgument(f"user_id is required for the personal intent {request.intent}")

    def _keyed(self, request: Request) -> _Keyed:
        self._validate(request)
        policy = self._policy.for_intent(request.intent)
        scope = policy.scope(request.user_id)
        analysis = analyse(request.text) if policy.text_decides else None
        if analysis is not None:
            text_form = analysis.key_form()
        elif request.intent in NAME_SENSITIVE:
            text_form = residual_names(request.text, request.slots)
        else:
            text_form = ""
        args = (request.intent, request.slots, text_form, scope, request.answer_version)
        return _Keyed(policy, scope, analysis, text_form, keys.l1_key(*args), keys.l3_key(*args))

    def _set_key(self, request: Request, scope: str | None, bucket: str) -> str:
        return keys.l2_set_key(request.intent, request.slots, scope, request.answer_version,
                               request.embedding_model, bucket)

    # --- lookup ------------------------------------------------------------------------------------------

    async def lookup_alias(self, text: str, reference_date: str, user_id: str, answer_version: str
                           ) -> LookupResult:
        """L1 by text alone (no intent yet): the user's own alias first, then the shared one."""
        if not text.strip() or not reference_date:
            raise InvalidArgument("an alias lookup needs the text and the reference date")
        if len(text) > self._limits.max_text_chars:
            raise InvalidArgument(f"text has {len(text)} characters; at most {self._limits.max_text_chars}")
        candidates = [keys.alias_key(text, reference_date, None, answer_version)]
        if user_id:
            candidates.insert(0, keys.alias_key(text, reference_date, user_id, answer_version))
        result = LookupResult()
        with self._tracer.start_as_current_span("cache.lookup.alias") as span:
            started = self._monotonic()
            available = True
            try:
                fields = await self._read_pair(candidates[0], candidates[1] if len(candidates) > 1 else None)
            except StoreUnavailable:
                fields, available = (None, None), False
            finally:
                self.stats.observe("l1", (self._monotonic() - started) * 1000, key="alias")
            for entry in fields:
                if entry is None:
                    continue
                try:
                    answer, age = self._parse_entry(entry)
                except CorruptData:
                    self.stats.found_corrupt()
                    continue
                result = LookupResult(tier="l1", similarity=1.0, age_s=age, answer=answer)
                break
            span.set_attribute("alice.cache.tier", result.tier or "miss")
        self.stats.consulted("l1", result if available else None, key="alias")
        self.stats.answered(result)
        return result

    async def lookup(self, request: Request, tiers: Collection[str] = ()) -> LookupResult:
        """L1, then L2 (when the intent's text decides and an embedding is given), then L3; a miss otherwise.

        Redis being down is a miss (fast: the store is in back-off), never an error.
        """
        keyed = self._keyed(request)
        wanted = set(tiers) or set(TIERS)
        want_l1 = keyed.policy.cacheable and "l1" in wanted
        want_l2 = keyed.policy.cacheable and "l2" in wanted and self._uses_l2(keyed, request)
        want_l3 = "l3" in wanted
        result = LookupResult()
        tier = "l1" if want_l1 else "l3"
        try:
            failure: LookupResult | None = None
            if want_l1 or want_l3:
                result, failure = await self._lookup_l1(keyed, want_l1=want_l1, want_l3=want_l3)
                if want_l1:
                    self.stats.consulted("l1", result)
            if not result.hit and want_l2:
                tier = "l2"
                result = await self._lookup_l2(keyed, request)
                self.stats.consulted("l2", result)
            if not result.hit and want_l3:
                # L3 is read with L1 in one round trip, but it answers only when L1 and L2 did not.
                self.stats.consulted("l3", failure or LookupResult())
                result = failure or result
        except StoreUnavailable:
            self.stats.consulted(tier, None)
            result = LookupResult()
        self.stats.answered(result)
        return result

    @staticmethod
    def _uses_l2(keyed: _Keyed, request: Request) -> bool:
        return keyed.policy.text_decides and bool(request.embedding)

    async def _lookup_l1(self, keyed: _Keyed, *, want_l1: bool, want_l3: bool
                         ) -> tuple[LookupResult, LookupResult | None]:
        with self._tracer.start_as_current_span("cache.lookup.l1") as span:
            started = self._monotonic()
            try:
                entry, failure_fields = await self._read_pair(keyed.l1 if want_l1 else None,
                                                              keyed.l3 if want_l3 else None)
            finally:
                self.stats.observe("l1", (self._monotonic() - started) * 1000)
            result = LookupResult()
            if entry is not None:
                try:
                    answer, age = self._parse_entry(entry)
                    result = LookupResult(tier="l1", similarity=1.0, age_s=age, answer=answer)
                except CorruptData:
                    self.stats.found_corrupt()
            failure = None
            if failure_fields is not None:
                try:
                    failure = self._parse_failure(failure_fields)
                except CorruptData:
                    self.stats.found_corrupt()
            span.set_attribute("alice.cache.tier", result.tier or ("l3" if failure else "miss"))
            return result, failure

    async def _read_pair(self, l1: str | None, l3: str | None) -> tuple[Fields | None, Fields | None]:
        first, second = (l1, l3) if l1 is not None else (l3, None)
        if first is None:
            return None, None
        try:
            a, b = await self._store.read_pair(first, second)
        except CorruptData:
            # One of the two is foreign: read them apart so the other still counts.
            a = await self._read_one(first)
            b = await self._read_one(second) if second is not None else None
        return (a, b) if l1 is not None else (None, a)

    async def _read_one(self, key: str) -> Fields | None:
        try:
            return await self._store.read(key)
        except CorruptData:
            self.stats.found_corrupt()
            return None

    async def _lookup_l2(self, keyed: _Keyed, request: Request) -> LookupResult:
        assert keyed.analysis is not None
        threshold = self._l2.threshold(request.intent)
        with self._tracer.start_as_current_span("cache.lookup.l2") as span:
            started = self._monotonic()
            try:
                result = await self._search_l2(keyed, keyed.analysis, request, threshold)
            finally:
                self.stats.observe("l2", (self._monotonic() - started) * 1000)
            span.set_attribute("alice.cache.tier", result.tier or "miss")
            span.set_attribute("alice.cache.threshold", threshold)
            if result.hit or result.rejected_by:
                span.set_attribute("alice.cache.similarity", result.similarity)
            if result.rejected_by:
                span.set_attribute("alice.cache.guard", result.rejected_by)
            return result

    async def _search_l2(self, keyed: _Keyed, analysis: Analysis, request: Request,
                         threshold: float) -> LookupResult:
        set_keys = [self._set_key(request, keyed.scope, b) for b in probe_buckets(analysis)]
        vector = np.asarray(request.embedding, dtype="<f4").tobytes()
        candidates, corrupt = await self._store.similar(set_keys, vector, self._l2.candidates)
        self.stats.found_corrupt(corrupt)
        first_rejection: tuple[str, float] | None = None
        seen: set[str] = set()
        for candidate in candidates:
            if candidate.element in seen:
                continue
            seen.add(candidate.element)
            if candidate.similarity < threshold:
                first_rejection = first_rejection or (GUARD_SIMILARITY, candidate.similarity)
                break
            try:
                stored = self._parse_attributes(candidate)
            except CorruptData:
                self.stats.found_corrupt()
                continue
            guard = check(analysis, stored, allow_extra=self._l2.allow_extra_words)
            if guard is not None:
                first_rejection = first_rejection or (guard, candidate.similarity)
                continue
            entry = await self._read_one(candidate.element)
            if entry is None:
                await self._store.remove_element(candidate.set_key, candidate.element)
                continue
            try:
                answer, age = self._parse_entry(entry)
            except CorruptData:
                self.stats.found_corrupt()
                continue
            return LookupResult(tier="l2", similarity=candidate.similarity, age_s=age, answer=answer)
        if first_rejection is not None:
            return LookupResult(rejected_by=first_rejection[0], similarity=first_rejection[1])
        return LookupResult()

    # --- parsing what Redis holds ------------------------------------------------------------------------

    def _age_s(self, fields: Fields) -> float:
        try:
            stored_ms = int(fields[b"t"])
        except (KeyError, ValueError):
            raise CorruptData("entry has no valid timestamp") from None
        return max(0.0, self._wall() - stored_ms / 1000)

    def _parse_entry(self, fields: Fields) -> tuple[bytes, float]:
        if fields.get(b"m") != ENTRY_MARK or b"a" not in fields:
            raise CorruptData("not a cache entry")
        return fields[b"a"], self._age_s(fields)

    def _parse_failure(self, fields: Fields) -> LookupResult:
        if fields.get(b"m") != FAILURE_MARK:
            raise CorruptData("not a failure entry")
        try:
            failure = Failure(fields[b"d"].decode(), int(fields[b"c"]), fields[b"s"].decode())
        except (KeyError, ValueError, UnicodeDecodeError):
            raise CorruptData("malformed failure entry") from None
        return LookupResult(tier="l3", age_s=self._age_s(fields), failure=failure)

    @staticmethod
    def _parse_attributes(candidate: Candidate) -> Analysis:
        if candidate.attributes is None:
            raise CorruptData("vector element without attributes")
        try:
            return Analysis.from_json(json.loads(candidate.attributes).get("g"))
        except (ValueError, AttributeError) as error:
            raise CorruptData(str(error)) from None

    # --- writes ------------------------------------------------------------------------------------------

    async def store(self, request: Request, answer: bytes) -> StoreResult:
        """Store an answer under the request's L1 key (and its L2 set); policy may decline it."""
        keyed = self._keyed(request)
        if len(answer) > self._limits.max_answer_bytes + 1024:
            raise InvalidArgument(f"answer is {len(answer)} bytes; at most {self._limits.max_answer_bytes}")
        ttl = keyed.policy.ttl_s
        if ttl is None:
            self.stats.stored("l1", StoreOutcome.SKIPPED_POLICY)
            return StoreResult(StoreOutcome.SKIPPED_POLICY)
        with self._tracer.start_as_current_span("cache.store") as span:
            span.set_attribute("alice.cache.intent", request.intent)
            indexes = [keys.intent_index(request.intent)]
            if keyed.scope is not None:
                indexes += [keys.user_index(keyed.scope), keys.user_index(keyed.scope, request.intent)]
            now_ms = int(self._wall() * 1000)
            vectors: list[VectorWrite] = []
            if keyed.analysis is not None and request.embedding:
                attributes = json.dumps({"g": keyed.analysis.to_json(), "t": now_ms}, ensure_ascii=False)
                blob = np.asarray(request.embedding, dtype="<f4").tobytes()
                try:
                    set_keys = await self._open_buckets(request, keyed, keyed.analysis)
                except StoreUnavailable:
                    self.stats.stored("l1", StoreOutcome.DROPPED_UNAVAILABLE)
                    return StoreResult(StoreOutcome.DROPPED_UNAVAILABLE)
                vectors += [VectorWrite(key, keyed.l1, blob, attributes) for key in set_keys]
            span.set_attribute("alice.cache.l2", bool(vectors))
            fields: dict[str, bytes | str | int] = {"m": ENTRY_MARK, "a": answer, "t": now_ms, "i": request.intent}
            try:
                await self._store.write_entry(keyed.l1, fields, ttl, indexes, self._policy.max_ttl_s, vectors)
                if request.reference_date:
                    alias = keys.alias_key(request.text, request.reference_date, keyed.scope,
                                           request.answer_version)
                    await self._store.write_entry(alias, fields, ttl, indexes, self._policy.max_ttl_s)
            except StoreUnavailable:
                self.stats.stored("l1", StoreOutcome.DROPPED_UNAVAILABLE)
                span.set_attribute("alice.cache.outcome", "dropped")
                return StoreResult(StoreOutcome.DROPPED_UNAVAILABLE)
            except CorruptData:
                # A foreign value under our vector-set key: the entry itself is stored, L2 is not.
                self.stats.found_corrupt()
            self.stats.stored("l1", StoreOutcome.STORED)
            span.set_attribute("alice.cache.outcome", "stored")
            return StoreResult(StoreOutcome.STORED, float(ttl))

    async def _open_buckets(self, request: Request, keyed: _Keyed, analysis: Analysis) -> list[str]:
        """The entry's bucket sets that are below the cap, or else the smallest one."""
        set_keys = [self._set_key(request, keyed.scope, b) for b in store_buckets(analysis)]
        sizes = await self._store.set_sizes(set_keys)
        open_keys = [key for key, size in zip(set_keys, sizes, strict=True) if size < BUCKET_CAP]
        return open_keys or [min(zip(sizes, set_keys, strict=True))[1]]

    async def store_failure(self, request: Request, failure: Failure) -> StoreResult:
        """Remember a failed request for the TTL of its error class."""
        keyed = self._keyed(request)
        if not failure.downstream or len(failure.downstream) > self._limits.max_field_chars:
            raise InvalidArgument("failure.downstream must be 1..256 characters")
        if len(failure.message.encode()) > self._limits.max_answer_bytes:
            raise InvalidArgument(f"failure.message is longer than {self._limits.max_answer_bytes} bytes")
        ttl = self._policy.failure_ttl_s(failure.code)
        if ttl is None:
            self.stats.stored("l3", StoreOutcome.SKIPPED_POLICY)
            return StoreResult(StoreOutcome.SKIPPED_POLICY)
        with self._tracer.start_as_current_span("cache.store_failure") as span:
            span.set_attribute("alice.cache.tier", "l3")
            span.set_attribute("alice.cache.downstream", failure.downstream)
            fields: dict[str, bytes | str | int] = {
                "m": FAILURE_MARK, "d": failure.downstream, "c": failure.code, "s": failure.message,
                "t": int(self._wall() * 1000),
            }
            try:
                indexes = [keys.failure_index(failure.downstream)]
                if keyed.scope is not None:  # a personal request's failure goes when its user's data goes
                    indexes.append(keys.user_index(keyed.scope))
                await self._store.write_entry(keyed.l3, fields, ttl, indexes, max(ttl, 60.0))
                await self._store.add_to_set(keys.FAILURE_DOWNSTREAMS, failure.downstream)
            except StoreUnavailable:
                self.stats.stored("l3", StoreOutcome.DROPPED_UNAVAILABLE)
                return StoreResult(StoreOutcome.DROPPED_UNAVAILABLE)
            except CorruptData:
                self.stats.found_corrupt()
                return StoreResult(StoreOutcome.DROPPED_UNAVAILABLE)
            self.stats.stored("l3", StoreOutcome.STORED)
            return StoreResult(StoreOutcome.STORED, ttl)

    async def clear_failures(self, downstream: str, timeout_s: float) -> int:
        """Forget remembered failures of one downstream ("" = all) within `timeout_s`; returns how many went."""
        with self._tracer.start_as_current_span("cache.clear_failures") as span:
            span.set_attribute("alice.cache.downstream", downstream)
            if downstream:
                indexes = [keys.failure_index(downstream)]
            else:
                indexes = [keys.failure_index(d) for d in await self._store.members(keys.FAILURE_DOWNSTREAMS)]
                indexes.append(keys.FAILURE_DOWNSTREAMS)
            return await self._delete(indexes, ":l3:", timeout_s)

    async def invalidate(self, user_id: str, intent: str, timeout_s: float) -> int:
        """Drop entries by user (personal intents), by intent, or one user's entries of one intent, within
        `timeout_s`; StoreUnavailable when Redis did not answer (deleting again is safe)."""
        if not user_id and not intent:
            raise InvalidArgument("invalidate needs a user_id, an intent or both")
        if intent and intent not in INTENTS:
            raise InvalidArgument(f"unknown intent {intent!r}")
        if len(user_id) > self._limits.max_field_chars:
            raise InvalidArgument(f"user_id is longer than {self._limits.max_field_chars} characters")
        with self._tracer.start_as_current_span("cache.invalidate") as span:
            if intent:
                span.set_attribute("alice.cache.intent", intent)
            if user_id and intent:
                indexes = [keys.user_index(user_id, intent)]
            elif user_id:
                personal = [i for i in INTENTS if self._policy.for_intent(i).personal]
                indexes = [keys.user_index(user_id), *(keys.user_index(user_id, i) for i in personal)]
            else:
                indexes = [keys.intent_index(intent)]
            return await self._delete(indexes, ":l1:", timeout_s)

    async def _delete(self, indexes: Sequence[str], count_prefix: str, timeout_s: float) -> int:
        try:
            return await self._store.delete_indexed(indexes, count_prefix, timeout_s=timeout_s)
        except CorruptData:
            self.stats.found_corrupt()
            return 0

    def snapshot(self, reset: bool = False) -> StatsSnapshot:
        snapshot = self.stats.snapshot(self._store.up)
        if reset:
            self.stats.reset()
        return snapshot
