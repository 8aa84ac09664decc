"""Memory notes: keyword overlap between the question and what the user said."""

from __future__ import annotations

import pytest

from router_svc.tools.memory import Note, best_notes, content_words

NOTES = [
    Note("1", "Min hund heter Fido", "2026-03-01T10:00:00"),
    Note("2", "Jag parkerade bilen på plan 3 i garaget", "2026-03-02T10:00:00"),
    Note("3", "Min syster Karin fyller år den 4 april", "2026-03-03T10:00:00"),
    Note("4", "Wifi-lösenordet hemma är blåbär123", "2026-03-04T10:00:00"),
    Note("5", "Hunden ska till veterinären på fredag", "2026-03-05T10:00:00"),
]


def test_content_words_drop_function_words() -> None:
    assert content_words("Vad heter min hund?") == ["hund"]
    assert content_words("Kommer du ihåg var jag parkerade bilen?") == ["parkerade", "bilen"]


@pytest.mark.parametrize(
    ("question", "ids"),
    [
        pytest.param("Var parkerade jag bilen?", ["2"], id="parking"),
        pytest.param("När fyller Karin år?", ["3"], id="birthday"),
        pytest.param("vad är wifi-lösenordet", ["4"], id="password"),
        pytest.param("ska hunden till veterinären?", ["5"], id="most-overlap-wins"),
        pytest.param("vad heter min hund", ["5", "1"], id="tie-newest-first"),
        pytest.param("vad heter min katt?", [], id="nothing-matches"),
        pytest.param("vad sa jag?", [], id="only-function-words"),
        pytest.param("", [], id="empty-question"),
    ],
)
def test_best_notes(question: str, ids: list[str]) -> None:
    assert [n.id for n in best_notes(question, NOTES)] == ids


def test_short_words_need_an_exact_match() -> None:
    notes = [Note("1", "Bo bor i Lund", "2026-03-01T10:00:00")]
    assert best_notes("var bor Bo?", notes)
    assert not best_notes("var är boken?", notes)
