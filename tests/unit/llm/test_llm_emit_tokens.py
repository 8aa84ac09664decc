"""The token-emission loop shared by free and structured generation, with a byte-table tokenizer (no model)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest

from alice.runtime.errors import DeadlineExceeded
from llm_svc.backends import ChatRequest, Event
from llm_svc.backends.embedded import _emit_tokens
from llm_svc.prompts import Message

# "å" is two bytes in UTF-8; tokens 2 and 3 each carry one of them.
TABLE = {1: b"h", 2: "å".encode()[:1], 3: "å".encode()[1:], 4: b"j"}


class ByteTokenizer:
    def detokenize(self, tokens: Sequence[int]) -> bytes:
        return b"".join(TABLE[token] for token in tokens)


def request(max_tokens: int, deadline: float | None = None) -> ChatRequest:
    return ChatRequest([Message("user", "hej")], max_tokens=max_tokens, deadline=deadline)


def run(
    tokens: list[int], req: ChatRequest, cancel: threading.Event | None = None, already: int = 0
) -> tuple[list[Event | BaseException], str, int, str]:
    emitted: list[Event | BaseException] = []
    out = _emit_tokens(ByteTokenizer(), iter(tokens), req, cancel or threading.Event(), emitted.append, already)
    return emitted, out.text, out.output_tokens, out.finish


def test_a_character_split_across_tokens_is_emitted_once_complete() -> None:
    assert run([1, 2, 3, 4], request(10)) == (["h", "å", "j"], "håj", 4, "stop")


def test_the_limit_counts_the_tokens_already_output() -> None:
    assert run([1, 4, 1, 4], request(5), already=3) == (["h", "j"], "hj", 5, "length")


def test_cancellation_stops_after_the_current_token() -> None:
    cancel = threading.Event()
    cancel.set()
    assert run([1, 4], request(10), cancel) == (["h"], "h", 1, "cancelled")


def test_a_dangling_byte_is_flushed_as_a_replacement_character() -> None:
    assert run([1, 2], request(2)) == (["h", "\ufffd"], "h\ufffd", 2, "length")


def test_a_passed_deadline_is_an_error() -> None:
    with pytest.raises(DeadlineExceeded, match="after 1 output tokens"):
        run([1, 4], request(10, deadline=time.monotonic() - 1))


def test_no_tokens_give_empty_text_and_a_first_token_time() -> None:
    before = time.monotonic()
    emitted: list[Event | BaseException] = []
    out = _emit_tokens(ByteTokenizer(), iter([]), request(10), threading.Event(), emitted.append)
    assert (emitted, out.text, out.output_tokens, out.finish) == ([], "", 0, "stop")
    assert before <= out.first_at <= time.monotonic()
