"""The OpenAI-compatible back end against a real llama.cpp server (`python -m llama_cpp.server`) on loopback,
serving the embedded 0.5B model: JSON-schema constrained tool calls, SSE streaming, errors."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from llm_svc.backends import BackendError, ChatRequest, Completion, complete
from llm_svc.backends.remote import OpenAICompatibleBackend
from llm_svc.config import Config
from llm_svc.models import MODELS, require_model
from llm_svc.prompts import Message
from llm_svc.scheduler import Scheduler
from llm_svc.toolcall import parse_tool_call, tool_call_schema

pytest.importorskip("uvicorn", reason="llama_cpp.server needs the server extras (fastapi, uvicorn, sse-starlette)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def llama_server() -> Iterator[str]:
    model = require_model(MODELS["micro"], Config.from_env({}).model_dir)
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1", "--port", str(port),
         "--n_ctx", "2048", "--n_threads", "1", "--n_threads_batch", "2", "--model_alias", "qwen-micro"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "OMP_WAIT_POLICY": "passive"},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited with {process.returncode}")
            try:
                if httpx.get(f"{base}/v1/models", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("llama_cpp.server did not start within 120 s")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


SYSTEM = ("Du väljer verktyg åt en svensk assistent. Svara med JSON. Exempel: "
          '{"tool":"timer.set","arguments":{"duration_s":300}} eller {"tool":"none","intent":"info.query"}.')


async def test_constrained_tool_call_and_start(llama_server: str) -> None:
    async with httpx.AsyncClient() as client:
        backend = OpenAICompatibleBackend(client, llama_server, "qwen-micro", scheduler=Scheduler("s", 1, 2),
                                          response_format="json_object")
        await backend.start()
        request = ChatRequest([Message("system", SYSTEM), Message("user", "sätt en timer på tio minuter")],
                              max_tokens=48, json_schema=tool_call_schema())
        events = [event async for event in backend.stream(request)]
    result = events[-1]
    assert isinstance(result, Completion)
    assert result.text == "".join(e for e in events if isinstance(e, str))
    call = parse_tool_call(result.text)  # the server's grammar kept the output inside the schema
    assert call.proto.intent != 0
    assert result.output_tokens > 0 and 0 < result.ttft_ms <= result.total_ms


async def test_streamed_answer(llama_server: str) -> None:
    async with httpx.AsyncClient() as client:
        backend = OpenAICompatibleBackend(client, llama_server, "qwen-micro", scheduler=Scheduler("s", 1, 2))
        pieces = [event async for event in backend.stream(
            ChatRequest([Message("user", "vad är huvudstaden i Norge? svara kort")], max_tokens=12))]
    assert len(pieces) >= 3 and isinstance(pieces[-1], Completion)
    assert pieces[-1].text.strip()


async def test_prompt_over_the_server_context_is_a_clear_error(llama_server: str) -> None:
    """llama-cpp-python's server answers 200 and ends the stream early; that must not look like an answer."""
    async with httpx.AsyncClient() as client:
        backend = OpenAICompatibleBackend(client, llama_server, "qwen-micro", scheduler=Scheduler("s", 1, 2))
        with pytest.raises(BackendError, match=r"without \[DONE\]"):
            await complete(backend, ChatRequest([Message("user", "0123456789" * 300)], max_tokens=8))
