"""Greedy structured decoding on llama.cpp: choices as a token trie (jump-forward), grammar checked lazily.

Two techniques make a tool call cheap on a small CPU, where every model step costs 40–130 ms:

* **Choices.** When the output must start with one of a few literal texts (`{"tool":"weather.lookup"` …), the
  texts become a token trie. Tokens the trie forces are appended without asking the model; the model is
  consulted only where the choices branch, and there the highest logit among the branch's tokens wins. The
  forced tokens are evaluated in one batch with the next step, which costs about what one token costs.
  Picking `calendar.move` among eleven tool calls takes two model steps instead of ~10.
* **Lazy grammar.** For the free part (the arguments object), the greedy token is checked against the JSON
  grammar alone, and the grammar is applied to the whole 151k-token vocabulary only when that token is
  rejected. This is what llama.cpp's own `common_sampler_sample` does unless `grammar_first` is set
  (llama.cpp `common/sampling.cpp`); llama-cpp-python 0.3.36's `generate` applies it to every candidate on
  every step, which costs ~20 ms per token here (docs/llm.md).

Greedy only (temperature 0): both are exact for greedy decoding over the constrained language.
Everything here runs on the model's worker thread.
"""

from __future__ import annotations

import ctypes
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class TrieNode:
    children: dict[int, TrieNode] = field(default_factory=dict)
    choice: int | None = None  # index of the choice that ends here


class TokenTrie:
    """The token sequences of a set of alternatives; no sequence may be a prefix of another."""

    def __init__(self, sequences: Sequence[Sequence[int]]) -> None:
        if not sequences:
            raise ValueError("at least one choice is needed")
        self.root = TrieNode()
        for index, tokens in enumerate(sequences):
            if not tokens:
                raise ValueError(f"choice {index} has no tokens")
            node = self.root
            for token in tokens:
                if node.choice is not None:
                    raise ValueError(f"choice {node.choice} is a prefix of choice {index}")
                node = node.children.setdefault(token, TrieNode())
            if node.choice is not None or node.children:
                raise ValueError(f"choice {index} is a prefix of, or equal to, another choice")
            node.choice = index

    def walk(self, pick: Callable[[list[int], Sequence[int]], int]) -> tuple[int, list[int], list[int]]:
        """Follow forced tokens; at each branch call `pick(tokens_since_last_pick, candidates)`.

        Returns the chosen choice's index, its tokens, and the tail of tokens after the last `pick` (which
        `pick` never saw). `pick` receives the tokens added since its previous call, which the model must
        evaluate before it can score the candidates.
        """
        node = self.root
        path: list[int] = []
        pending: list[int] = []
        while node.choice is None:
            if len(node.children) == 1:
                token, node = next(iter(node.children.items()))
            else:
                token = pick(pending, list(node.children))
                pending = []
                node = node.children[token]
            path.append(token)
            pending.append(token)
        return node.choice, path, pending


class _Candidates:
    """A reusable llama_token_data_array over the whole vocabulary, and a one-token view."""

    def __init__(self, llama_cpp: Any, n_vocab: int) -> None:
        self._llama_cpp = llama_cpp
        self.n_vocab = n_vocab
        self.data = np.recarray((n_vocab,), dtype=np.dtype(
            [("id", np.intc), ("logit", np.single), ("p", np.single)], align=True))
        self.ids = np.arange(n_vocab, dtype=np.intc)
        self.array = llama_cpp.llama_token_data_array(
            data=self.data.ctypes.data_as(llama_cpp.llama_token_data_p), size=n_vocab, selected=-1, sorted=False)
        self.one = llama_cpp.llama_token_data(id=0, logit=1.0, p=0.0)
        self.one_array = llama_cpp.llama_token_data_array(
            data=ctypes.pointer(self.one), size=1, selected=-1, sorted=False)

    def fill(self, logits: np.ndarray) -> None:
        self.data.id[:] = self.ids
        self.data.logit[:] = logits
        self.data.p[:] = 0.0
        self.array.size = self.n_vocab
        self.array.sorted = False
        self.array.selected = -1


