"""Text normalisation: cleaning, lowercasing, folding and index alignment."""

from __future__ import annotations

import random

import pytest

from alice.swedish.text import fold, normalize, surface_forms, tokens


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("Hej Alice", "hej alice", id="lowercase"),
        pytest.param("  vad   är\tklockan\n ", "vad är klockan", id="whitespace"),
        pytest.param("\u0000\u0007 vad är klockan", "vad är klockan", id="control-chars"),
        pytest.param("kl\u200b 14\ufeff", "kl 14", id="zero-width-and-bom"),
        pytest.param("A\u030angström", "ångström", id="nfc"),
        pytest.param("ÅÄÖ åäö", "åäö åäö", id="keeps-swedish-letters"),
        pytest.param("x\ud800y", "xy", id="lone-surrogate"),
        pytest.param("a\u00a0b", "a b", id="no-break-space"),
        pytest.param("", "", id="empty"),
    ],
)
def test_normalize(text: str, expected: str) -> None:
    assert normalize(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("Göteborg", "goteborg", id="ö"),
        pytest.param("Västerås", "vasteras", id="ä-å"),
        pytest.param("Café Über", "cafe uber", id="é-ü"),
        pytest.param("Øresund", "oresund", id="ø"),
        pytest.param("e\u0301", "e", id="combining-mark"),
        pytest.param("한국", "한국", id="hangul-unchanged"),
    ],
)
def test_fold(text: str, expected: str) -> None:
    assert fold(text) == expected


def test_tokens() -> None:
    assert tokens("Mejla åsa@exempel.se kl 8.30 den 24/3, e-post!") == [
        "mejla",
        "åsa@exempel.se",
        "kl",
        "8.30",
        "den",
        "24/3",
        "e-post",
    ]


def test_forms_stay_aligned() -> None:
    rnd = random.Random(7)
    alphabet = "aåäöAÅÄÖéÉüÜøİß ЖΩ漢🙂\u0301\u200b\t.:@"
    for _ in range(200):
        forms = surface_forms("".join(rnd.choice(alphabet) for _ in range(60)))
        assert len(forms.cased) == len(forms.lower) == len(forms.folded)
        assert forms.lower == normalize(forms.cased) or "İ" in forms.cased
