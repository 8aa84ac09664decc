"""Back ends that turn chat messages into text: embedded llama.cpp, Ollama, any OpenAI-compatible server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from llm_svc.prompts import Message


@dataclass(frozen=True)
class Choice:
    """One allowed shape of a structured output: the literal `prefix`, then (when `schema` is set) the literal
    `lead` and one JSON value that follows `schema`, then the literal `suffix`.

    `lead` and `suffix` are generated under the grammar rather than forced, so the model can merge them with
    the value's first and last characters as it does in free text: Qwen writes `":{"` and `"]}}` as single
    tokens, and forcing `":` or `}` on their own put the model off its usual tokens (measured: wrong
    arguments, runaway numbers, stray spaces). Without `schema`, `prefix` + `suffix` is the whole output.
    """

    prefix: str
    schema: Mapping[str, Any] | None = None
    suffix: str = ""
    lead: str = ""


@dataclass(frozen=True)
class ChatRequest:
    """One generation: messages, limits, an optional JSON schema the output must follow, a deadline.

    `deadline` is on the time.monotonic() clock (None: no deadline). `prefix_key` names the prompt family
    ("tool", "answer") so a back end can keep one warm prompt prefix per family. `choices`, when given,
    spell out the same language as `json_schema` as literal prefixes: a back end that decodes itself
    (embedded llama.cpp) uses them to skip forced tokens; remote back ends send `json_schema`.
    """

    messages: Sequence[Message]
    max_tokens: int
    temperature: float = 0.0
    json_schema: Mapping[str, Any] | None = None
    deadline: float | None = None
    prefix_key: str = "default"
    choices: tuple[Choice, ...] = ()


@dataclass
class Completion:
    """The result of a finished generation; times in ms, measured after the queue."""

    text: str
    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    queue_ms: float = 0.0
    ttft_ms: float = 0.0
    total_ms: float = 0.0
    finish_reason: str = "stop"
    extra: dict[str, float] = field(default_factory=dict)


Event = str | Completion
"""A streamed event: a piece of text, or the final Completion (always last)."""


class Backend(Protocol):
    """What the service needs from a model back end."""

    @property
    def model(self) -> str:
        """Model identifier for stats and telemetry."""
        ...

    @property
    def system(self) -> str:
        """gen_ai.provider.name value ("llama.cpp", "ollama", "openai")."""
        ...

    async def start(self) -> None:
        """Load the model or check the remote server; called once before serving."""
        ...

    def stream(self, request: ChatRequest) -> AsyncIterator[Event]:
        """Text pieces as they are generated, then one Completion."""
        ...

    async def aclose(self) -> None: ...


class BackendError(Exception):
    """A back end failed in a way the caller may retry elsewhere (maps to UNAVAILABLE)."""


async def complete(backend: Backend, request: ChatRequest) -> Completion:
    """Run a generation to the end and return its Completion."""
    async for event in backend.stream(request):
        if isinstance(event, Completion):
            return event
    raise BackendError(f"back end {backend.model} ended without a result")
