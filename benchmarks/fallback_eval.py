"""The router's NLU fallback alone (keyword rules + shared slot extraction) on a spec-format intent file.

    .venv/bin/python benchmarks/fallback_eval.py --data data/nlu/test.jsonl [--now 2026-03-10T09:00] [--json]

Scored exactly like `alice eval nlu` (spec/intents.md): every prediction that is not info.query counts as a
call of its intent's tool. The pipeline only makes that call without a model on the fast route, so the
fast-route lines report what happens while the NLU is down and no model is asked: how many requests take the
fast route, the precision of their tool calls and their slot exact match.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alice import taxonomy
from alice.cli.common import DEFAULT_TZ, read_jsonl, reference_time
from alice.cli.eval_nlu import Prediction, report, score
from alice.cli.scoring import slots_match
from router_svc import fallback


def evaluate(path: Path, now_text: str, tz: str) -> dict[str, Any]:
    now = reference_time(now_text, tz)
    lines, problems = read_jsonl(path, required=("text", "intent"))
    items = [line for line in lines if line.data["intent"] in taxonomy.INTENTS]
    predictions: list[Prediction] = []
    latencies: list[float] = []
    for item in items:
        started = time.perf_counter()
        guess = fallback.understand(item.data["text"], now)
        latencies.append((time.perf_counter() - started) * 1000)
        predictions.append(Prediction(guess.intent, False, guess.confidence, guess.slots, guess.route_hint))
    result = score(items, predictions, latencies)
    result["skipped_lines"] = len(problems) + len(lines) - len(items)
    fast = [(item, p) for item, p in zip(items, predictions, strict=True) if p.route == "fast"]
    fast_calls = [(item, p) for item, p in fast if taxonomy.tool_for(str(p.intent)) is not None]
    right = sum(taxonomy.tool_for(str(p.intent)) == item.data.get("tool") for item, p in fast_calls)
    result["fast"] = {
        "share": round(len(fast) / len(items), 4) if items else 0.0,
        "tool_calls": len(fast_calls),
        "tool_precision": round(right / len(fast_calls), 4) if fast_calls else 1.0,
        "slot_exact_match": round(sum(slots_match(dict(item.data.get("slots") or {}), p.slots)
                                      for item, p in fast) / len(fast), 4) if fast else 0.0,
        "wrong_calls": [{"id": item.data.get("id"), "text": item.data["text"], "expected": item.data["intent"],
                         "predicted": p.intent} for item, p in fast_calls
                        if taxonomy.tool_for(str(p.intent)) != item.data.get("tool")],
    }
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--now", default="2026-03-10T09:00")
    parser.add_argument("--tz", default=DEFAULT_TZ)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = evaluate(args.data, args.now, args.tz)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return 0
    print(report(result, f"{args.data.name} (router fallback only)"))
    fast = result["fast"]
    print(f"\n  fast route (no model): {fast['share'] * 100:.2f} % of requests, {fast['tool_calls']} tool calls, "
          f"precision {fast['tool_precision'] * 100:.2f} %, slot exact match {fast['slot_exact_match'] * 100:.2f} %")
    for wrong in fast["wrong_calls"]:
        print(f"    wrong fast call [{wrong['id']}] {wrong['text']!r}: expected {wrong['expected']}, "
              f"got {wrong['predicted']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
