"""The engine with a scripted back end: validation, one repair, clear failures, GenAI spans."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from alice.runtime.errors import InvalidArgument, Unavailable
from alice.runtime.telemetry import Telemetry
from llm_svc.backends import BackendError, ChatRequest, Completion, Event
from llm_svc.engine import Limits, LlmEngine, ModelOutputInvalid
from llm_svc.fault import FaultDelay

REFERENCE = dt.datetime(2026, 3, 10, 9, 0)


class ScriptedBackend:
    """Answers each call with the next scripted text, streamed in two pieces."""

    system = "llama.cpp"
    model = "scripted"

    def __init__(self, *outputs: str | Exception) -> None:
        self.outputs = list(outputs)
        self.requests: list[ChatRequest] = []

    async def start(self) -> None:
        pass

    async def aclose(self) -> None:
        pass

    async def stream(self, request: ChatRequest) -> AsyncIterator[Event]:
        self.requests.append(request)
        output = self.outputs.pop(0)
        if isinstance(output, Exception):
            raise output
        half = len(output) // 2
        yield output[:half]
        yield output[half:]
        yield Completion(output, self.model, input_tokens=100, output_tokens=7, queue_ms=1.0, ttft_ms=20.0,
                         total_ms=50.0)


@pytest.fixture
def engine_for(make_telemetry: Callable[[str], Telemetry]) -> Callable[[ScriptedBackend], LlmEngine]:
    telemetry = make_telemetry("alice-llm-test")
    return lambda backend: LlmEngine({"micro": backend, "planner": backend}, telemetry, Limits())


async def test_valid_output_is_returned_without_repair(
    engine_for: Callable[[ScriptedBackend], LlmEngine], span_exporter: InMemorySpanExporter
) -> None:
    span_exporter.clear()
    backend = ScriptedBackend('{"tool":"timer.set","arguments":{"duration_s":2700}}')
    selection = await engine_for(backend).select_tool("sätt en timer på tre kvart", "micro", REFERENCE)
    assert (selection.intent, selection.arguments, selection.repaired) == ("timer.set", {"duration_s": 2700}, False)
    assert backend.requests[0].json_schema is not None and backend.requests[0].prefix_key == "tool"
    spans = {span.name: span for span in span_exporter.get_finished_spans()}
    chat = spans["chat scripted"]
    assert chat.attributes is not None
    assert chat.attributes["gen_ai.operation.name"] == "chat"
    assert chat.attributes["gen_ai.request.model"] == "scripted"
    assert chat.attributes["gen_ai.usage.input_tokens"] == 100
    assert chat.attributes["gen_ai.usage.output_tokens"] == 7
    assert chat.attributes["alice.llm.ttft_ms"] == 20.0
    assert chat.attributes["alice.llm.queue_ms"] == 1.0
    assert "alice.llm.input_text" not in chat.attributes  # record_text is off
    assert {"llm.queue", "llm.prompt_eval", "llm.generate"} <= set(spans)
    assert spans["llm.prompt_eval"].parent is not None
    assert spans["llm.prompt_eval"].parent.span_id == chat.context.span_id


async def test_one_repair_attempt_fixes_invalid_output(engine_for: Callable[[ScriptedBackend], LlmEngine]) -> None:
    backend = ScriptedBackend('{"tool":"timer.set","arguments":{"duration_s":0}}',
                              '{"tool":"timer.set","arguments":{"duration_s":300}}')
    selection = await engine_for(backend).select_tool("timer fem minuter", "micro", REFERENCE)
    assert selection.repaired and selection.arguments == {"duration_s": 300}
    assert selection.completion.output_tokens == 14
    assert "between 1 and" in backend.requests[1].messages[-1].content


async def test_invalid_twice_is_a_clear_unavailable(engine_for: Callable[[ScriptedBackend], LlmEngine]) -> None:
    backend = ScriptedBackend('{"tool":"weather.lookup","arguments":{"date":"2026-13-01"}}',
                              '{"tool":"weather.lookup"')
    with pytest.raises(ModelOutputInvalid, match="did not validate") as caught:
        await engine_for(backend).select_tool("väder", "micro", REFERENCE)
    assert caught.value.code == "UNAVAILABLE"


async def test_backend_failure_is_unavailable(engine_for: Callable[[ScriptedBackend], LlmEngine]) -> None:
    with pytest.raises(Unavailable, match="connection refused"):
        await engine_for(ScriptedBackend(BackendError("connection refused"))).select_tool("väder", "micro",
                                                                                          REFERENCE)


@pytest.mark.parametrize(
    ("text", "role", "max_tokens", "temperature", "problem"),
    [("", "micro", 0, 0.0, "empty"), ("  ", "micro", 0, 0.0, "empty"), ("x" * 2001, "micro", 0, 0.0, "limit"),
     ("hej", "huge", 0, 0.0, "role"), ("hej", "micro", 100_000, 0.0, "max_tokens"),
     ("hej", "micro", -1, 0.0, "negative"), ("hej", "micro", 0, 9.0, "temperature")],
    ids=["empty", "blank", "too-long", "role", "max-tokens", "negative-tokens", "temperature"],
)
async def test_bad_input_is_invalid_argument(engine_for: Callable[[ScriptedBackend], LlmEngine], text: str,
                                             role: str, max_tokens: int, temperature: float, problem: str) -> None:
    with pytest.raises(InvalidArgument, match=problem):
        await engine_for(ScriptedBackend()).select_tool(text, role, REFERENCE, max_tokens=max_tokens,
                                                        temperature=temperature)


async def test_answers_stream_pieces_then_stats(engine_for: Callable[[ScriptedBackend], LlmEngine]) -> None:
    engine = engine_for(ScriptedBackend("Huvudstaden i Norge är Oslo."))
    request = engine.answer_request("vad är huvudstaden i Norge")
    events = [event async for event in engine.answer(request, "planner", "vad är huvudstaden i Norge")]
    assert "".join(e for e in events if isinstance(e, str)) == "Huvudstaden i Norge är Oslo."
    assert isinstance(events[-1], Completion) and request.prefix_key == "answer"
    assert request.max_tokens == Limits().answer_max_tokens


async def test_fault_delay_is_applied(make_telemetry: Callable[[str], Telemetry]) -> None:
    import time

    backend = ScriptedBackend('{"tool":"time.now","arguments":{}}')
    engine = LlmEngine({"micro": backend}, make_telemetry("alice-llm-test"), Limits(fault_delay=FaultDelay(50)))
    started = time.monotonic()
    await engine.select_tool("vad är klockan", "micro", REFERENCE)
    assert time.monotonic() - started >= 0.05


async def test_generations_are_measured_in_genai_metrics(scrape_metrics: Callable[[int], Any]) -> None:
    import asyncio

    from alice.runtime.config import TelemetrySettings
    from alice.runtime.telemetry import setup_telemetry

    telemetry = setup_telemetry(TelemetrySettings("alice-llm-test", None, 1.0, False, False, metrics_port=0))
    try:
        backend = ScriptedBackend('{"tool":"time.now","arguments":{}}', BackendError("connection refused"))
        engine = LlmEngine({"micro": backend}, telemetry, Limits())
        await engine.select_tool("vad är klockan", "micro", REFERENCE)
        with pytest.raises(Unavailable):
            await engine.select_tool("vad är klockan", "micro", REFERENCE)
        samples = await asyncio.to_thread(scrape_metrics, telemetry.metrics_port)
    finally:
        telemetry.shutdown()
    common = {"gen_ai_operation_name": "chat", "gen_ai_provider_name": "llama.cpp",
              "gen_ai_request_model": "scripted", "alice_llm_role": "micro", "alice_llm_task": "select_tool"}
    tokens = "gen_ai_client_token_usage"
    assert samples.value(f"{tokens}_sum", gen_ai_token_type="input", **common) == 100
    assert samples.value(f"{tokens}_sum", gen_ai_token_type="output", gen_ai_response_model="scripted") == 7
    assert samples.value(f"{tokens}_bucket", gen_ai_token_type="output", le="16") == 1
    assert samples.value("gen_ai_server_time_to_first_token_seconds_sum", **common) == pytest.approx(0.02)
    assert samples.value("gen_ai_server_time_per_output_token_seconds_sum") == pytest.approx(0.005)  # 30 ms / 6
    duration = "gen_ai_client_operation_duration_seconds_count"
    assert samples.value(duration, gen_ai_response_model="scripted", **common) == 1
    assert samples.value(duration, error_type="backend", **common) == 1
    assert samples.value("alice_llm_queue_duration_milliseconds_sum", gen_ai_request_model="scripted") == 1.0
