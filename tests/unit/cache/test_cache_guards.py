"""L2 guards: paraphrases pass; near misses (names, places, numbers, negation, attributes) are rejected."""

from __future__ import annotations

import pytest

from cache_svc.guards import analyse, check, fold, stem


@pytest.mark.parametrize(
    ("text", "folded"),
    [pytest.param("Höjd på KEBNEKAISE", "hojd pa kebnekaise", id="diacritics-case"),
     pytest.param("Åre", "are", id="ring")],
)
def test_fold(text: str, folded: str) -> None:
    assert fold(text) == folded


@pytest.mark.parametrize(
    ("word", "stemmed"),
    [
        pytest.param("huvudstaden", "huvudstad", id="definite-en"),
        pytest.param("kebnekaises", "kebnekaise", id="genitive-s"),
        pytest.param("hojd", "hog", id="lexicon-hojd"),
        pytest.param("hogt", "hog", id="lexicon-hogt"),
        pytest.param("sjon", "sjo", id="definite-n"),
    ],
)
def test_stem(word: str, stemmed: str) -> None:
    assert stem(word) == stemmed


@pytest.mark.parametrize(
    ("stored", "asked"),
    [
        pytest.param("Hur högt är Kebnekaise?", "Kebnekaises höjd", id="genitive-noun"),
        pytest.param("Vad är huvudstaden i Frankrike?", "vilken stad är huvudstad i Frankrike", id="one-extra-word"),
        pytest.param("Hur lång är en marathon?", "hur långt är ett maraton", id="spelling"),
        pytest.param("Varför är havet salt?", "varför är haven salta", id="plural-adjective"),
        pytest.param("Vilken planet är störst?", "vilken är den största planeten", id="superlative-definite"),
        pytest.param("När föddes Carl von Linné?", "Vilket år föddes Carl von Linné?", id="vilket-ar"),
        pytest.param("Vem uppfann telefonen?", "Telefonens uppfinnare?", id="no-interrogative"),
        pytest.param("Hur långt är det till månen?", "Hur långt är det från jorden till månen?", id="from-to"),
    ],
)
def test_paraphrases_pass(stored: str, asked: str) -> None:
    assert check(analyse(asked), analyse(stored)) is None


@pytest.mark.parametrize(
    ("stored", "asked", "guard"),
    [
        pytest.param("Vad är huvudstaden i Peru?", "Vad är huvudstaden i Chile?", "names", id="place"),
        pytest.param("vad är huvudstaden i peru", "vad är huvudstaden i chile", "content", id="place-lowercase"),
        pytest.param("Hur hög är Kebnekaise?", "Hur gammal är Kebnekaise?", "content", id="hur-gammal-vs-hur-hog"),
        pytest.param("Vem vann fotbolls-VM 2018?", "Vem vann fotbolls-VM 2014?", "numbers", id="year"),
        pytest.param("Vem var Sveriges första statsminister?", "Vem var Sveriges andra statsminister?",
                     "numbers", id="ordinal"),
        pytest.param("Vilka länder är med i Nato?", "Vilka länder är inte med i Nato?", "negation",
                     id="negation"),
        pytest.param("När föddes Greta Garbo?", "Var föddes Greta Garbo?", "question", id="when-vs-where"),
        pytest.param("Är Sverige större än Norge?", "Är Norge större än Sverige?", "names", id="swapped"),
        pytest.param("Vem grundade IKEA?", "Vem grundade H&M?", "names", id="company"),
        pytest.param("Vad heter min hund?", "Vad heter min katt?", "content", id="memory-pet"),
        pytest.param("Vem är Anna?", "Vem är Anna Svensson?", "names", id="extra-name"),
        pytest.param("Hur hög är Eiffeltornet?", "Hur hög är Eiffeltornet på vintern i Paris?", "names",
                     id="many-extra-words"),
        pytest.param("Hur många invånare har Stockholm?", "Hur många invånare har Stockholms län?", "content",
                     id="genitive-head-noun"),
    ],
)
def test_near_misses_are_rejected(stored: str, asked: str, guard: str) -> None:
    assert check(analyse(asked), analyse(stored)) == guard


def test_no_extra_words_allowed_when_configured() -> None:
    stored, asked = analyse("Vad betyder lagom?"), analyse("Vad betyder ordet lagom?")
    assert check(asked, stored, allow_extra=1) is None
    assert check(asked, stored, allow_extra=0) == "content"


def test_analysis_round_trips_through_json() -> None:
    analysis = analyse("Vem var Sveriges första kvinnliga statsminister, inte den andra?")
    from cache_svc.guards import Analysis

    assert Analysis.from_json(analysis.to_json()) == analysis


@pytest.mark.parametrize(
    "data",
    [pytest.param(None, id="none"), pytest.param({"c": "x"}, id="missing"),
     pytest.param({"c": [1], "n": [], "p": [], "x": False, "q": ""}, id="wrong-type")],
)
def test_foreign_analysis_is_rejected(data: object) -> None:
    from cache_svc.guards import Analysis

    with pytest.raises(ValueError):
        Analysis.from_json(data)
