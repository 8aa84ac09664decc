"""`alice eval nlu`: intent, tool and slot quality plus latency of the NLU service on any intent file.

Scoring (spec/intents.md): a prediction that abstains goes to the planner, so it calls no tool; otherwise it
calls the tool of its predicted intent. Tool accuracy compares that tool (or none) with the expected one;
tool precision is the share of the tool calls made that were the expected tool (1.0 when none was made).
Slot exact match compares all slots except the free-text `title`, over every item.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from alice import taxonomy
from alice.cli.common import DEFAULT_TZ, Line, emit, latency_summary, read_jsonl, reference_time
from alice.cli.scoring import UNSCORED_SLOTS, slots_match
from alice.local.mesh import LocalMesh
from alice.nlu.v1 import nlu_service_pb2, nlu_service_pb2_grpc

RPC_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Prediction:
    intent: str | None
    abstained: bool
    confidence: float
    slots: dict[str, object]
    route: str
    error: str | None = None


Predict = Callable[[str], Awaitable[Prediction]]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("nlu", help="intent/slot accuracy and latency of the NLU service",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="intent file (JSON Lines, spec/intents.md)")
    parser.add_argument("--now", help="reference time, e.g. 2026-03-10T09:00 (default: now)")
    parser.add_argument("--tz", default=DEFAULT_TZ, help=f"IANA time zone (default {DEFAULT_TZ})")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    parser.add_argument("--target", help="HOST:PORT of a running NLU service; default: start one locally")
    parser.add_argument("--in-process", action="store_true",
                        help="load the NLU in this process and call it directly (no gRPC, no network)")
    parser.add_argument("--max-errors", type=int, default=50, help="misclassified items listed in the report")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not args.data.is_file():
        raise SystemExit(f"no such file: {args.data}")
    now = reference_time(args.now, args.tz)
    lines, problems = read_jsonl(args.data, required=("text", "intent"))
    items: list[Line] = []
    for line in lines:
        if not isinstance(line.data["text"], str) or line.data["intent"] not in taxonomy.INTENTS:
            problems.append(f"{args.data.name}:{line.number}: text is not a string or unknown intent "
                            f"{line.data['intent']!r}; skipped")
            continue
        items.append(line)
    for problem in problems:
        print(problem, file=sys.stderr)
    predictions, latencies = asyncio.run(_predict_all(args, items, now))
    result = score(items, predictions, latencies, max_errors=args.max_errors)
    result["skipped_lines"] = len(problems)
    emit(result, args.json, report(result, args.data.name))
    return 0


async def _predict_all(args: argparse.Namespace, items: list[Line], now: dt.datetime
                       ) -> tuple[list[Prediction], list[float]]:
    async with _predictor(args, now) as predict:
        predictions: list[Prediction] = []
        latencies: list[float] = []
        for item in items:
            started = time.perf_counter()
            prediction = await predict(item.data["text"])
            latencies.append((time.perf_counter() - started) * 1000)
            predictions.append(prediction)
        return predictions, latencies


@contextlib.asynccontextmanager
async def _predictor(args: argparse.Namespace, now: dt.datetime) -> AsyncIterator[Predict]:
    if args.in_process:
        async with _in_process(now, args.tz) as predict:
            yield predict
        return
    if args.target:
        async with _over_grpc(args.target, now, args.tz) as predict:
            yield predict
        return
    mesh = LocalMesh(services=["nlu"])
    await asyncio.to_thread(mesh.start)
    try:
        async with _over_grpc(mesh.address("nlu"), now, args.tz) as predict:
            yield predict
    finally:
        await asyncio.to_thread(mesh.stop)


@contextlib.asynccontextmanager
async def _over_grpc(address: str, now: dt.datetime, tz: str) -> AsyncIterator[Predict]:
    stamp = Timestamp()
    stamp.FromDatetime(now.astimezone(dt.UTC))
    async with grpc.aio.insecure_channel(address) as channel:
        stub: Any = nlu_service_pb2_grpc.NluServiceStub(channel)

        async def predict(text: str) -> Prediction:
            request = nlu_service_pb2.ParseRequest(text=text, reference_time=stamp, time_zone=tz)
            try:
                reply = await stub.Parse(request, timeout=RPC_TIMEOUT_S, wait_for_ready=True)
            except grpc.aio.AioRpcError as error:
                return Prediction(None, True, 0.0, {}, "", f"{error.code().name}: {error.details()}")
            return Prediction(taxonomy.intent_name(reply.intent), reply.abstained, reply.confidence,
                              taxonomy.slots_from_proto(reply.slots), taxonomy.route_name(reply.route_hint))

        yield predict


@contextlib.asynccontextmanager
async def _in_process(now: dt.datetime, tz: str) -> AsyncIterator[Predict]:
    from opentelemetry.trace import NoOpTracer

    from alice.runtime.errors import ServiceError
    from nlu_svc.classifier import IntentClassifier
    from nlu_svc.config import Config
    from nlu_svc.embedders import EmbeddingService
    from nlu_svc.parser import Parser
    from nlu_svc.server import make_embedder

    settings = Config.from_env(os.environ).nlu
    embedder = await asyncio.to_thread(make_embedder, settings)
    classifier = IntentClassifier.load(settings.classifier_dir, embedder_id=embedder.model_id,
                                       variant=settings.classifier)
    embeddings = EmbeddingService(embedder, cache_size=settings.cache_size, max_batch=settings.batch_max,
                                  max_wait_s=settings.batch_wait_ms / 1000)
    parser = Parser(classifier, embeddings, NoOpTracer())
    print(f"in-process NLU: {embedder.model_id}, classifier {classifier.variant}", file=sys.stderr)

    async def predict(text: str) -> Prediction:
        try:
            result = await parser.parse(text, now, tz)
        except ServiceError as error:
            return Prediction(None, True, 0.0, {}, "", f"{error.code}: {error.message}")
        return Prediction(result.intent, result.abstained, result.confidence, result.slots, result.route)

    try:
        yield predict
    finally:
        await embeddings.close()


def _tool(prediction: Prediction) -> str | None:
    if prediction.intent is None or prediction.abstained:
        return None
    return taxonomy.tool_for(prediction.intent)


def _scored_slots(slots: dict[str, object]) -> dict[str, object]:
    """The slots as the report shows them (without the unscored free text)."""
    return {k: v for k, v in slots.items() if k not in UNSCORED_SLOTS}


def score(items: list[Line], predictions: list[Prediction], latencies: list[float], *,
          max_errors: int = 50) -> dict[str, Any]:
    """The contract's metrics for `items` (intent lines) and the service's `predictions`."""
    n = len(items)
    gold = [str(item.data["intent"]) for item in items]
    predicted = [p.intent or "(error)" for p in predictions]
    labels = sorted(set(gold) | {p for p in predicted if p in taxonomy.INTENTS},
                    key=lambda name: taxonomy.INTENTS.index(name))
    per_intent: dict[str, dict[str, float | int]] = {}
    f1s: list[float] = []
    for label in labels:
        tp = sum(1 for g, p in zip(gold, predicted, strict=True) if g == label and p == label)
        predicted_n = sum(1 for p in predicted if p == label)
        gold_n = sum(1 for g in gold if g == label)
        precision = tp / predicted_n if predicted_n else 0.0
        recall = tp / gold_n if gold_n else 0.0
        f1s.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
        per_intent[label] = {"precision": round(precision, 4), "recall": round(recall, 4), "n": gold_n}
    expected_tools = [item.data.get("tool", taxonomy.tool_for(g)) for item, g in zip(items, gold, strict=True)]
    made_tools = [_tool(p) for p in predictions]
    calls = [(made, want) for made, want in zip(made_tools, expected_tools, strict=True) if made is not None]
    slot_ok = [
        p.error is None and slots_match(dict(item.data.get("slots") or {}), p.slots)
        for item, p in zip(items, predictions, strict=True)
    ]
    errors = [
        {"id": item.data.get("id", f"line {item.number}"), "line": item.number, "text": item.data["text"],
         "expected": g, "predicted": p.intent, "confidence": round(p.confidence, 4), "abstained": p.abstained,
         **({"error": p.error} if p.error else {})}
        for item, g, p in zip(items, gold, predictions, strict=True) if p.intent != g
    ]
    slot_errors = [
        {"id": item.data.get("id", f"line {item.number}"), "text": item.data["text"], "intent": g,
         "predicted_intent": p.intent, "expected": _scored_slots(dict(item.data.get("slots") or {})),
         "got": _scored_slots(p.slots)}
        for item, g, p, ok in zip(items, gold, predictions, slot_ok, strict=True) if not ok
    ]
    confusion = Counter((g, p) for g, p in zip(gold, predicted, strict=True))
    return {
        "n": n,
        "intent_accuracy": round(sum(g == p for g, p in zip(gold, predicted, strict=True)) / n, 4) if n else 0.0,
        "macro_f1": round(sum(f1s) / len(f1s), 4) if f1s else 0.0,
        "tool_accuracy": round(sum(m == w for m, w in zip(made_tools, expected_tools, strict=True)) / n, 4)
        if n else 0.0,
        "tool_precision": round(sum(m == w for m, w in calls) / len(calls), 4) if calls else 1.0,
        "slot_exact_match": round(sum(slot_ok) / n, 4) if n else 0.0,
        "latency_ms": latency_summary(latencies),
        "per_intent": per_intent,
        "errors": errors[:max_errors],
        "abstain_rate": round(sum(p.abstained for p in predictions) / n, 4) if n else 0.0,
        "tool_calls": len(calls),
        "routes": dict(Counter(p.route or "(error)" for p in predictions)),
        "rpc_errors": sum(p.error is not None for p in predictions),
        "confusion": {g: {p: c for (g2, p), c in confusion.items() if g2 == g} for g in labels},
        "slot_errors": slot_errors[:max_errors],
    }


def report(result: dict[str, Any], name: str) -> str:
    """The human-readable report."""
    out = [f"NLU evaluation on {name}: n={result['n']} (skipped lines: {result['skipped_lines']})", ""]
    for key in ("intent_accuracy", "macro_f1", "tool_accuracy", "tool_precision", "slot_exact_match", "abstain_rate"):
        out.append(f"  {key:<18} {result[key] * 100:6.2f} %")
    lat = result["latency_ms"]
    out.append(f"  latency ms         P50 {lat['p50']:.2f}  P95 {lat['p95']:.2f}  P99 {lat['p99']:.2f}")
    out.append(f"  tool calls {result['tool_calls']}, routes {result['routes']}, rpc errors {result['rpc_errors']}")
    out += ["", f"  {'intent':<22} {'precision':>9} {'recall':>7} {'n':>4}"]
    for intent, m in result["per_intent"].items():
        out.append(f"  {intent:<22} {m['precision'] * 100:8.1f}% {m['recall'] * 100:6.1f}% {m['n']:>4}")
    labels = list(result["per_intent"])
    short = [label.split(".")[0][:4] + "." + label.split(".")[-1][:5] for label in labels]
    header = "  " + " " * 22 + " ".join(f"{s:>10}" for s in short)
    out += ["", "  confusion (rows: expected, columns: predicted)", header]
    for label in labels:
        row = result["confusion"].get(label, {})
        out.append(f"  {label:<22}" + " ".join(f"{row.get(p, 0) or '.':>10}" for p in labels))
    if result["errors"]:
        out += ["", "  misclassified:"]
        for e in result["errors"]:
            flag = " (abstained)" if e["abstained"] else ""
            out.append(f"    [{e['id']}] {e['text']!r}: expected {e['expected']}, got {e['predicted']} "
                       f"{e['confidence']:.2f}{flag}{' ' + e['error'] if 'error' in e else ''}")
    if result["slot_errors"]:
        out += ["", "  slot mismatches:"]
        for e in result["slot_errors"]:
            out.append(f"    [{e['id']}] {e['text']!r}: expected {e['expected']}, got {e['got']}")
    return "\n".join(out)
