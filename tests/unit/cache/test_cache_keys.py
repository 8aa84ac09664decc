"""The one key builder: equal canonical requests share a key, anything that changes the answer changes it."""

from __future__ import annotations

import pytest

from cache_svc import keys
from cache_svc.guards import analyse


def test_same_request_same_key() -> None:
    args = ("weather.lookup", {"city": "Luleå", "date": "2026-03-12"}, "", None, "v1")
    assert keys.l1_key(*args) == keys.l1_key(*args)


def test_slot_order_and_case_do_not_matter() -> None:
    a = keys.l1_key("weather.lookup", {"city": "Luleå", "date": "2026-03-12"}, "", None, "v1")
    b = keys.l1_key("weather.lookup", {"date": "2026-03-12", "city": " luleå "}, "", None, "v1")
    assert a == b


def test_attendee_order_does_not_matter() -> None:
    a = keys.canonical_slots({"attendees": ["Anna", "Erik"]})
    assert a == keys.canonical_slots({"attendees": ["erik", "Anna"]})


@pytest.mark.parametrize(
    ("change", "value"),
    [
        pytest.param("intent", "calendar.list", id="intent"),
        pytest.param("slots", {"city": "Luleå", "date": "2026-03-13"}, id="other-day"),
        pytest.param("slots", {"city": "Umeå", "date": "2026-03-12"}, id="other-city"),
        pytest.param("text_form", "x", id="text-form"),
        pytest.param("user", "u2", id="user"),
        pytest.param("version", "v2", id="answer-version"),
    ],
)
def test_anything_that_changes_the_answer_changes_the_key(change: str, value: object) -> None:
    base: dict[str, object] = {"intent": "weather.lookup", "slots": {"city": "Luleå", "date": "2026-03-12"},
                               "text_form": "", "user": None, "version": "v1"}
    changed = {**base, change: value}

    def key(d: dict[str, object]) -> str:
        return keys.l1_key(d["intent"], d["slots"], d["text_form"], d["user"], d["version"])  # type: ignore[arg-type]

    assert key(base) != key(changed)


def test_personal_keys_share_the_users_hash_tag() -> None:
    l1 = keys.l1_key("memory.query", {}, "x", "anna@example.se", "v1")
    l2 = keys.l2_set_key("memory.query", {}, "anna@example.se", "v1", "e5", "hund")
    index = keys.user_index("anna@example.se", "memory.query")
    tag = "{u:anna%40example.se}"
    assert all(tag in k for k in (l1, l2, index))


def test_user_ids_cannot_break_out_of_the_hash_tag() -> None:
    assert keys.l1_key("memory.query", {}, "", "a}b{c", "v1").count("}") == 1


def test_shared_keys_have_no_user() -> None:
    assert "{u:" not in keys.l1_key("info.query", {}, "x", None, "v1")


def test_l3_key_differs_from_l1_key_of_the_same_request() -> None:
    args: tuple[str, dict[str, object], str, None, str] = ("info.query", {}, "x", None, "v1")
    assert keys.l1_key(*args) != keys.l3_key(*args)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        pytest.param("Hur högt är Kebnekaise?", "hur hög är kebnekaise", id="case-inflection"),
        pytest.param("Hur högt är Kebnekaise?", "Kebnekaises höjd?", id="genitive-noun"),
        pytest.param("Vad är huvudstaden i Frankrike?", "Frankrikes huvudstad?", id="reordered"),
        pytest.param("När föddes Carl von Linné?", "Vilket år föddes Carl von Linné?", id="vilket-ar-is-nar"),
    ],
)
def test_text_form_is_equal_for_paraphrases(a: str, b: str) -> None:
    assert analyse(a).key_form() == analyse(b).key_form()


@pytest.mark.parametrize(
    ("a", "b"),
    [
        pytest.param("Vad är huvudstaden i Peru?", "Vad är huvudstaden i Chile?", id="place"),
        pytest.param("Hur hög är Kebnekaise?", "Hur gammal är Kebnekaise?", id="attribute"),
        pytest.param("När föddes Greta Garbo?", "Var föddes Greta Garbo?", id="when-where"),
        pytest.param("Är Sverige större än Norge?", "Är Norge större än Sverige?", id="swapped-comparison"),
        pytest.param("Vad är 15 gånger 4?", "Vad är 15 gånger 5?", id="number"),
        pytest.param("Är tomat en frukt?", "Är tomat inte en frukt?", id="negation"),
    ],
)
def test_text_form_differs_for_near_misses(a: str, b: str) -> None:
    assert analyse(a).key_form() != analyse(b).key_form()
