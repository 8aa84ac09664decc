"""LLM latency benchmark against the targets: micro SelectTool P95 <= 500 ms; planner TTFT P95 <= 600 ms and
full tool call P95 <= 1.5 s (2-core CPU).

    .venv/bin/python benchmarks/llm_bench.py [--roles micro,planner] [--n 20] [--threads 1] [--json]

Runs the embedded models in-process through the service's engine, sequentially (one generation at a time, as
the service does), after warm-up. Prints the machine's load average too: numbers on a shared, busy machine are
not numbers on an idle one.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alice.runtime.config import TelemetrySettings
from alice.runtime.errors import ServiceError
from alice.runtime.telemetry import setup_telemetry
from llm_svc.backends import Completion
from llm_svc.config import Config
from llm_svc.engine import Limits, LlmEngine
from llm_svc.server import build_backends

TEXTS = [
    "hur blir vädret i Luleå på torsdag", "boka möte med Maria halv tre imorgon", "vad är klockan",
    "sätt en timer på tre kvart", "mejla per@bücher.de", "flytta mötet med Sara till fredag kl 10",
    "vad har jag inbokat på måndag", "vem skrev Utvandrarna", "hej", "vad sa jag om min hyresvärd",
]
TARGETS = {"micro.select_tool_p95_ms": 500.0, "planner.ttft_p95_ms": 600.0, "planner.select_tool_p95_ms": 1500.0}


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def bench_role(role: str, n: int, threads: int, batch_threads: int) -> dict[str, Any]:
    config = Config.from_env({"LLM_MICRO_MODEL": role, "LLM_PLANNER_MODEL": role, "LLM_THREADS": str(threads),
                              "LLM_BATCH_THREADS": str(batch_threads)})
    backends = build_backends(config, None)
    engine = LlmEngine(backends, setup_telemetry(TelemetrySettings("bench", None, 0.0, True, False)), Limits())
    backend = backends[role]
    started = time.monotonic()
    await backend.start()
    load_s = time.monotonic() - started
    reference = dt.datetime(2026, 3, 10, 9, 0, tzinfo=ZoneInfo("Europe/Stockholm"))
    started = time.monotonic()
    await engine.warm(reference.date())
    warm_s = time.monotonic() - started
    totals, ttfts, tokens, failures = [], [], [], 0
    for i in range(n):
        text = TEXTS[i % len(TEXTS)]
        started = time.monotonic()
        try:
            selection = await engine.select_tool(text, role, reference)
            ttfts.append(selection.completion.ttft_ms)
            tokens.append(selection.completion.output_tokens)
        except ServiceError:
            failures += 1
        totals.append((time.monotonic() - started) * 1000)
    tool_only: list[float] = []
    for i in range(n):
        started = time.monotonic()
        try:
            await engine.select_tool(TEXTS[i % len(TEXTS)], role, reference, tool_only=True)
        except ServiceError:
            failures += 1
        tool_only.append((time.monotonic() - started) * 1000)
    answer_ttft: list[float] = []
    for question in ("vad är huvudstaden i Norge", "vem skrev Röda rummet", "hur högt är Kebnekaise"):
        request = engine.answer_request(question, max_tokens=24)
        async for event in engine.answer(request, role, question):
            if isinstance(event, Completion):
                answer_ttft.append(event.ttft_ms)
    await backend.aclose()
    return {
        "model": backend.model, "n": n, "threads": threads, "batch_threads": batch_threads,
        "load_s": round(load_s, 1), "warm_s": round(warm_s, 1), "failures": failures,
        "select_tool_ms": {"p50": round(statistics.median(totals)), "p95": round(p(totals, 0.95))},
        "ttft_ms": {"p50": round(statistics.median(ttfts)), "p95": round(p(ttfts, 0.95))},
        "tool_only_ms": {"p50": round(statistics.median(tool_only)), "p95": round(p(tool_only, 0.95))},
        "output_tokens_mean": round(statistics.mean(tokens), 1) if tokens else 0,
        "ms_per_output_token": round(statistics.median(
            [(t - f) / max(k - 1, 1) for t, f, k in zip(totals, ttfts, tokens, strict=False)]), 1),
        "answer_ttft_ms": {"p50": round(statistics.median(answer_ttft)), "max": round(max(answer_ttft))},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--roles", default="micro,planner")
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-threads", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report: dict[str, Any] = {"loadavg_before": os.getloadavg(), "omp_wait_policy": "passive"}
    for role in args.roles.split(","):
        report[role] = asyncio.run(bench_role(role, args.n, args.threads, args.batch_threads))
    report["loadavg_after"] = os.getloadavg()
    values = {
        "micro.select_tool_p95_ms": report.get("micro", {}).get("select_tool_ms", {}).get("p95"),
        "planner.ttft_p95_ms": report.get("planner", {}).get("ttft_ms", {}).get("p95"),
        "planner.select_tool_p95_ms": report.get("planner", {}).get("select_tool_ms", {}).get("p95"),
    }
    report["targets"] = {name: {"target": target, "value": values[name],
                                "passed": values[name] is not None and values[name] <= target}
                         for name, target in TARGETS.items()}
    if not args.json:
        for name, result in report["targets"].items():
            print(f"{name:<28} target {result['target']:>6.0f}  value {result['value']}  "
                  f"{'PASS' if result['passed'] else 'FAIL'}", file=sys.stderr)
    print(json.dumps(report, ensure_ascii=False, default=str))


if __name__ == "__main__":
    main()
