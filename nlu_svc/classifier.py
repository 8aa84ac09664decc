"""Intent classification: hashed n-gram logistic model, embedding head, calibrated ensemble and abstention."""

from __future__ import annotations

import itertools
import json
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from alice import taxonomy
from alice.swedish import text as text_norm

Array = npt.NDArray[np.float32]

LABELS: tuple[str, ...] = taxonomy.INTENTS
"""Class order of every weight matrix: the taxonomy's enum order."""
HASH_BITS = 18
FOLD_PROBE = "Hej Åsa! Flytta mötet till kl 8.30 på fredag, tack 😀 ÉÜ"
"""Features depend on `text.fold`; the model stores the fold of this probe so a changed fold is noticed."""
VARIANTS = ("lexical", "embedding", "ensemble")

_WORD = re.compile(r"[^\W_]+|[?@]")
_DIGIT = re.compile(r"\d")


def fold_fingerprint() -> str:
    return text_norm.fold(FOLD_PROBE)


def feature_strings(text: str) -> list[str]:
    """Lexical features of `text`: folded words, word bigrams with boundaries, and character 2..5-grams.

    Folding (å→a, lowercase) and digits mapped to 0 make typos without diacritics and other numbers look
    like the training data; character n-grams carry inflections and misspellings ("tiemr", "vadret").
    """
    folded = _DIGIT.sub("0", text_norm.fold(text))
    words = _WORD.findall(folded)
    features = [f"w:{w}" for w in words]
    padded = ["<s>", *words, "</s>"]
    features += [f"b:{a} {b}" for a, b in itertools.pairwise(padded)]
    joined = f" {' '.join(words)} "
    for n in (2, 3, 4, 5):
        features += [f"c:{joined[i:i + n]}" for i in range(len(joined) - n + 1)]
    return features


def hashed_features(text: str, bits: int = HASH_BITS) -> tuple[npt.NDArray[np.int64], Array]:
    """Bucket indices and L2-normalised log-count values of the lexical features."""
    mask = (1 << bits) - 1
    counts: dict[int, int] = {}
    for feature in feature_strings(text):
        bucket = zlib.crc32(feature.encode("utf-8")) & mask
        counts[bucket] = counts.get(bucket, 0) + 1
    if not counts:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    buckets = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
    values = 1.0 + np.log(np.fromiter(counts.values(), dtype=np.float32, count=len(counts)))
    return buckets, (values / np.linalg.norm(values)).astype(np.float32)


def softmax(logits: npt.NDArray[Any]) -> Array:
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    result: Array = (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)
    return result


def fit_softmax(features: npt.NDArray[Any], labels: npt.NDArray[np.int64], classes: int, *, l2: float,
                steps: int = 600, learning_rate: float = 0.5) -> tuple[Array, Array]:
    """Multinomial logistic regression (mean cross-entropy + l2/2·|W|²), full-batch Adam; returns W, b."""
    x = np.asarray(features, dtype=np.float64)
    n, d = x.shape
    y = np.zeros((n, classes))
    y[np.arange(n), labels] = 1.0
    w = np.zeros((d, classes))
    b = np.zeros(classes)
    moments = [np.zeros_like(w), np.zeros_like(w), np.zeros_like(b), np.zeros_like(b)]
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    for step in range(1, steps + 1):
        p = softmax(x @ w + b).astype(np.float64)
        g = (p - y) / n
        grads = (x.T @ g + l2 * w, g.sum(axis=0))
        for k, (param, grad) in enumerate(zip((w, b), grads, strict=True)):
            m, v = moments[2 * k], moments[2 * k + 1]
            m *= beta1
            m += (1 - beta1) * grad
            v *= beta2
            v += (1 - beta2) * grad * grad
            param -= learning_rate * (m / (1 - beta1**step)) / (np.sqrt(v / (1 - beta2**step)) + eps)
    return w.astype(np.float32), b.astype(np.float32)


