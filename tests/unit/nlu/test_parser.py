"""Unit tests of the NLU domain: validation, routing, multi-step, spans, and the batching embedding front end."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from alice.runtime.errors import InvalidArgument
from nlu_svc import classifier as clf
from nlu_svc import routing
from nlu_svc.config import MODEL_DIR
from nlu_svc.embedders import EmbeddingService, Vector, l2_normalise
from nlu_svc.parser import MAX_TEXT_CHARS, Parser

NOW = dt.datetime(2026, 3, 10, 8, 0, tzinfo=dt.UTC)  # 09:00 Europe/Stockholm
TIMER_DIM = 0


class FakeEmbedder:
    """Deterministic 4-d vectors; records batch sizes and the thread that encoded."""

    model_id = "fake-embedder"
    dim = 4

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.threads: set[str] = set()

    def encode(self, texts: list[str]) -> Vector:
        self.batches.append(list(texts))
        self.threads.add(threading.current_thread().name)
        rows = [[1.0 if "timer" in t else 0.0, float(len(t) % 7) + 0.5, 1.0, 0.0] for t in texts]
        return l2_normalise(np.array(rows))


class CountingEmbeddings:
    """The parser's Embeddings protocol around FakeEmbedder, counting calls."""

    model_id = FakeEmbedder.model_id

    def __init__(self) -> None:
        self.calls: list[str] = []
        self._embedder = FakeEmbedder()

    async def embed(self, text: str) -> tuple[Vector, bool]:
        self.calls.append(text)
        return self._embedder.encode([text])[0], False


def fake_head() -> clf.EmbeddingHead:
    weights = np.zeros((4, len(clf.LABELS)), dtype=np.float32)
    weights[TIMER_DIM, clf.LABELS.index("timer.set")] = 30.0
    return clf.EmbeddingHead(FakeEmbedder.model_id, weights, np.zeros(len(clf.LABELS), dtype=np.float32))


@pytest.fixture(scope="module")
def lexical_only() -> clf.IntentClassifier:
    return clf.IntentClassifier.load(MODEL_DIR, embedder_id=None)


@pytest.fixture(scope="module")
def ensemble(lexical_only: clf.IntentClassifier) -> clf.IntentClassifier:
    base = lexical_only.calibration
    calibration = clf.Calibration("ensemble", base.lexical_temperature, 0.9, 1.0 / base.lexical_temperature, 1.0,
                                  base.abstain, base.fast, FakeEmbedder.model_id)
    return clf.IntentClassifier(lexical_only.lexical, calibration, fake_head())


@pytest.fixture
def spans() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


@pytest.fixture
def parser(ensemble: clf.IntentClassifier, spans: tuple[TracerProvider, InMemorySpanExporter]) -> Parser:
    return Parser(ensemble, CountingEmbeddings(), spans[0].get_tracer("test"))


