"""Remote back ends against httpx.MockTransport.

No Ollama can run on this machine, so the Ollama back end is tested against response shapes transcribed from
Ollama's API documentation (tests/fixtures/ollama). The OpenAI-compatible back end also runs against a real
llama.cpp server in tests/integration/test_openai_backend.py; here only its request building and SSE parsing.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from alice.runtime.errors import DeadlineExceeded, InvalidArgument, ResourceExhausted
from llm_svc.backends import BackendError, ChatRequest, Completion, complete
from llm_svc.backends.remote import OllamaBackend, OpenAICompatibleBackend
from llm_svc.prompts import Message
from llm_svc.scheduler import Scheduler
from llm_svc.toolcall import parse_tool_call, tool_call_schema

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "ollama"
REQUEST = ChatRequest([Message("system", "s"), Message("user", "väder i Luleå på torsdag")], max_tokens=64,
                      json_schema=tool_call_schema(), prefix_key="tool")


def ollama(handler: httpx.MockTransport, model: str = "qwen2.5-coder:1.5b") -> tuple[OllamaBackend, httpx.AsyncClient]:
    client = httpx.AsyncClient(transport=handler)
    return OllamaBackend(client, "http://ollama:11434/", model, scheduler=Scheduler("o", 2, 2)), client


async def test_ollama_request_and_streamed_tool_call() -> None:
    seen: list[dict[str, object]] = []

    def handle(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/chat"
        seen.append(json.loads(request.content))
        return httpx.Response(200, content=(FIXTURES / "chat_stream_tool_call.ndjson").read_bytes(),
                              headers={"content-type": "application/x-ndjson"})

    backend, client = ollama(httpx.MockTransport(handle))
    async with client:
        events = [e async for e in backend.stream(REQUEST)]
    body = seen[0]
    assert body["model"] == "qwen2.5-coder:1.5b" and body["stream"] is True
    assert body["format"] == tool_call_schema()
    assert body["options"] == {"temperature": 0.0, "num_predict": 64}
    assert body["messages"] == [{"role": "system", "content": "s"},
                                {"role": "user", "content": "väder i Luleå på torsdag"}]
    final = events[-1]
    assert isinstance(final, Completion)
    assert final.text == "".join(e for e in events if isinstance(e, str))
    assert parse_tool_call(final.text).arguments == {"city": "Luleå", "date": "2026-03-12"}
    assert (final.input_tokens, final.output_tokens, final.finish_reason) == (34, 12, "stop")
    assert final.extra["server_eval_ms"] == 175.0


async def test_ollama_answer_without_format() -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        assert "format" not in json.loads(request.content)
        return httpx.Response(200, content=(FIXTURES / "chat_stream_answer.ndjson").read_bytes())

    backend, client = ollama(httpx.MockTransport(handle))
    async with client:
        result = await complete(backend, ChatRequest([Message("user", "vad är huvudstaden i Norge")], 32))
    assert result.text == "Huvudstaden i Norge är Oslo." and result.output_tokens == 8


async def test_ollama_start_checks_the_model_is_pulled() -> None:
    tags = (FIXTURES / "tags.json").read_bytes()
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=tags))
    backend, client = ollama(transport)
    async with client:
        await backend.start()
        missing, _ = ollama(transport, model="qwen2.5-coder:7b")
        missing._client = client
        with pytest.raises(BackendError, match=r"ollama pull qwen2\.5-coder:7b"):
            await missing.start()


@pytest.mark.parametrize(
    ("status", "error"),
    [(404, BackendError), (400, InvalidArgument), (429, ResourceExhausted), (500, BackendError)],
    ids=["model-not-found", "bad-request", "overloaded", "server-error"],
)
async def test_ollama_http_errors_map_to_clear_errors(status: int, error: type[Exception]) -> None:
    body = (FIXTURES / "error_model_not_found.json").read_bytes()
    backend, client = ollama(httpx.MockTransport(lambda request: httpx.Response(status, content=body)))
    async with client:
        with pytest.raises(error, match=str(status)):
            await complete(backend, REQUEST)


async def test_unreachable_server_is_a_backend_error_and_frees_the_slot() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    scheduler = Scheduler("o", 1, 0)
    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as client:
        backend = OllamaBackend(client, "http://ollama:11434", "m", scheduler=scheduler)
        for _ in range(2):  # the second call would be RESOURCE_EXHAUSTED if the first kept its slot
            with pytest.raises(BackendError, match="connection refused"):
                await complete(backend, REQUEST)


async def test_passed_deadline_fails_before_calling() -> None:
    calls: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200)

    transport = httpx.MockTransport(handle)
    backend, client = ollama(transport)
    async with client:
        with pytest.raises(DeadlineExceeded):
            await complete(backend, ChatRequest([Message("user", "x")], 8, deadline=time.monotonic() - 1))
    assert calls == []


SSE = (
    'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"qwen-0.5b","choices":[{"index":0,'
    '"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n'
    'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"qwen-0.5b","choices":[{"index":0,'
    '"delta":{"content":"{\\"tool\\":\\"time.now\\","},"finish_reason":null}]}\n\n'
    'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"qwen-0.5b","choices":[{"index":0,'
    '"delta":{"content":"\\"arguments\\":{}}"},"finish_reason":"stop"}]}\n\n'
    'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"qwen-0.5b","choices":[],'
    '"usage":{"prompt_tokens":812,"completion_tokens":9,"total_tokens":821}}\n\n'
    "data: [DONE]\n\n"
)


@pytest.mark.parametrize("response_format", ["json_schema", "json_object"])
async def test_openai_request_and_sse_parsing(response_format: str) -> None:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=SSE.encode(), headers={"content-type": "text/event-stream"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handle)) as client:
        backend = OpenAICompatibleBackend(client, "http://vllm:8000", "qwen-0.5b", scheduler=Scheduler("o", 1, 1),
                                          response_format=response_format,  # type: ignore[arg-type]
                                          api_key="k")
        result = await complete(backend, REQUEST)
    body = json.loads(seen[0].content)
    assert seen[0].url.path == "/v1/chat/completions" and seen[0].headers["authorization"] == "Bearer k"
    assert body["stream"] is True and body["max_tokens"] == 64
    assert body["response_format"]["type"] == response_format
    schema = (body["response_format"]["json_schema"]["schema"] if response_format == "json_schema"
              else body["response_format"]["schema"])
    assert schema == tool_call_schema()
    assert parse_tool_call(result.text).intent == "time.now"
    assert (result.input_tokens, result.output_tokens, result.model) == (812, 9, "qwen-0.5b")