@dataclass(frozen=True)
class LexicalModel:
    """Logistic regression over hashed lexical features; only buckets seen in training have weights."""

    buckets: npt.NDArray[np.int64]
    weights: Array
    bias: Array
    bits: int = HASH_BITS
    _rows: npt.NDArray[np.int32] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        rows = np.full(1 << self.bits, -1, dtype=np.int32)
        rows[self.buckets] = np.arange(len(self.buckets), dtype=np.int32)
        object.__setattr__(self, "_rows", rows)

    @classmethod
    def fit(cls, texts: Sequence[str], labels: Sequence[str], *, l2: float = 1e-3, bits: int = HASH_BITS,
            steps: int = 600) -> LexicalModel:
        encoded = [hashed_features(t, bits) for t in texts]
        buckets = np.unique(np.concatenate([b for b, _ in encoded])) if encoded else np.zeros(0, np.int64)
        column = {int(b): i for i, b in enumerate(buckets)}
        x = np.zeros((len(texts), len(buckets)), dtype=np.float32)
        for row, (b, v) in enumerate(encoded):
            x[row, [column[int(k)] for k in b]] = v
        y = np.array([LABELS.index(label) for label in labels], dtype=np.int64)
        weights, bias = fit_softmax(x, y, len(LABELS), l2=l2, steps=steps)
        return cls(buckets.astype(np.int64), weights, bias, bits)

    def logits(self, text: str) -> Array:
        buckets, values = hashed_features(text, self.bits)
        rows = self._rows[buckets]
        known = rows >= 0
        return (values[known] @ self.weights[rows[known]] + self.bias).astype(np.float32)


@dataclass(frozen=True)
class EmbeddingHead:
    """Logistic regression on sentence embeddings of one embedding model."""

    embedder_id: str
    weights: Array
    bias: Array

    @classmethod
    def fit(cls, embedder_id: str, vectors: Array, labels: Sequence[str], *, l2: float = 1e-3,
            steps: int = 600) -> EmbeddingHead:
        y = np.array([LABELS.index(label) for label in labels], dtype=np.int64)
        weights, bias = fit_softmax(vectors, y, len(LABELS), l2=l2, steps=steps, learning_rate=0.1)
        return cls(embedder_id, weights, bias)

    def logits(self, vector: Array) -> Array:
        return (np.asarray(vector, dtype=np.float32) @ self.weights + self.bias).astype(np.float32)


@dataclass(frozen=True)
class Calibration:
    """How the two models combine and when to abstain; fitted on the dev split by scripts/train_nlu.py.

    Probabilities are softmax(lexical_weight · lexical logits + embedding_weight · embedding logits); the
    lexical-only path (used when the lexically calibrated top probability reaches `gate`) uses
    softmax(lexical logits / lexical_temperature). Below `abstain[intent]` the answer abstains; from
    `fast[intent]` on it is confident enough for the fast route.
    """

    variant: str
    lexical_temperature: float
    gate: float
    lexical_weight: float
    embedding_weight: float
    abstain: dict[str, float]
    fast: dict[str, float]
    embedder_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "variant": self.variant, "embedder_id": self.embedder_id,
            "lexical_temperature": self.lexical_temperature, "gate": self.gate,
            "lexical_weight": self.lexical_weight, "embedding_weight": self.embedding_weight,
            "abstain": self.abstain, "fast": self.fast,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Calibration:
        variant = str(data["variant"])
        if variant not in VARIANTS:
            raise ValueError(f"unknown classifier variant {variant!r}")
        abstain = {str(k): float(v) for k, v in data["abstain"].items()}
        fast = {str(k): float(v) for k, v in data["fast"].items()}
        missing = set(LABELS) - set(abstain) | set(LABELS) - set(fast)
        if missing:
            raise ValueError(f"calibration lacks thresholds for {', '.join(sorted(missing))}")
        return cls(variant, float(data["lexical_temperature"]), float(data["gate"]), float(data["lexical_weight"]),
                   float(data["embedding_weight"]), abstain, fast, data.get("embedder_id"))


@dataclass(frozen=True)
class Decision:
    """The classifier's answer for one text."""

    intent: str
    confidence: float
    abstained: bool
    confident: bool
    alternatives: tuple[tuple[str, float], ...]
    used_embedding: bool


