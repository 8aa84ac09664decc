"""Quality of the models' short Swedish answers to knowledge questions: correct, honest "don't know", or wrong.

    .venv/bin/python benchmarks/llm_answer_eval.py --data data/llm/info_questions.jsonl --role planner [--json]

An answer is correct when it contains one of the item's accepted words (case-insensitive), honest when it says
it does not know, and wrong otherwise. Runs the embedded model in-process through the service's engine and
prompt (llm_svc/prompts.py), sequentially after warm-up.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alice.runtime.config import TelemetrySettings
from alice.runtime.stats import percentile
from alice.runtime.telemetry import setup_telemetry
from llm_svc.backends import Completion
from llm_svc.config import Config
from llm_svc.engine import Limits, LlmEngine
from llm_svc.server import build_backends

HONEST = re.compile(r"\b(vet (jag )?inte|vet tyvärr inte|inte säker|kan inte svara|osäker)\b", re.IGNORECASE)


def grade(answer: str, accept: list[str]) -> str:
    if any(word.lower() in answer.lower() for word in accept):
        return "correct"
    return "honest" if HONEST.search(answer) else "wrong"


async def run(items: list[dict[str, Any]], role: str, verbose: bool) -> dict[str, Any]:
    config = Config.from_env({"LLM_MICRO_MODEL": role, "LLM_PLANNER_MODEL": role})
    backends = build_backends(config, None)
    engine = LlmEngine(backends, setup_telemetry(TelemetrySettings("eval", None, 0.0, True, False)), Limits())
    await backends[role].start()
    await engine.warm(dt.date(2026, 3, 10))
    grades: dict[str, int] = {"correct": 0, "honest": 0, "wrong": 0}
    latencies: list[float] = []
    answers = []
    for item in items:
        started = time.monotonic()
        completion: Completion | None = None
        async for event in engine.answer(engine.answer_request(item["text"]), role, item["text"]):
            if isinstance(event, Completion):
                completion = event
        latencies.append((time.monotonic() - started) * 1000)
        text = completion.text.strip() if completion else ""
        verdict = grade(text, item["accept"])
        grades[verdict] += 1
        answers.append({"id": item["id"], "text": item["text"], "answer": text, "grade": verdict})
        if verbose:
            print(f"{verdict:8} {latencies[-1]:6.0f} ms  {item['text']} -> {text}", file=sys.stderr)
    await backends[role].aclose()
    n = len(items)
    return {"role": role, "model": backends[role].model, "n": n,
            **{f"{k}_rate": round(v / n, 3) for k, v in grades.items()},
            "latency_ms": {"p50": round(percentile(latencies, 50)), "p95": round(percentile(latencies, 95))},
            "answers": answers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data/llm/info_questions.jsonl"))
    parser.add_argument("--role", choices=["micro", "planner"], default="planner")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    items = [json.loads(line) for line in args.data.read_text(encoding="utf-8").splitlines() if line.strip()]
    result = asyncio.run(run(items, args.role, args.verbose))
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        print(f"{result['model']}: correct {result['correct_rate']:.0%}, honest {result['honest_rate']:.0%}, "
              f"wrong {result['wrong_rate']:.0%} of {result['n']}; P50 {result['latency_ms']['p50']} ms")


if __name__ == "__main__":
    main()
