"""Swedish text normalisation: cleaning, lowercasing and diacritic folding with stable character offsets."""

from __future__ import annotations

import re
import unicodedata
from typing import Final, NamedTuple

# Control, format (zero-width, bidi), surrogate and private-use characters carry no meaning for matching;
# lone surrogates would also break UTF-8 encoding further down the line.
_STRIPPED_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Co"})

# Letters without a canonical decomposition that still have an obvious base letter.
_EXTRA_FOLDS: Final = {"ø": "o", "ł": "l", "đ": "d", "ð": "d", "ı": "i", "ħ": "h"}

_TOKEN_RE: Final = re.compile(r"[^\W_]+(?:[-'’.:/@][^\W_]+)*")


def _fold_table() -> dict[int, str]:
    # Only one-to-one folds, so that a folded string stays index-aligned with its source.
    table: dict[int, str] = {}
    for start, stop in ((0x00C0, 0x0250), (0x1E00, 0x1F00)):
        for code in range(start, stop):
            char = chr(code)
            base = _EXTRA_FOLDS.get(char)
            if base is None:
                base = "".join(c for c in unicodedata.normalize("NFD", char) if not unicodedata.combining(c))
            if len(base) == 1 and base != char:
                table[code] = base
    return table


_FOLD_TABLE: Final = _fold_table()


class Forms(NamedTuple):
    """One text in three index-aligned spellings: position i is the same character in all three."""

    cased: str
    lower: str
    folded: str


def _clean(text: str) -> str:
    text = unicodedata.normalize("NFC", text)
    if not text.isprintable():
        text = "".join(
            " " if ch.isspace() else ch
            for ch in text
            if ch.isspace() or unicodedata.category(ch) not in _STRIPPED_CATEGORIES
        )
        # Removing a character can bring a base letter next to a combining mark.
        text = unicodedata.normalize("NFC", text)
    return " ".join(text.split())


def _lower(text: str) -> str:
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    # A few capitals lowercase to two code points ("İ"); keep those as they are to stay aligned.
    return "".join(low if len(low := ch.lower()) == 1 else ch for ch in text)


def surface_forms(text: str) -> Forms:
    """Clean `text` (as `normalize` does, keeping case) and return it cased, lowercased and folded."""
    cased = _clean(text)
    lower = _lower(cased)
    return Forms(cased, lower, lower.translate(_FOLD_TABLE))


def normalize(text: str) -> str:
    """NFC, control characters removed, whitespace collapsed, lowercase; å, ä and ö are kept."""
    return _lower(_clean(text))


def fold(text: str) -> str:
    """`normalize`, then diacritics folded (å→a, ä→a, ö→o, é→e, ü→u) for typo-tolerant matching."""
    folded = normalize(text).translate(_FOLD_TABLE)
    if folded.isascii():
        return folded
    stripped = "".join(c for c in unicodedata.normalize("NFD", folded) if not unicodedata.combining(c))
    return unicodedata.normalize("NFC", stripped)


def tokens(text: str) -> list[str]:
    """Word tokens of the normalised text; "8.30", "24/3", "e-post" and e-mail addresses stay one token."""
    return _TOKEN_RE.findall(normalize(text))