class IntentClassifier:
    """Lexical model first; the embedding head is consulted only when the lexical model is unsure."""

    def __init__(self, lexical: LexicalModel, calibration: Calibration, head: EmbeddingHead | None = None) -> None:
        if calibration.variant != "lexical" and head is None:
            raise ValueError(f"variant {calibration.variant} needs an embedding head")
        if head is not None and calibration.embedder_id not in (None, head.embedder_id):
            raise ValueError(f"calibration is for {calibration.embedder_id}, head for {head.embedder_id}")
        self.lexical = lexical
        self.head = head if calibration.variant != "lexical" else None
        self.calibration = calibration

    @property
    def variant(self) -> str:
        return self.calibration.variant

    def lexical_logits(self, text: str) -> Array:
        return self.lexical.logits(text)

    def needs_embedding(self, lexical_logits: Array) -> bool:
        """True when this text's answer should include the embedding model."""
        if self.head is None:
            return False
        if self.variant == "embedding":
            return True
        probabilities = softmax(lexical_logits / self.calibration.lexical_temperature)
        return float(probabilities.max()) < self.calibration.gate

    def probabilities(self, lexical_logits: Array, embedding: Array | None = None) -> Array:
        c = self.calibration
        if embedding is None or self.head is None:
            return softmax(lexical_logits / c.lexical_temperature)
        head_logits = self.head.logits(embedding)
        if self.variant == "embedding":
            return softmax(c.embedding_weight * head_logits)
        return softmax(c.lexical_weight * lexical_logits + c.embedding_weight * head_logits)

    def decide(self, probabilities: Array, *, used_embedding: bool, top_k: int = 3) -> Decision:
        order = np.argsort(-probabilities)
        best = LABELS[int(order[0])]
        confidence = float(probabilities[order[0]])
        abstained = confidence < self.calibration.abstain[best]
        confident = not abstained and confidence >= self.calibration.fast[best]
        alternatives = tuple((LABELS[int(i)], float(probabilities[i])) for i in order[:top_k])
        return Decision(best, confidence, abstained, confident, alternatives, used_embedding)

    def classify_lexical(self, text: str) -> Decision:
        """Lexical-only decision (no embedding), e.g. for parts of a multi-step request."""
        return self.decide(self.probabilities(self.lexical_logits(text)), used_embedding=False)

    # -- persistence ------------------------------------------------------------------------------------

    @staticmethod
    def save_lexical(model: LexicalModel, path: Path) -> None:
        np.savez_compressed(path, buckets=model.buckets.astype(np.int32), weights=model.weights,
                            bias=model.bias, bits=np.array(model.bits), labels=np.array(LABELS),
                            fold=np.array(fold_fingerprint()))

    @staticmethod
    def save_head(head: EmbeddingHead, path: Path) -> None:
        np.savez_compressed(path, weights=head.weights, bias=head.bias, labels=np.array(LABELS),
                            embedder_id=np.array(head.embedder_id))

    @classmethod
    def load(cls, model_dir: Path, *, embedder_id: str | None, variant: str | None = None) -> IntentClassifier:
        """Load `lexical.npz` and the calibration of `variant` for `embedder_id`.

        `variant` None means the ensemble when a head for this embedder was trained, else lexical only.
        """
        with np.load(model_dir / "lexical.npz") as data:
            _check_labels(data["labels"], model_dir / "lexical.npz")
            if str(data["fold"]) != fold_fingerprint():
                raise ValueError("alice.swedish.text.fold changed since the model was trained: "
                                 "run scripts/train_nlu.py")
            lexical = LexicalModel(data["buckets"].astype(np.int64), data["weights"], data["bias"],
                                   int(data["bits"]))
        slug = embedder_slug(embedder_id) if embedder_id else ""
        head_file = model_dir / f"head-{slug}.npz"
        if variant is None:
            variant = "ensemble" if slug and head_file.exists() else "lexical"
        if variant == "lexical":
            calibration = Calibration.from_json(json.loads((model_dir / "lexical.json").read_text(encoding="utf-8")))
            return cls(lexical, calibration)
        if not head_file.exists():
            raise FileNotFoundError(f"no embedding head for {embedder_id} in {model_dir} (variant {variant})")
        with np.load(head_file) as data:
            _check_labels(data["labels"], head_file)
            head = EmbeddingHead(str(data["embedder_id"]), data["weights"], data["bias"])
        calibration_file = model_dir / f"{variant}-{slug}.json"
        calibration = Calibration.from_json(json.loads(calibration_file.read_text(encoding="utf-8")))
        return cls(lexical, calibration, head)


