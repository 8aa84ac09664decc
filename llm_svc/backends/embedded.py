"""Embedded llama.cpp back end: one model per process, warm prompt prefixes, generation in a worker thread."""

from __future__ import annotations

import asyncio
import codecs
import itertools
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alice.runtime.errors import DeadlineExceeded, InvalidArgument
from llm_svc.backends import BackendError, ChatRequest, Completion, Event
from llm_svc.backends.decoding import GreedyDecoder, LazyGrammar, TokenTrie
from llm_svc.prompts import chatml
from llm_svc.scheduler import Scheduler

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmbeddedSettings:
    """llama.cpp parameters of one loaded model."""

    n_threads: int = 1
    n_threads_batch: int = 2
    n_ctx: int = 2048
    n_batch: int = 512


class EmbeddedLlama:
    """A GGUF model run in-process by llama-cpp-python.

    One `Llama` context per prompt family (`ChatRequest.prefix_key`): llama.cpp reuses the KV cache for the
    longest common token prefix with the previous prompt of the same context, so the few-shot tool prompt
    stays evaluated while answers use another context. The weights are memory-mapped once by each context
    (the page cache shares them). All llama.cpp calls run on one worker thread per model; the scheduler
    admits one generation at a time and releases only when that thread has really stopped.
    """

    system = "llama.cpp"

    def __init__(
        self,
        path: Path,
        *,
        name: str,
        settings: EmbeddedSettings,
        scheduler: Scheduler,
        prefix_keys: Sequence[str] = ("tool", "answer"),
    ) -> None:
        self._path = path
        self._name = name
        self._settings = settings
        self._scheduler = scheduler
        self._prefix_keys = tuple(prefix_keys)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"llm-{name}")
        self._contexts: dict[str, Any] = {}
        self._grammars: dict[str, Any] = {}
        self._lazy_grammars: dict[tuple[str, str], LazyGrammar] = {}
        self._decoders: dict[str, GreedyDecoder] = {}
        self._llama_cpp: Any = None

    @property
    def model(self) -> str:
        return self._name

    async def start(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._load)

    def _load(self) -> None:
        # Imported here so the process environment (OMP_WAIT_POLICY) is set before OpenMP initialises.
        import llama_cpp

        self._llama_cpp = llama_cpp
        started = time.monotonic()
        for key in self._prefix_keys:
            self._contexts[key] = llama_cpp.Llama(
                str(self._path),
                n_ctx=self._settings.n_ctx,
                n_batch=self._settings.n_batch,
                n_threads=self._settings.n_threads,
                n_threads_batch=self._settings.n_threads_batch,
                verbose=False,
            )
        template = str(next(iter(self._contexts.values())).metadata.get("tokenizer.chat_template", ""))
        if "<|im_start|>" not in template:
            raise BackendError(f"{self._path.name}: expected a ChatML chat template (Qwen2.5), found another")
        log.info("loaded %s (%d contexts) in %.1f s", self._path.name, len(self._contexts),
                 time.monotonic() - started)

    async def aclose(self) -> None:
        def close() -> None:
            for grammar in self._lazy_grammars.values():
                grammar.close()
            self._lazy_grammars.clear()
            self._decoders.clear()
            for llm in self._contexts.values():
                llm.close()
            self._contexts.clear()

        await asyncio.get_running_loop().run_in_executor(self._executor, close)
        self._executor.shutdown(wait=True)

    async def stream(self, request: ChatRequest) -> AsyncIterator[Event]:
        if not self._contexts:
            raise BackendError(f"model {self._name} is not loaded")
        queue_ms = await self._scheduler.acquire(request.deadline)
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[Event | BaseException] = asyncio.Queue()
        cancel = threading.Event()

        def emit(item: Event | BaseException) -> None:
            loop.call_soon_threadsafe(events.put_nowait, item)

        try:
            future = loop.run_in_executor(self._executor, self._run, request, cancel, emit)
        except RuntimeError:
            self._scheduler.release()
            raise
        # The slot is free only when the worker thread has stopped, even if the caller went away.
        future.add_done_callback(lambda _: self._scheduler.release())
        try:
            while True:
                item = await events.get()
                if isinstance(item, BaseException):
                    raise item
                if isinstance(item, Completion):
                    item.queue_ms = queue_ms
                    yield item
                    return
                yield item
        finally:
            cancel.set()

    def _grammar(self, schema: Mapping[str, Any]) -> Any:
        key = json.dumps(schema, sort_keys=True)
        grammar = self._grammars.get(key)
        if grammar is None:
            grammar = self._llama_cpp.LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
            self._grammars[key] = grammar
        return grammar

    def _run(self, request: ChatRequest, cancel: threading.Event,
             emit: Callable[[Event | BaseException], None]) -> None:
        try:
            emit(self._generate(request, cancel, emit))
        except Exception as error:
            emit(error)

    def _generate(self, request: ChatRequest, cancel: threading.Event,
                  emit: Callable[[Event | BaseException], None]) -> Completion:
        key = request.prefix_key if request.prefix_key in self._contexts else next(iter(self._contexts))
        llm = self._contexts[key]
        tokens = llm.tokenize(chatml(request.messages).encode("utf-8"), add_bos=False, special=True)
        if len(tokens) + request.max_tokens > self._settings.n_ctx:
            raise InvalidArgument(
                f"prompt of {len(tokens)} tokens plus {request.max_tokens} to generate exceeds the model context "
                f"of {self._settings.n_ctx} tokens"
            )
        if request.temperature == 0.0 and (request.choices or request.json_schema is not None):
            return self._structured(key, tokens, request, cancel, emit)
        cached = llm.longest_token_prefix(llm._input_ids.tolist(), tokens)
        grammar = self._grammar(request.json_schema) if request.json_schema is not None else None
        is_eog = self._llama_cpp.llama_vocab_is_eog
        vocab = llm._model.vocab
        started = time.monotonic()
        generator = llm.generate(tokens, temp=max(request.temperature, 0.0), repeat_penalty=1.0, grammar=grammar)
        try:
            out = _emit_tokens(
                llm, itertools.takewhile(lambda t: not is_eog(vocab, t), generator), request, cancel, emit
            )
        finally:
            generator.close()
        ended = time.monotonic()
        return Completion(
            text=out.text,
            model=self._name,
            input_tokens=len(tokens),
            output_tokens=out.output_tokens,
            ttft_ms=(out.first_at - started) * 1000,
            total_ms=(ended - started) * 1000,
            finish_reason=out.finish,
            extra={"cached_tokens": float(cached)},
        )

    def _lazy_grammar(self, key: str, schema: Mapping[str, Any], lead: str = "", suffix: str = "") -> LazyGrammar:
        """A reset grammar sampler for `lead`, a value of `schema`, then `suffix`, on context `key` (samplers
        hold per-context vocabulary pointers). The literals are part of the grammar so the model can write
        them merged with the value's tokens (`":{"`, `"]}}`), as it does in free text."""
        cache_key = (key, json.dumps([lead, schema, suffix], sort_keys=True))
        grammar = self._lazy_grammars.get(cache_key)
        if grammar is None:
            compiled = self._grammar(schema)
            text, root = compiled._grammar, compiled._root
            if lead or suffix:
                text = f"alice-value ::= {_gbnf_literal(lead)} {root} {_gbnf_literal(suffix)}\n{text}"
                root = "alice-value"
            grammar = self._decoder(key).grammar(text, root)
            self._lazy_grammars[cache_key] = grammar
        grammar.reset()
        return grammar

    def _decoder(self, key: str) -> GreedyDecoder:
        decoder = self._decoders.get(key)
        if decoder is None:
            decoder = self._decoders[key] = GreedyDecoder(self._llama_cpp, self._contexts[key])
        return decoder

    def _structured(self, key: str, tokens: list[int], request: ChatRequest, cancel: threading.Event,
                    emit: Callable[[Event | BaseException], None]) -> Completion:
        """Greedy decoding of a structured output: choose among `choices` by their token trie, then generate
        the chosen choice's JSON value under a lazily checked grammar (llm_svc/backends/decoding.py)."""
        llm = self._contexts[key]
        started = time.monotonic()
        decoder = self._decoder(key)
        decoder.reset()
        cached = decoder.prefill(tokens)
        output_tokens = 0
        pieces: list[str] = []
        schema = request.json_schema
        suffix = lead = ""
        truncated = False
        if request.choices:
            trie = TokenTrie([llm.tokenize(c.prefix.encode("utf-8"), add_bos=False, special=False)
                              for c in request.choices])
            index, chosen = decoder.choose(trie)
            choice = request.choices[index]
            schema, suffix, lead = choice.schema, choice.suffix, choice.lead
            prefix = choice.prefix
            if len(chosen) > request.max_tokens:  # the limit counts forced tokens too
                chosen = chosen[: request.max_tokens]
                prefix = llm.detokenize(chosen).decode("utf-8", errors="replace")
                schema, suffix, truncated = None, "", True
            output_tokens += len(chosen)
            pieces.append(prefix)
            emit(prefix)
        finish = "length" if truncated else "stop"
        full_passes = 0
        if schema is not None:
            grammar = self._lazy_grammar(key, schema, lead, suffix)
            suffix = ""  # generated under the grammar
            is_eog = self._llama_cpp.llama_vocab_is_eog
            vocab = llm._model.vocab
            generated = decoder.generate(grammar, lambda t: bool(is_eog(vocab, t)))
            out = _emit_tokens(llm, generated, request, cancel, emit, output_tokens)
            pieces.append(out.text)
            output_tokens, finish = out.output_tokens, out.finish
            full_passes = grammar.full_passes
        if suffix and finish == "stop":
            pieces.append(suffix)
            emit(suffix)
            output_tokens += len(llm.tokenize(suffix.encode("utf-8"), add_bos=False, special=False))
        ended = time.monotonic()
        return Completion(
            text="".join(pieces),
            model=self._name,
            input_tokens=len(tokens),
            output_tokens=output_tokens,
            ttft_ms=((decoder.first_logits_at or ended) - started) * 1000,
            total_ms=(ended - started) * 1000,
            finish_reason=finish,
            extra={"cached_tokens": float(cached), "model_steps": float(decoder.steps),
                   "grammar_full_passes": float(full_passes)},
        )


