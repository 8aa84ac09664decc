"""Remote back ends over httpx.AsyncClient: Ollama's native /api/chat and OpenAI-compatible /v1/chat/completions."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any, Literal

import httpx

from alice.runtime.errors import DeadlineExceeded, InvalidArgument, ResourceExhausted
from llm_svc.backends import BackendError, ChatRequest, Completion, Event
from llm_svc.scheduler import Scheduler

ResponseFormat = Literal["json_schema", "json_object"]


def _timeout(request: ChatRequest, default_s: float) -> float:
    if request.deadline is None:
        return default_s
    remaining = request.deadline - time.monotonic()
    if remaining <= 0:
        raise DeadlineExceeded("deadline passed before the model server was called")
    return min(remaining, default_s)


async def _raise_for_status(response: httpx.Response, server: str) -> None:
    if response.status_code == 200:
        return
    body = (await response.aread()).decode("utf-8", errors="replace")[:300]
    message = f"{server} answered HTTP {response.status_code}: {body}"
    if response.status_code == 400:
        raise InvalidArgument(message)  # e.g. the prompt exceeds the server's context
    if response.status_code == 429:
        raise ResourceExhausted(message)
    raise BackendError(message)


class _Remote:
    """Shared plumbing: admission through a scheduler, deadlines as httpx timeouts, error mapping."""

    system = "remote"

    def __init__(self, client: httpx.AsyncClient, base_url: str, model: str, *, scheduler: Scheduler,
                 timeout_s: float = 30.0) -> None:
        self._client = client
        self._base_url = base_url.rstrip("/")
        self._model = model
        self._scheduler = scheduler
        self._timeout_s = timeout_s

    @property
    def model(self) -> str:
        return self._model

    async def aclose(self) -> None:
        """The client belongs to whoever built it (server.py closes it)."""

    async def stream(self, request: ChatRequest) -> AsyncIterator[Event]:
        queue_ms = await self._scheduler.acquire(request.deadline)
        try:
            async for event in self._stream(request, _timeout(request, self._timeout_s)):
                if isinstance(event, Completion):
                    event.queue_ms = queue_ms
                yield event
        except httpx.TimeoutException:
            if request.deadline is not None and time.monotonic() >= request.deadline - 0.01:
                raise DeadlineExceeded(f"{self.system} server did not finish before the deadline") from None
            raise BackendError(f"{self.system} server at {self._base_url} timed out") from None
        except httpx.HTTPError as error:
            raise BackendError(f"{self.system} server at {self._base_url}: {error}") from None
        finally:
            self._scheduler.release()

    def _stream(self, request: ChatRequest, timeout_s: float) -> AsyncIterator[Event]:
        raise NotImplementedError

    @staticmethod
    def _messages(request: ChatRequest) -> list[dict[str, str]]:
        return [{"role": m.role, "content": m.content} for m in request.messages]


class OllamaBackend(_Remote):
    """Ollama's native API: POST /api/chat with `format` (a JSON schema) and NDJSON streaming."""

    system = "ollama"

    async def start(self) -> None:
        try:
            response = await self._client.get(f"{self._base_url}/api/tags", timeout=self._timeout_s)
        except httpx.HTTPError as error:
            raise BackendError(f"ollama at {self._base_url} is unreachable: {error}") from None
        await _raise_for_status(response, "ollama")
        names = {m.get("name") for m in response.json().get("models", [])} | {
            m.get("model") for m in response.json().get("models", [])}
        if self._model not in names and f"{self._model}:latest" not in names:
            raise BackendError(
                f"ollama at {self._base_url} has no model {self._model!r}; run: ollama pull {self._model}"
            )

    def build_body(self, request: ChatRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self._model,
            "messages": self._messages(request),
            "stream": True,
            "options": {"temperature": request.temperature, "num_predict": request.max_tokens},
        }
        if request.json_schema is not None:
            body["format"] = dict(request.json_schema)
        return body

    async def _stream(self, request: ChatRequest, timeout_s: float) -> AsyncIterator[Event]:
        started = time.monotonic()
        first: float | None = None
        pieces: list[str] = []
        async with self._client.stream("POST", f"{self._base_url}/api/chat", json=self.build_body(request),
                                       timeout=timeout_s) as response:
            await _raise_for_status(response, "ollama")
            async for line in response.aiter_lines():
                if not line.strip():
                    continue
                chunk = json.loads(line)
                if "error" in chunk:
                    raise BackendError(f"ollama: {chunk['error']}")
                piece = (chunk.get("message") or {}).get("content") or ""
                if piece:
                    first = first or time.monotonic()
                    pieces.append(piece)
                    yield piece
                if chunk.get("done"):
                    yield self._completion(chunk, "".join(pieces), started, first)
                    return
        raise BackendError("ollama stream ended without a final message")

    def _completion(self, final: Mapping[str, Any], text: str, started: float, first: float | None) -> Completion:
        ended = time.monotonic()
        return Completion(
            text=text,
            model=str(final.get("model") or self._model),
            input_tokens=int(final.get("prompt_eval_count") or 0),
            output_tokens=int(final.get("eval_count") or 0),
            ttft_ms=((first or ended) - started) * 1000,
            total_ms=(ended - started) * 1000,
            finish_reason=str(final.get("done_reason") or "stop"),
            extra={
                "server_prompt_eval_ms": int(final.get("prompt_eval_duration") or 0) / 1e6,
                "server_eval_ms": int(final.get("eval_duration") or 0) / 1e6,
            },
        )


