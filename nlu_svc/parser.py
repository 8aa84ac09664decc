"""The NLU domain: text -> intent, calibrated confidence, slots and route hint (no grpc here)."""

from __future__ import annotations

import datetime as dt
import functools
import time
from dataclasses import dataclass
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from opentelemetry import metrics, trace

from alice.runtime.errors import InvalidArgument
from alice.runtime.telemetry import Deferred
from alice.swedish import extract_slots, normalize
from nlu_svc import routing
from nlu_svc.classifier import Decision, IntentClassifier
from nlu_svc.embedders import Vector

MAX_TEXT_CHARS = 2000
DEFAULT_TIME_ZONE = "Europe/Stockholm"


class Embeddings(Protocol):
    """Async, cached access to a sentence embedding model (nlu_svc.embedders.EmbeddingService)."""

    @property
    def model_id(self) -> str: ...

    async def embed(self, text: str) -> tuple[Vector, bool]: ...


@dataclass(frozen=True)
class ParseResult:
    """The understanding of one utterance, in canonical strings."""

    intent: str
    confidence: float
    abstained: bool
    slots: dict[str, object]
    route: str
    alternatives: tuple[tuple[str, float], ...]
    normalized_text: str
    missing_slots: tuple[str, ...]
    used_embedding: bool
    multi_step: bool


@functools.lru_cache(maxsize=256)
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise InvalidArgument(f"unknown time zone {name!r}; use an IANA name such as Europe/Stockholm") from error


def validate_text(text: str) -> str:
    """The trimmed text; InvalidArgument when it is empty or longer than MAX_TEXT_CHARS."""
    trimmed = text.strip()
    if not trimmed:
        raise InvalidArgument("text is empty")
    if len(trimmed) > MAX_TEXT_CHARS:
        raise InvalidArgument(f"text has {len(trimmed)} characters; the limit is {MAX_TEXT_CHARS}")
    return trimmed


def resolve_reference(reference_time: dt.datetime | None, time_zone: str) -> dt.datetime:
    """The reference time in the user's zone; InvalidArgument when it is missing or the zone is unknown."""
    zone = _zone(time_zone.strip() or DEFAULT_TIME_ZONE)
    if reference_time is None:
        raise InvalidArgument("reference_time is required (relative dates resolve against it)")
    if reference_time.tzinfo is None:
        reference_time = reference_time.replace(tzinfo=dt.UTC)
    return reference_time.astimezone(zone)


class Parser:
    """Classifier + slots + route hint, with a span per step and the NLU metrics (docs/observability.md)."""

    def __init__(self, classifier: IntentClassifier, embeddings: Embeddings | None, tracer: trace.Tracer, *,
                 record_text: bool = False, meter: metrics.Meter | None = None) -> None:
        if classifier.head is not None and embeddings is None:
            raise ValueError(f"classifier variant {classifier.variant} needs an embedding model")
        if classifier.head is not None and embeddings is not None \
                and classifier.head.embedder_id != embeddings.model_id:
            raise ValueError(f"embedding head is for {classifier.head.embedder_id}, "
                             f"the embedder is {embeddings.model_id}")
        self.classifier = classifier
        self._embeddings = embeddings
        self._tracer = tracer
        self._record_text = record_text
        meter = meter or metrics.NoOpMeter("alice")
        # Labels are bounded: intents and routes come from the taxonomy, never from the text.
        # One record per parse and histogram: the confidence histogram's count is the parse count (by intent, route
        # hint and abstention), so there is no separate counter to pay for on every request.
        self._confidence = Deferred(meter.create_histogram(
            "alice.nlu.confidence", unit="1",
            description="Calibrated confidence of the chosen intent, per parse (its count: parses)"))
        self._duration = Deferred(meter.create_histogram(
            "alice.nlu.parse.duration", unit="ms", description="Parse time inside the NLU (classify and slots)"))

    async def embed(self, text: str) -> tuple[Vector, str]:
        """The embedding of the normalised text and the model id; InvalidArgument for bad text."""
        if self._embeddings is None:
            raise InvalidArgument("this NLU instance has no embedding model")
        normalized = normalize(validate_text(text))
        with self._tracer.start_as_current_span("nlu.encode") as span:
            span.set_attribute("alice.text.length", len(normalized))
            vector, cached = await self._embeddings.embed(normalized)
            span.set_attribute("alice.nlu.embedding_cached", cached)
        return vector, self._embeddings.model_id

    async def parse(self, text: str, reference_time: dt.datetime | None, time_zone: str = "") -> ParseResult:
        trimmed = validate_text(text)
        now = resolve_reference(reference_time, time_zone)
        started = time.perf_counter()
        normalized = normalize(trimmed)
        with self._tracer.start_as_current_span("nlu.classify") as span:
            span.set_attribute("alice.text.length", len(trimmed))
            if self._record_text:
                span.set_attribute("alice.text", trimmed)
            decision = await self._classify(normalized)
            multi_step = routing.is_multi_step(normalized, self._confident_intent)
            span.set_attribute("alice.intent", decision.intent)
            span.set_attribute("alice.confidence", round(decision.confidence, 4))
            span.set_attribute("alice.nlu.abstained", decision.abstained)
            span.set_attribute("alice.nlu.used_embedding", decision.used_embedding)
            span.set_attribute("alice.nlu.multi_step", multi_step)
        with self._tracer.start_as_current_span("nlu.slots") as span:
            stated = extract_slots(decision.intent, trimmed, now)
            found, missing = stated.slots, stated.missing
            route = routing.route_hint(decision.intent, abstained=decision.abstained, confident=decision.confident,
                                       missing_slots=missing, multi_step=multi_step)
            span.set_attribute("alice.nlu.slots", sorted(found))
            span.set_attribute("alice.nlu.missing_slots", list(missing))
            span.set_attribute("alice.route", route)
        self._duration.record((time.perf_counter() - started) * 1000,
                              {"alice.nlu.used_embedding": decision.used_embedding})
        self._confidence.record(decision.confidence, {"alice.intent": decision.intent, "alice.route": route,
                                                      "alice.nlu.abstained": decision.abstained})
        return ParseResult(
            intent=decision.intent, confidence=decision.confidence, abstained=decision.abstained, slots=found,
            route=route, alternatives=decision.alternatives, normalized_text=normalized, missing_slots=missing,
            used_embedding=decision.used_embedding, multi_step=multi_step,
        )

    async def _classify(self, normalized: str) -> Decision:
        logits = self.classifier.lexical_logits(normalized)
        if not any(ch.isalpha() for ch in normalized):
            # emoji, digits or punctuation only: nothing to understand, so no model is asked
            decision = self.classifier.decide(self.classifier.probabilities(logits), used_embedding=False)
            return Decision(decision.intent, decision.confidence, True, False, decision.alternatives, False)
        if self._embeddings is None or not self.classifier.needs_embedding(logits):
            return self.classifier.decide(self.classifier.probabilities(logits), used_embedding=False)
        with self._tracer.start_as_current_span("nlu.encode") as span:
            vector, cached = await self._embeddings.embed(normalized)
            span.set_attribute("alice.nlu.embedding_cached", cached)
        return self.classifier.decide(self.classifier.probabilities(logits, vector), used_embedding=True)

    def _confident_intent(self, part: str) -> str | None:
        decision = self.classifier.classify_lexical(part)
        return None if decision.abstained else decision.intent