@dataclass(frozen=True)
class _Emitted:
    """What `_emit_tokens` streamed."""

    text: str
    output_tokens: int  # including those counted before the call
    finish: str  # "stop", "length" or "cancelled"
    first_at: float  # monotonic time of the first token, or of the end if there was none


def _emit_tokens(
    llm: Any,
    tokens: Iterator[int],
    request: ChatRequest,
    cancel: threading.Event,
    emit: Callable[[Event | BaseException], None],
    output_tokens: int = 0,
) -> _Emitted:
    """Detokenize and emit `tokens` (which end at end-of-generation) as they come, until the request's token
    limit (which counts the `output_tokens` already output), cancellation, or its deadline (an error)."""
    # Incremental, so a character split across tokens is emitted once it is complete.
    utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pieces: list[str] = []
    finish = "stop"
    first: float | None = None
    for token in tokens:
        now = time.monotonic()
        if first is None:
            first = now
        output_tokens += 1
        piece = utf8.decode(llm.detokenize([token]))
        if piece:
            pieces.append(piece)
            emit(piece)
        if output_tokens >= request.max_tokens:
            finish = "length"
            break
        if cancel.is_set():
            finish = "cancelled"
            break
        if request.deadline is not None and now > request.deadline:
            raise DeadlineExceeded(f"deadline passed after {output_tokens} output tokens")
    if first is None:
        first = time.monotonic()
    tail = utf8.decode(b"", final=True)
    if tail:
        pieces.append(tail)
        emit(tail)
    return _Emitted("".join(pieces), output_tokens, finish, first)


def _gbnf_literal(text: str) -> str:
    """A GBNF string literal (an empty one matches nothing: `""`)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