def embedder_slug(embedder_id: str) -> str:
    """A file-name-safe form of an embedder id."""
    return re.sub(r"[^A-Za-z0-9.]+", "_", embedder_id).strip("_")


def _check_labels(stored: npt.NDArray[Any], path: Path) -> None:
    if tuple(str(x) for x in stored) != LABELS:
        raise ValueError(f"{path} was trained for intents {list(stored)}, the taxonomy has {list(LABELS)}")


# -- calibration fitting (used by scripts/train_nlu.py and tests) ---------------------------------------

def nll(probabilities: npt.NDArray[Any], gold: npt.NDArray[np.int64]) -> float:
    picked = np.clip(probabilities[np.arange(len(gold)), gold], 1e-9, 1.0)
    return float(-np.mean(np.log(picked)))


def fit_temperature(logits: npt.NDArray[Any], gold: npt.NDArray[np.int64]) -> float:
    """Temperature T minimising the negative log-likelihood of softmax(logits / T) (grid search)."""
    grid = np.exp(np.linspace(np.log(0.02), np.log(20.0), 400))
    losses = [nll(softmax(logits / t), gold) for t in grid]
    return float(grid[int(np.argmin(losses))])


def fit_weights(lexical: npt.NDArray[Any], embedding: npt.NDArray[Any], gold: npt.NDArray[np.int64]
                ) -> tuple[float, float]:
    """Logit weights (a, b) minimising the NLL of softmax(a·lexical + b·embedding) (grid search)."""
    grid = np.exp(np.linspace(np.log(0.01), np.log(50.0), 60))
    best = (float("inf"), 1.0, 1.0)
    for a in [0.0, *grid]:
        for b in [0.0, *grid]:
            if a == 0.0 and b == 0.0:
                continue
            loss = nll(softmax(a * lexical + b * embedding), gold)
            if loss < best[0]:
                best = (loss, float(a), float(b))
    return best[1], best[2]


def fit_thresholds(confidence: npt.NDArray[Any], predicted: Sequence[str], gold: Sequence[str], *,
                   pooled_precision: float) -> tuple[dict[str, float], dict[str, float]]:
    """Per-intent abstain and fast-route thresholds from dev predictions (confidence, predicted, gold).

    Pooled floor: the lowest confidence from which the pooled dev precision reaches `pooled_precision`.
    Abstain threshold of an intent: above the floor and above every wrong dev prediction of that intent, so
    no dev mistake of that intent would have been a tool call. Fast threshold: above every wrong dev
    prediction of any intent (pooled precision 1.0), and at least the abstain threshold.
    """
    conf = np.asarray(confidence, dtype=np.float64)
    wrong = np.array([p != g for p, g in zip(predicted, gold, strict=True)], dtype=bool)
    floor = 0.0
    for t in sorted({0.0, *conf.tolist()}):
        kept = conf >= t
        if not kept.any() or 1.0 - wrong[kept].mean() >= pooled_precision:
            floor = t
            break
    above_all_errors = float(conf[wrong].max()) + 1e-4 if wrong.any() else floor
    abstain: dict[str, float] = {}
    fast: dict[str, float] = {}
    for intent in LABELS:
        mine = wrong & np.array([p == intent for p in predicted], dtype=bool)
        worst = float(conf[mine].max()) + 1e-4 if mine.any() else 0.0
        abstain[intent] = round(min(max(floor, worst), 1.0), 4)
        fast[intent] = round(min(max(abstain[intent], above_all_errors), 1.0), 4)
    return abstain, fast
