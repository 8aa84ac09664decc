"""SLO files: named objectives on the bench's KPIs, checked with how far past (or short of) each target."""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
STANDARD_SLO = REPO_ROOT / "slo" / "standard.json"
"""The committed SLO file `alice verify` checks against."""

OPERATORS: Mapping[str, Callable[[float, float], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}


class SloError(ValueError):
    """An SLO file that cannot be used."""


@dataclass(frozen=True)
class Objective:
    name: str
    metric: str
    """Dotted path into the bench result, e.g. "latency_ms.p95"."""
    op: str
    target: float

    def value(self, result: Mapping[str, Any]) -> float:
        node: Any = result
        for part in self.metric.split("."):
            if not isinstance(node, Mapping) or part not in node:
                raise SloError(f"SLO {self.name}: the result has no {self.metric}")
            node = node[part]
        if not isinstance(node, int | float) or isinstance(node, bool):
            raise SloError(f"SLO {self.name}: {self.metric} is not a number")
        return float(node)

    def check(self, result: Mapping[str, Any]) -> dict[str, Any]:
        value = self.value(result)
        passed = OPERATORS[self.op](value, self.target)
        # Positive margin = headroom, negative = how far past the target; relative to the target.
        margin = self.target - value if self.op in ("<", "<=") else value - self.target
        return {
            "target": self.target,
            "op": self.op,
            "value": round(value, 4),
            "passed": passed,
            "margin": round(margin, 4),
            "margin_pct": round(100 * margin / self.target, 1) if self.target else None,
        }


def load_slo(path: Path = STANDARD_SLO) -> list[Objective]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise SloError(f"cannot read SLO file {path}: {error}") from None
    raw = data.get("objectives") if isinstance(data, dict) else None
    if not isinstance(raw, dict) or not raw:
        raise SloError(f"{path}: expected {{\"objectives\": {{name: {{metric, op, target}}}}}}")
    objectives = []
    for name, spec in raw.items():
        if (not isinstance(spec, dict) or spec.get("op") not in OPERATORS or not isinstance(spec.get("metric"), str)
                or not isinstance(spec.get("target"), int | float)):
            raise SloError(f"{path}: objective {name!r} needs metric (text), op ({' '.join(OPERATORS)}), target")
        objectives.append(Objective(name, spec["metric"], spec["op"], float(spec["target"])))
    return objectives


def check_slo(objectives: list[Objective], result: Mapping[str, Any]) -> tuple[dict[str, dict[str, Any]], bool]:
    """The contract's `slo` object {name: {target, value, passed, ...}} and whether all passed."""
    table = {o.name: o.check(result) for o in objectives}
    return table, all(row["passed"] for row in table.values())
