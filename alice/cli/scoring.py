"""Scores shared by the evaluations (spec/intents.md): tool accuracy and precision, slot exact match."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

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


def format_table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> str:
    """A plain aligned text table."""
    cells = [[str(c) for c in header], *[[f"{c:.3f}" if isinstance(c, float) else str(c) for c in r] for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells)