class OpenAICompatibleBackend(_Remote):
    """Any OpenAI-compatible server (vLLM, llama.cpp server, Ollama's /v1): /v1/chat/completions with SSE.

    `response_format`: "json_schema" is OpenAI's structured-output form; "json_object" sends
    `{"type": "json_object", "schema": ...}`, the form llama-cpp-python's server constrains with.
    """

    system = "openai"

    def __init__(self, client: httpx.AsyncClient, base_url: str, model: str, *, scheduler: Scheduler,
                 timeout_s: float = 30.0, response_format: ResponseFormat = "json_schema",
                 api_key: str | None = None) -> None:
        super().__init__(client, base_url, model, scheduler=scheduler, timeout_s=timeout_s)
        self._response_format = response_format
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    async def start(self) -> None:
        try:
            response = await self._client.get(f"{self._base_url}/v1/models", headers=self._headers,
                                              timeout=self._timeout_s)
        except httpx.HTTPError as error:
            raise BackendError(f"OpenAI-compatible server at {self._base_url} is unreachable: {error}") from None
        await _raise_for_status(response, "openai")

    def build_body(self, request: ChatRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self._model,
            "messages": self._messages(request),
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if request.json_schema is not None:
            if self._response_format == "json_schema":
                body["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {"name": "tool_call", "schema": dict(request.json_schema), "strict": True},
                }
            else:
                body["response_format"] = {"type": "json_object", "schema": dict(request.json_schema)}
        return body

    async def _stream(self, request: ChatRequest, timeout_s: float) -> AsyncIterator[Event]:
        started = time.monotonic()
        first: float | None = None
        pieces: list[str] = []
        usage: Mapping[str, Any] = {}
        finish = "stop"
        model = self._model
        chunks = 0
        done = False
        async with self._client.stream("POST", f"{self._base_url}/v1/chat/completions", headers=self._headers,
                                       json=self.build_body(request), timeout=timeout_s) as response:
            await _raise_for_status(response, "openai")
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    done = True
                    break
                chunk = json.loads(data)
                model = str(chunk.get("model") or model)
                usage = chunk.get("usage") or usage
                for choice in chunk.get("choices") or []:
                    piece = (choice.get("delta") or {}).get("content") or ""
                    if piece:
                        first = first or time.monotonic()
                        chunks += 1
                        pieces.append(piece)
                        yield piece
                    finish = choice.get("finish_reason") or finish
        if not done:
            # llama-cpp-python's server answers 200 and then ends the stream when generation fails (e.g. a
            # prompt over its context); a stream without [DONE] is a failure, never an empty answer.
            raise BackendError("OpenAI-compatible stream ended without [DONE]")
        ended = time.monotonic()
        yield Completion(
            text="".join(pieces),
            model=model,
            input_tokens=int(usage.get("prompt_tokens") or 0),
            # Without usage in the stream, one content chunk is one token on the servers we know.
            output_tokens=int(usage.get("completion_tokens") or chunks),
            ttft_ms=((first or ended) - started) * 1000,
            total_ms=(ended - started) * 1000,
            finish_reason=str(finish),
        )