class LazyGrammar:
    """A llama.cpp grammar sampler used to check single tokens, and the whole vocabulary only when needed."""

    def __init__(self, llama_cpp: Any, vocab: Any, grammar: str, root: str, candidates: _Candidates) -> None:
        self._llama_cpp = llama_cpp
        self._sampler = llama_cpp.llama_sampler_init_grammar(vocab, grammar.encode("utf-8"), root.encode("utf-8"))
        if not self._sampler:
            raise ValueError("llama.cpp could not parse the grammar")
        self._candidates = candidates
        self.full_passes = 0

    def reset(self) -> None:
        self._llama_cpp.llama_sampler_reset(self._sampler)
        self.full_passes = 0

    def allows(self, token: int) -> bool:
        one = self._candidates.one
        one.id, one.logit, one.p = token, 1.0, 0.0
        self._candidates.one_array.size = 1
        self._candidates.one_array.selected = -1
        self._llama_cpp.llama_sampler_apply(self._sampler, ctypes.byref(self._candidates.one_array))
        return not math.isinf(one.logit)

    def best(self, logits: np.ndarray) -> int:
        """The highest-logit token the grammar allows (the expensive path)."""
        self.full_passes += 1
        candidates = self._candidates
        candidates.fill(logits)
        self._llama_cpp.llama_sampler_apply(self._sampler, ctypes.byref(candidates.array))
        masked = candidates.data.logit[: candidates.array.size]
        index = int(np.argmax(masked))
        if math.isinf(float(masked[index])):
            raise ValueError("the grammar allows no token here")
        return int(candidates.data.id[index])

    def accept(self, token: int) -> None:
        self._llama_cpp.llama_sampler_accept(self._sampler, token)

    def close(self) -> None:
        if self._sampler:
            self._llama_cpp.llama_sampler_free(self._sampler)
            self._sampler = None


class GreedyDecoder:
    """Greedy decoding on one `llama_cpp.Llama` context, reusing its KV cache for the common prompt prefix.

    Tokens are appended to a pending list and evaluated in one batch only when logits are needed, so forced
    tokens ride along with the next model step.
    """

    def __init__(self, llama_cpp: Any, llm: Any) -> None:
        self._llama_cpp = llama_cpp
        self._llm = llm
        self._n_vocab = llm.n_vocab()
        self._candidates = _Candidates(llama_cpp, self._n_vocab)
        self._pending: list[int] = []
        self.steps = 0  # model evaluations (batches) in this decode
        self.first_logits_at: float | None = None

    def reset(self) -> None:
        self._pending = []
        self.steps = 0
        self.first_logits_at = None

    def prefill(self, tokens: Sequence[int]) -> int:
        """Queue the prompt, reusing the cached prefix; returns how many prompt tokens were reused."""
        llm = self._llm
        cached = int(llm.longest_token_prefix(llm._input_ids.tolist(), list(tokens)))
        cached = min(cached, len(tokens) - 1)  # evaluate at least one token so the logits are fresh
        llm.n_tokens = cached
        self._pending = list(tokens[cached:])
        return cached

    def append(self, tokens: Sequence[int]) -> None:
        self._pending.extend(tokens)

    def logits(self) -> np.ndarray:
        """Logits after everything appended so far (evaluating the pending tokens in one batch)."""
        if self._pending:
            self._llm.eval(self._pending)
            self._pending = []
            self.steps += 1
        if self.first_logits_at is None:
            self.first_logits_at = time.monotonic()
        pointer = self._llm._ctx.get_logits_ith(-1)
        return np.ctypeslib.as_array(pointer, shape=(self._n_vocab,))

    def choose(self, trie: TokenTrie) -> tuple[int, list[int]]:
        """Pick one choice of `trie` greedily; its tokens are appended (not all evaluated)."""

        def pick(pending: list[int], candidates: Sequence[int]) -> int:
            self.append(pending)
            logits = self.logits()
            return max(candidates, key=lambda token: float(logits[token]))

        index, tokens, tail = trie.walk(pick)
        self.append(tail)
        return index, tokens

    def grammar(self, text: str, root: str = "root") -> LazyGrammar:
        return LazyGrammar(self._llama_cpp, self._llm._model.vocab, text, root, self._candidates)

    def generate(self, grammar: LazyGrammar | None, is_eog: Callable[[int], bool]) -> Iterator[int]:
        """Greedy tokens after what was appended, checked lazily against `grammar`; ends at end-of-generation.

        The caller stops the iteration for its limits; each yielded token is appended for the next step.
        """
        while True:
            logits = self.logits()
            token = int(np.argmax(logits))
            if grammar is not None and not grammar.allows(token):
                token = grammar.best(logits)
            if is_eog(token):
                return
            if grammar is not None:
                grammar.accept(token)
            yield token
            self.append([token])