@pytest.mark.parametrize(
    ("text", "reference", "zone", "message"),
    [
        ("", NOW, "", "empty"),
        ("   \n\t ", NOW, "", "empty"),
        ("hej " * 600, NOW, "", str(MAX_TEXT_CHARS)),
        ("vad är klockan", None, "", "reference_time"),
        ("vad är klockan", NOW, "Mars/Olympus_Mons", "time zone"),
        ("vad är klockan", NOW, "../../etc/passwd", "time zone"),
    ],
    ids=["empty", "whitespace-only", "too-long", "no-reference-time", "unknown-zone", "path-as-zone"],
)
async def test_bad_input_is_invalid_argument(parser: Parser, text: str, reference: dt.datetime | None, zone: str,
                                             message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        await parser.parse(text, reference, zone)


async def test_limit_counts_trimmed_characters(parser: Parser) -> None:
    result = await parser.parse("  " + "a" * MAX_TEXT_CHARS + "  ", NOW)
    assert result.intent in clf.LABELS


@pytest.mark.parametrize(
    "text",
    ["\x00\x07hej\x1b[31m", "😀😀😀", "🙂", "Привет, как дела?", "hej Привет boka möte 我 kl 3", "\u200b\u202e",
     "?!?!", "a" * MAX_TEXT_CHARS],
    ids=["control-chars", "emoji-only", "one-emoji", "cyrillic", "mixed-scripts", "zero-width-only", "punctuation",
         "max-length"],
)
async def test_odd_input_gets_an_answer(parser: Parser, text: str) -> None:
    result = await parser.parse(text, NOW, "Europe/Stockholm")
    assert result.intent in clf.LABELS
    assert 0.0 <= result.confidence <= 1.0
    assert result.route in (routing.FAST, routing.MICRO, routing.PLANNER)


@pytest.mark.parametrize("text", ["😀😀😀", "12345", "?!", "\u200b"], ids=["emoji", "digits", "punct", "zero-width"])
async def test_text_without_words_abstains_to_the_planner(parser: Parser, text: str) -> None:
    result = await parser.parse(text, NOW)
    assert result.abstained and result.route == routing.PLANNER


@pytest.mark.parametrize(
    ("text", "intent", "route", "slots"),
    [
        ("boka möte med Anna imorgon kl 14", "calendar.create_draft", "fast",
         {"start": "2026-03-11T14:00", "attendees": ["Anna"]}),
        ("hur blir vädret i Göteborg imorgon", "weather.lookup", "fast", {"city": "Göteborg", "date": "2026-03-11"}),
        ("sätt en timer på tre kvart", "timer.set", "fast", {"duration_s": 2700}),
        ("sätt en timer", "timer.set", "micro", {}),
        ("varför är himlen blå", "info.query", "planner", {}),
        ("vad är klockan", "time.now", "fast", {}),
    ],
    ids=["calendar-fast", "weather-fast", "timer-fast", "timer-missing-duration", "info-planner", "time-fast"],
)
async def test_parse_intent_slots_and_route(parser: Parser, text: str, intent: str, route: str,
                                            slots: dict[str, object]) -> None:
    result = await parser.parse(text, NOW, "Europe/Stockholm")
    assert (result.intent, result.route, result.slots) == (intent, route, slots)
    assert not result.abstained
    assert result.normalized_text == text.lower()


async def test_missing_required_slots_are_listed(parser: Parser) -> None:
    result = await parser.parse("sätt en timer", NOW)
    assert result.missing_slots == ("duration_s",)


async def test_multi_step_request_goes_to_the_planner(parser: Parser) -> None:
    result = await parser.parse("vad är klockan och sen hur blir vädret i Malmö imorgon", NOW)
    assert result.multi_step and result.route == routing.PLANNER


@pytest.mark.parametrize(
    "text",
    ["boka möte med Anna och Erik på fredag kl 10", "starta timer tio minuter sen ska jag ta ut brödet",
     "hej och sen vad är klockan"],
    ids=["names-joined-by-och", "sen-as-later", "greeting-then-request"],
)
async def test_single_requests_are_not_multi_step(parser: Parser, text: str) -> None:
    assert not (await parser.parse(text, NOW)).multi_step


async def test_embedding_is_consulted_only_when_the_lexical_model_is_unsure(ensemble: clf.IntentClassifier) -> None:
    embeddings = CountingEmbeddings()
    parser = Parser(ensemble, embeddings, TracerProvider().get_tracer("test"))
    await parser.parse("vad är klockan", NOW)
    assert embeddings.calls == []
    result = await parser.parse("äggklocka timer xyz qqq", NOW)
    assert embeddings.calls == ["äggklocka timer xyz qqq"]
    assert result.used_embedding and result.intent == "timer.set"


async def test_spans_carry_prefixed_attributes_but_not_the_text(
        parser: Parser, spans: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    await parser.parse("hur blir vädret i Malmö", NOW)
    finished = {s.name: s for s in spans[1].get_finished_spans()}
    assert {"nlu.classify", "nlu.slots"} <= finished.keys()
    attributes = dict(finished["nlu.classify"].attributes or {})
    assert attributes["alice.intent"] == "weather.lookup"
    assert attributes["alice.nlu.abstained"] is False
    assert attributes["alice.text.length"] == len("hur blir vädret i Malmö")
    assert 0 < float(attributes["alice.confidence"]) <= 1  # type: ignore[arg-type]
    assert all(k.startswith("alice.") for s in finished.values() for k in (s.attributes or {}))
    assert not any("Malmö" in str(v) for s in finished.values() for v in (s.attributes or {}).values()
                   if not isinstance(v, tuple))


async def test_encode_span_when_the_embedding_is_consulted(
        parser: Parser, spans: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    await parser.parse("äggklocka timer xyz qqq", NOW)
    assert "nlu.encode" in {s.name for s in spans[1].get_finished_spans()}


async def test_text_is_recorded_only_when_allowed(ensemble: clf.IntentClassifier,
                                                  spans: tuple[TracerProvider, InMemorySpanExporter]) -> None:
    parser = Parser(ensemble, CountingEmbeddings(), spans[0].get_tracer("test"), record_text=True)
    await parser.parse("vad är klockan", NOW)
    classify = next(s for s in spans[1].get_finished_spans() if s.name == "nlu.classify")
    assert (classify.attributes or {})["alice.text"] == "vad är klockan"


async def test_parses_are_measured_with_bounded_labels(ensemble: clf.IntentClassifier,
                                                      scrape_metrics: Callable[[int], Any]) -> None:
    from alice.runtime.config import TelemetrySettings
    from alice.runtime.telemetry import setup_telemetry

    telemetry = setup_telemetry(TelemetrySettings("alice-nlu-test", None, 1.0, False, False, metrics_port=0))
    try:
        parser = Parser(ensemble, CountingEmbeddings(), telemetry.tracer, meter=telemetry.meter)
        for text in ("vad är klockan", "vad är klockan", "äggklocka timer xyz qqq", "🙂"):
            await parser.parse(text, NOW)
        # The records run on the loop's next turn (Deferred); the scrape starts in a thread at once, so let them
        # run first (without this the test raced them, and lost on a slow machine).
        await asyncio.sleep(0)
        samples = await asyncio.to_thread(scrape_metrics, telemetry.metrics_port)
    finally:
        telemetry.shutdown()
    assert samples.value("alice_nlu_confidence_count") == 4  # the parse count
    assert samples.value("alice_nlu_confidence_count", alice_intent="time.now", alice_route="fast",
                         alice_nlu_abstained="false") == 2
    assert samples.value("alice_nlu_confidence_count", alice_nlu_abstained="true") == 1
    assert samples.value("alice_nlu_confidence_count", alice_intent="time.now") == 2
    assert samples.value("alice_nlu_confidence_bucket", alice_intent="time.now", le="1.0") == 2
    assert samples.labels("alice_nlu_confidence_bucket", "alice_intent") <= set(clf.LABELS)
    assert samples.value("alice_nlu_parse_duration_milliseconds_count", alice_nlu_used_embedding="true") == 1
    assert not any("klockan" in value for _, labels, _ in samples.samples for value in labels.values())


async def test_parser_rejects_a_head_for_another_embedder(ensemble: clf.IntentClassifier) -> None:
    class Other(CountingEmbeddings):
        model_id = "other"

    with pytest.raises(ValueError, match="embedding head"):
        Parser(ensemble, Other(), TracerProvider().get_tracer("test"))


@pytest.mark.parametrize(
    ("intent", "abstained", "confident", "missing", "multi", "route"),
    [
        ("timer.set", False, True, (), False, "fast"),
        ("timer.set", False, True, ("duration_s",), False, "micro"),
        ("timer.set", False, False, (), False, "micro"),
        ("timer.set", True, False, (), False, "planner"),
        ("timer.set", False, True, (), True, "planner"),
        ("info.query", False, True, (), False, "planner"),
        ("greeting.hello", False, True, (), False, "fast"),
    ],
    ids=["confident-complete", "missing-slot", "middling", "abstained", "multi-step", "info", "greeting"],
)
def test_route_hint(intent: str, abstained: bool, confident: bool, missing: tuple[str, ...], multi: bool,
                    route: str) -> None:
    assert routing.route_hint(intent, abstained=abstained, confident=confident, missing_slots=missing,
                              multi_step=multi) == route


@pytest.mark.parametrize(
    ("text", "parts"),
    [("vad är klockan och sen hur blir vädret", 2), ("boka möte och även mejla Erik", 2),
     ("väder i Malmö samt i Lund", 2), ("boka möte med Anna och Erik", 1), ("timer tio minuter sen", 1)],
    ids=["och-sen", "och-aven", "samt", "och-alone", "sen-alone"],
)
def test_split_requests(text: str, parts: int) -> None:
    assert len(routing.split_requests(text)) == parts


async def test_embedding_service_batches_caches_and_runs_off_the_loop() -> None:
    embedder = FakeEmbedder()
    service = EmbeddingService(embedder, cache_size=2, max_batch=8, max_wait_s=0.02)
    try:
        results = await asyncio.gather(*(service.embed(f"text {i}") for i in range(5)), service.embed("text 0"))
        assert len(embedder.batches) == 1 and sorted(embedder.batches[0]) == [f"text {i}" for i in range(5)]
        assert embedder.threads == {"nlu-encode_0"}
        assert np.allclose(results[0][0], results[5][0])
        vector, cached = await service.embed("text 4")
        assert cached and np.allclose(vector, results[4][0])
        _, cached = await service.embed("text 0")  # evicted: the cache holds two entries
        assert not cached
        assert await service.warm_up() >= 0
    finally:
        await service.close()


async def test_embedding_service_splits_at_max_batch() -> None:
    embedder = FakeEmbedder()
    service = EmbeddingService(embedder, cache_size=0, max_batch=2, max_wait_s=0.02)
    try:
        await asyncio.gather(*(service.embed(f"t{i}") for i in range(5)))
        assert [len(b) for b in embedder.batches] == [2, 2, 1]
    finally:
        await service.close()
