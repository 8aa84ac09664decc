"""Unit tests of the intent classifier: features, training, calibration fitting, decisions, persistence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nlu_svc import classifier as clf
from nlu_svc.config import MODEL_DIR

TINY = [
    ("vad är klockan", "time.now"), ("hur mycket är klockan nu", "time.now"), ("vad är tiden", "time.now"),
    ("hur blir vädret i Malmö", "weather.lookup"), ("regnar det imorgon", "weather.lookup"),
    ("väder i Luleå på fredag", "weather.lookup"),
    ("sätt en timer på fem minuter", "timer.set"), ("starta en timer på tio minuter", "timer.set"),
    ("timer tre kvart", "timer.set"),
    ("hej", "greeting.hello"), ("tjena", "greeting.hello"), ("god morgon", "greeting.hello"),
]


def calibration(**overrides: object) -> clf.Calibration:
    values: dict[str, object] = {
        "variant": "ensemble", "lexical_temperature": 1.0, "gate": 0.8, "lexical_weight": 1.0,
        "embedding_weight": 1.0, "abstain": dict.fromkeys(clf.LABELS, 0.5), "fast": dict.fromkeys(clf.LABELS, 0.9),
        "embedder_id": "fake",
    }
    values.update(overrides)
    return clf.Calibration(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def tiny_model() -> clf.LexicalModel:
    return clf.LexicalModel.fit([t for t, _ in TINY], [i for _, i in TINY], l2=1e-4, steps=300)


@pytest.mark.parametrize(("a", "b"), [("vädret", "vadret"), ("Göteborg", "goteborg"), ("KLOCKAN", "klockan")],
                         ids=["a-umlaut", "o-umlaut", "case"])
def test_features_fold_diacritics_and_case(a: str, b: str) -> None:
    assert clf.feature_strings(a) == clf.feature_strings(b)


def test_features_map_digits_and_mark_boundaries() -> None:
    features = clf.feature_strings("kl 14 idag")
    assert "w:00" in features
    assert "b:<s> kl" in features and "b:idag </s>" in features
    assert clf.feature_strings("kl 15 idag") == features


@pytest.mark.parametrize("text", ["", "   ", "😀", "\x00\x01"], ids=["empty", "spaces", "emoji", "control"])
def test_hashed_features_of_texts_without_words(text: str) -> None:
    buckets, values = clf.hashed_features(text)
    assert len(buckets) == len(values)
    if len(values):
        assert np.isclose(np.linalg.norm(values), 1.0)


def test_hashed_features_are_unit_length_and_stable() -> None:
    b1, v1 = clf.hashed_features("boka möte med Anna")
    b2, v2 = clf.hashed_features("boka möte med Anna")
    assert np.array_equal(b1, b2) and np.allclose(v1, v2)
    assert np.isclose(np.linalg.norm(v1), 1.0)
    assert b1.max() < 1 << clf.HASH_BITS


@pytest.mark.parametrize(("text", "intent"), TINY, ids=[t for t, _ in TINY])
def test_lexical_model_fits_its_training_data(tiny_model: clf.LexicalModel, text: str, intent: str) -> None:
    assert clf.LABELS[int(np.argmax(tiny_model.logits(text)))] == intent


def test_lexical_model_generalises_to_a_typo(tiny_model: clf.LexicalModel) -> None:
    assert clf.LABELS[int(np.argmax(tiny_model.logits("satt en timmer pa sex minuter")))] == "timer.set"


def test_unknown_text_gives_the_bias_only(tiny_model: clf.LexicalModel) -> None:
    assert np.allclose(tiny_model.logits("😀"), tiny_model.bias)


def test_softmax_rows_sum_to_one() -> None:
    p = clf.softmax(np.array([[1000.0, 0.0], [1.0, 1.0]]))
    assert np.allclose(p.sum(axis=1), 1.0) and np.allclose(p[1], [0.5, 0.5])


def test_fit_temperature_softens_overconfident_logits() -> None:
    rng = np.random.default_rng(0)
    gold = rng.integers(0, 3, 300)
    logits = rng.normal(0, 1, (300, 3))
    logits[np.arange(300), gold] += 1.0
    assert clf.fit_temperature(logits * 20, gold) > 5.0
    assert 0.5 < clf.fit_temperature(logits, gold) < 2.0


def test_fit_weights_prefers_the_informative_model() -> None:
    rng = np.random.default_rng(1)
    gold = rng.integers(0, 3, 200)
    informative = np.eye(3)[gold] * 3.0
    noise = rng.normal(0, 1, (200, 3))
    a, b = clf.fit_weights(noise, informative, gold)
    assert b > a


def test_thresholds_sit_above_every_wrong_prediction_of_the_intent() -> None:
    predicted = ["timer.set", "timer.set", "timer.set", "time.now", "time.now"]
    gold = ["timer.set", "timer.set", "time.now", "time.now", "time.now"]
    confidence = np.array([0.99, 0.9, 0.8, 0.95, 0.6])
    abstain, fast = clf.fit_thresholds(confidence, predicted, gold, pooled_precision=0.5)
    assert abstain["timer.set"] > 0.8
    assert abstain["time.now"] == pytest.approx(0.0)  # no wrong time.now prediction; the pooled floor is 0
    assert all(fast[i] >= abstain[i] for i in clf.LABELS)
    assert fast["time.now"] > 0.8


def test_thresholds_floor_from_pooled_precision() -> None:
    predicted = ["time.now"] * 9 + ["timer.set"]
    gold = ["time.now"] * 9 + ["time.now"]
    confidence = np.array([0.9] * 9 + [0.3])
    abstain, _ = clf.fit_thresholds(confidence, predicted, gold, pooled_precision=0.99)
    assert abstain["time.now"] == pytest.approx(0.9)
    assert abstain["timer.set"] > 0.3


def head(dim: int = 4) -> clf.EmbeddingHead:
    weights = np.zeros((dim, len(clf.LABELS)), dtype=np.float32)
    weights[0, clf.LABELS.index("timer.set")] = 10.0
    return clf.EmbeddingHead("fake", weights, np.zeros(len(clf.LABELS), dtype=np.float32))


def test_decide_abstains_below_the_threshold_and_is_confident_above_fast(tiny_model: clf.LexicalModel) -> None:
    classifier = clf.IntentClassifier(tiny_model, calibration(variant="lexical"))
    p = np.full(len(clf.LABELS), 0.0, dtype=np.float32)
    p[clf.LABELS.index("time.now")] = 0.4
    p[clf.LABELS.index("timer.set")] = 0.6
    d = classifier.decide(p, used_embedding=False)
    assert (d.intent, d.abstained, d.confident) == ("timer.set", False, False)
    assert d.alternatives[0][0] == "timer.set" and d.alternatives[0][1] == pytest.approx(0.6)
    assert d.alternatives[1][0] == "time.now"
    p[clf.LABELS.index("timer.set")] = 0.95
    assert classifier.decide(p, used_embedding=False).confident
    p[clf.LABELS.index("timer.set")] = 0.45
    p[clf.LABELS.index("time.now")] = 0.1
    assert classifier.decide(p, used_embedding=False).abstained


def test_embedding_is_consulted_only_below_the_gate(tiny_model: clf.LexicalModel) -> None:
    classifier = clf.IntentClassifier(tiny_model, calibration(gate=0.8), head())
    sure = np.zeros(len(clf.LABELS), dtype=np.float32)
    sure[0] = 20.0
    unsure = np.zeros(len(clf.LABELS), dtype=np.float32)
    assert not classifier.needs_embedding(sure)
    assert classifier.needs_embedding(unsure)
    vector = np.array([1.0, 0, 0, 0], dtype=np.float32)
    probabilities = classifier.probabilities(unsure, vector)
    assert clf.LABELS[int(np.argmax(probabilities))] == "timer.set"


def test_lexical_variant_ignores_the_head(tiny_model: clf.LexicalModel) -> None:
    classifier = clf.IntentClassifier(tiny_model, calibration(variant="lexical"), head())
    assert classifier.head is None
    assert not classifier.needs_embedding(np.zeros(len(clf.LABELS), dtype=np.float32))


def test_embedding_variant_always_consults(tiny_model: clf.LexicalModel) -> None:
    classifier = clf.IntentClassifier(tiny_model, calibration(variant="embedding"), head())
    sure = np.zeros(len(clf.LABELS), dtype=np.float32)
    sure[0] = 20.0
    assert classifier.needs_embedding(sure)


def test_ensemble_without_head_is_rejected(tiny_model: clf.LexicalModel) -> None:
    with pytest.raises(ValueError, match="needs an embedding head"):
        clf.IntentClassifier(tiny_model, calibration())


def test_calibration_json_round_trip_and_validation() -> None:
    c = calibration()
    assert clf.Calibration.from_json(c.to_json()) == c
    broken = c.to_json() | {"abstain": {"time.now": 0.5}}
    with pytest.raises(ValueError, match="lacks thresholds"):
        clf.Calibration.from_json(broken)
    with pytest.raises(ValueError, match="unknown classifier variant"):
        clf.Calibration.from_json(c.to_json() | {"variant": "magic"})


def test_save_and_load_round_trip(tmp_path: Path, tiny_model: clf.LexicalModel) -> None:
    clf.IntentClassifier.save_lexical(tiny_model, tmp_path / "lexical.npz")
    clf.IntentClassifier.save_head(head(), tmp_path / f"head-{clf.embedder_slug('fake')}.npz")
    (tmp_path / "lexical.json").write_text(
        __import__("json").dumps(calibration(variant="lexical", embedder_id=None).to_json()))
    (tmp_path / "ensemble-fake.json").write_text(__import__("json").dumps(calibration().to_json()))
    loaded = clf.IntentClassifier.load(tmp_path, embedder_id="fake")
    assert loaded.variant == "ensemble" and loaded.head is not None
    assert np.allclose(loaded.lexical.logits("vad är klockan"), tiny_model.logits("vad är klockan"))
    assert clf.IntentClassifier.load(tmp_path, embedder_id="other").variant == "lexical"
    with pytest.raises(FileNotFoundError):
        clf.IntentClassifier.load(tmp_path, embedder_id="other", variant="ensemble")


def test_committed_model_loads_and_classifies() -> None:
    classifier = clf.IntentClassifier.load(MODEL_DIR, embedder_id=None)
    assert classifier.variant == "lexical"
    decision = classifier.classify_lexical("hur blir vädret i Göteborg imorgon")
    assert decision.intent == "weather.lookup" and not decision.abstained
