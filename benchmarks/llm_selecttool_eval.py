"""LLM-alone SelectTool accuracy on a spec-format intent file (no NLU, no hint), per model role.

    .venv/bin/python benchmarks/llm_selecttool_eval.py --data data/nlu/test.jsonl --role micro [--json]

Runs the embedded model in-process through the same engine as the service. Reports intent and tool accuracy,
tool precision, slot exact match (title not scored, as in spec/intents.md), repairs, failures and latency.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alice import taxonomy
from alice.runtime.config import TelemetrySettings
from alice.runtime.errors import ServiceError
from alice.runtime.telemetry import setup_telemetry
from llm_svc.config import Config
from llm_svc.engine import Limits, LlmEngine
from llm_svc.server import build_backends


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def slots_equal(expected: dict[str, Any], actual: dict[str, Any]) -> bool:
    strip = {"title"}
    return {k: v for k, v in expected.items() if k not in strip} == {k: v for k, v in actual.items() if k not in strip}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    env = {"LLM_BACKEND": "embedded", "LLM_MICRO_MODEL": args.role, "LLM_PLANNER_MODEL": args.role,
           "LLM_THREADS": str(args.threads), "LLM_BATCH_THREADS": str(args.batch_threads)}
    config = Config.from_env(env)
    backends = build_backends(config, None)
    telemetry = setup_telemetry(TelemetrySettings("llm-eval", None, 0.0, True, False))
    engine = LlmEngine(backends, telemetry, Limits())
    reference = dt.datetime.fromisoformat(args.now).replace(tzinfo=ZoneInfo(args.tz))
    backend = backends[args.role]
    await backend.start()
    await engine.warm(reference.date())
    rows = []
    lines = (await asyncio.to_thread(Path(args.data).read_text, encoding="utf-8")).splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            print(f"line {number}: not JSON, skipped", file=sys.stderr)
    rows = rows[:: args.stride]
    rows = rows[: args.limit] if args.limit else rows
    results = []
    for row in rows:
        started = time.monotonic()
        try:
            selection = await engine.select_tool(row["text"], args.role, reference, tool_only=args.tool_only)
            intent, slots, repaired, error = selection.intent, selection.arguments, selection.repaired, None
        except ServiceError as failure:
            intent, slots, repaired, error = None, {}, False, failure.message
        ms = (time.monotonic() - started) * 1000
        expected_tool = row.get("tool")
        tool = taxonomy.tool_for(intent) if intent else None
        results.append({"id": row["id"], "text": row["text"], "intent": intent, "expected": row["intent"],
                        "tool": tool, "expected_tool": expected_tool, "slots": slots, "expected_slots": row["slots"],
                        "repaired": repaired, "error": error, "ms": ms})
        if args.verbose:
            mark = "ok" if intent == row["intent"] and slots_equal(row["slots"], slots) else "XX"
            print(f"{mark} {ms:6.0f} ms {row['text']!r} -> {intent} {json.dumps(slots, ensure_ascii=False)}",
                  file=sys.stderr, flush=True)
    await backend.aclose()
    n = len(results)
    calls = [r for r in results if r["tool"]]
    latencies = [r["ms"] for r in results]
    return {
        "role": args.role,
        "tool_only": args.tool_only,
        "model": backend.model,
        "n": n,
        "intent_accuracy": sum(r["intent"] == r["expected"] for r in results) / n,
        "tool_accuracy": sum(r["tool"] == r["expected_tool"] for r in results) / n,
        "tool_precision": sum(r["tool"] == r["expected_tool"] for r in calls) / len(calls) if calls else 0.0,
        "slot_exact_match": sum(r["intent"] == r["expected"] and slots_equal(r["expected_slots"], r["slots"])
                                for r in results) / n,
        "repaired": sum(r["repaired"] for r in results),
        "failed": sum(r["error"] is not None for r in results),
        "latency_ms": {"p50": statistics.median(latencies), "p95": percentile(latencies, 0.95),
                       "p99": percentile(latencies, 0.99)},
        "errors": [{k: r[k] for k in ("id", "text", "expected", "intent", "expected_slots", "slots", "error")}
                   for r in results
                   if r["intent"] != r["expected"] or not slots_equal(r["expected_slots"], r["slots"])],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data/nlu/test.jsonl")
    parser.add_argument("--role", choices=["micro", "planner"], default="micro")
    parser.add_argument("--now", default="2026-03-10T09:00")
    parser.add_argument("--tz", default="Europe/Stockholm")
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--stride", type=int, default=1, help="every k-th line (a spread sample of the file)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-threads", type=int, default=2)
    parser.add_argument("--tool-only", action="store_true", help="choose only the tool (slots are not scored)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    report = asyncio.run(run(args))
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        summary = {k: v for k, v in report.items() if k != "errors"}
        print(json.dumps(summary, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
