"""Scores shared by the evaluations (spec/intents.md): tool accuracy and precision, slot exact match, macro-F1."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

UNSCORED_SLOTS = frozenset({"title"})
"""Free text; the spec does not score it."""


def slots_match(expected: Mapping[str, object], predicted: Mapping[str, object]) -> bool:
    """All expected slots equal and no extra slot; `title` is not scored."""
    want = {k: v for k, v in expected.items() if k not in UNSCORED_SLOTS}
    got = {k: v for k, v in predicted.items() if k not in UNSCORED_SLOTS}
    return want == got


@dataclass
class ToolScore:
    """Tool accuracy (expected tool or none, exactly) and tool precision (of the calls made, the right share)."""

    n: int = 0
    correct: int = 0
    calls: int = 0
    correct_calls: int = 0
    slot_items: int = 0
    slot_exact: int = 0

    def add(self, expected_tool: str | None, predicted_tool: str | None, expected_slots: Mapping[str, object],
            predicted_slots: Mapping[str, object]) -> None:
        self.n += 1
        self.correct += expected_tool == predicted_tool
        if predicted_tool is not None:
            self.calls += 1
            self.correct_calls += expected_tool == predicted_tool
        self.slot_items += 1
        self.slot_exact += slots_match(expected_slots, predicted_slots)

    @property
    def tool_accuracy(self) -> float:
        return self.correct / self.n if self.n else 0.0

    @property
    def tool_precision(self) -> float:
        return self.correct_calls / self.calls if self.calls else 1.0

    @property
    def slot_exact_match(self) -> float:
        return self.slot_exact / self.slot_items if self.slot_items else 0.0


@dataclass
class IntentScore:
    """Per-intent precision/recall and macro-F1 over the labels seen."""

    pairs: list[tuple[str, str]] = field(default_factory=list)

    def add(self, expected: str, predicted: str) -> None:
        self.pairs.append((expected, predicted))

    def per_intent(self) -> dict[str, dict[str, float]]:
        labels = sorted({e for e, _ in self.pairs} | {p for _, p in self.pairs})
        expected = Counter(e for e, _ in self.pairs)
        predicted = Counter(p for _, p in self.pairs)
        hits = Counter(e for e, p in self.pairs if e == p)
        return {
            label: {
                "precision": hits[label] / predicted[label] if predicted[label] else 0.0,
                "recall": hits[label] / expected[label] if expected[label] else 0.0,
                "n": expected[label],
            }
            for label in labels
        }

    @property
    def accuracy(self) -> float:
        return sum(e == p for e, p in self.pairs) / len(self.pairs) if self.pairs else 0.0

    @property
    def macro_f1(self) -> float:
        scores = [s for s in self.per_intent().values() if s["n"]]
        f1 = [2 * s["precision"] * s["recall"] / (s["precision"] + s["recall"]) if s["precision"] + s["recall"]
              else 0.0 for s in scores]
        return sum(f1) / len(f1) if f1 else 0.0

    def confusion(self) -> dict[str, dict[str, int]]:
        matrix: dict[str, dict[str, int]] = {}
        for e, p in self.pairs:
            matrix.setdefault(e, {})
            matrix[e][p] = matrix[e].get(p, 0) + 1
        return matrix


def format_table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> str:
    """A plain aligned text table."""
    cells = [[str(c) for c in header], *[[f"{c:.3f}" if isinstance(c, float) else str(c) for c in r] for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells)
