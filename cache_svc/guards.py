"""Swedish text analysis for cache keys and the L2 guards (negation, numbers, question, names, content words)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

# Guard names, as counted in Stats.rejections_by_guard and set on spans (alice.cache.guard).
GUARD_SIMILARITY = "similarity"
GUARD_NEGATION = "negation"
GUARD_NUMBERS = "numbers"
GUARD_QUESTION = "question"
GUARD_NAMES = "names"
GUARD_CONTENT = "content"
GUARDS: tuple[str, ...] = (GUARD_SIMILARITY, GUARD_NEGATION, GUARD_NUMBERS, GUARD_QUESTION, GUARD_NAMES,
                           GUARD_CONTENT)

_TOKEN = re.compile(r"\d+(?:[.,]\d+)?|[^\W\d_]+(?:&[^\W\d_]+)*", re.UNICODE)

# Function words and politeness/filler words that never change what is asked (diacritic-folded).
STOPWORDS: frozenset[str] = frozenset(
    """
    a alla allt alltsa an annars att av bara beratta blev bli blir borde da de dem den denna denne
    dess dessa det detta dig din ditt dina du efter eftersom egentligen eller en ens ett fa far for forresten
    fran ge gor gora gjorde har ha hade hallo han hans har hej hen henne hennes hon honom hos hur i idag ihop
    igen in inom ja jag just ju kan kanske kunde kunna lite man med mej mig min mina mitt mycket manga
    namligen nagon nagot nagra na nu och ocksa om oss pa samt sa saga sag sager se sedan sig sin sina sitt
    ska skall skulle snalla som svara svaret tack till tror under undrar upp ut utav vad val var vara
    vare varit vart vem vet veta vi vilka vilken vilket vill ville visst vore vad all allting exakt ungefar
    precis riktigt typ liksom ar finns finn fanns antal vid minns ihag kommer namnde sade sagt
    berattade bort
    """.split()
)
# Words that deny: "vilka länder är inte med i EU" is another question than "vilka länder är med i EU".
NEGATIONS: frozenset[str] = frozenset("inte ej icke aldrig ingen inget inga varken".split())

# Interrogatives that make distinct questions of the same content ("när föddes X" vs "var föddes X").
# "var" means "where" only before any other interrogative or content word; elsewhere it is "was".
_WH = {"vem": "who", "vems": "who", "nar": "when", "varfor": "why", "vart": "where", "varifran": "where"}
# "vilket år föddes X" asks "när föddes X": interrogative determiner + noun -> question type.
_WH_NOUNS = {"ar": "when", "artal": "when", "datum": "when", "dag": "when", "tid": "when", "stad": "where",
             "plats": "where", "ort": "where"}
_WH_DETERMINERS = frozenset("vilket vilken vilka".split())
_OPEN_INTERROGATIVES = frozenset("vad hur vilket vilken vilka".split())

_CARDINALS = {
    "noll": 0, "tva": 2, "tre": 3, "fyra": 4, "fem": 5, "sex": 6, "sju": 7, "atta": 8, "nio": 9, "tio": 10,
    "elva": 11, "tolv": 12, "tretton": 13, "fjorton": 14, "femton": 15, "sexton": 16, "sjutton": 17,
    "arton": 18, "nitton": 19, "tjugo": 20, "trettio": 30, "fyrtio": 40, "femtio": 50, "sextio": 60,
    "sjuttio": 70, "attio": 80, "nittio": 90, "hundra": 100, "tusen": 1000, "miljon": 10**6,
    "miljoner": 10**6, "miljard": 10**9, "miljarder": 10**9, "dussin": 12,
}
_ORDINALS = {
    "forsta": 1, "andra": 2, "tredje": 3, "fjarde": 4, "femte": 5, "sjatte": 6, "sjunde": 7, "attonde": 8,
    "nionde": 9, "tionde": 10, "sista": -1,
}

# Surface forms (folded) that name the same asked-for attribute; the value is the canonical token.
_LEXICON_GROUPS: tuple[tuple[str, str], ...] = (
    ("hog", "hog hogt hoga hojd hojden hojder"),
    ("gammal", "gammal gammalt gamla alder aldern"),
    ("lang", "lang langt langa langd langden avstand avstandet"),
    ("djup", "djup djupt djupa djupet"),
    ("bred", "bred brett breda bredd bredden"),
    ("tung", "tung tungt tunga vikt vikten vager"),
    ("stor", "stor stort stora storlek storleken yta ytan area arean"),
    ("befolkning", "befolkning befolkningen invanare invanarna bor"),
    ("skriv", "skrev skrivit skriva skriver forfattare forfattaren forfattat"),
    ("parker", "parkerade parkerat parkera stallde stallt"),
    ("fodd", "fodd fodde foddes fodelse fodelsedag fodelsedagen fodelsear fyller fyllde"),
    ("dod", "dog dott dod doden avled"),
    ("uppfinn", "uppfann uppfunnit uppfinnare uppfinnaren uppfanns"),
    ("grund", "grundade grundades grundare grundaren grundat grundad startade startat"),
    ("sprak", "sprak spraket talar pratar talas pratas"),
    ("namn", "namn namnet heter hette kallas"),
    ("pris", "pris priset kostar kostade kostnad kostnaden"),
    ("betyd", "betyder betydelse betydelsen innebar"),
    ("huvudstad", "huvudstad huvudstaden huvudstader"),
    ("valuta", "valuta valutan"),
    ("uppfinn", "uppfinningen"),
    ("malade", "malade malat malning malningen malare"),
    ("regent", "kung kungen drottning drottningen monark monarken regent regenten"),
    ("ledare", "statsminister statsministern premiarminister premiarministern regeringschef"),
    ("president", "president presidenten"),
    ("temperatur", "temperatur temperaturen"),
    ("vann", "vann vinnare vinnaren vunnit segrade"),
    ("kok", "koka kokar kokpunkt kokpunkten"),
    ("snabb", "snabb snabbt snabba fort hastighet hastigheten"),
)
LEXICON: dict[str, str] = {form: canon for canon, forms in _LEXICON_GROUPS for form in forms.split()}

# Light stemming: a genitive -s, then up to two definite/plural/adjective endings.
_SUFFIXES = ("arna", "erna", "orna", "ar", "er", "or", "en", "et", "a")
_VOWELS = frozenset("aeiouy")
_LONG_STEM_SUFFIXES = frozenset({"ar", "er", "or", "a"})
_MIN_STEM = 3

# Comparison and direction markers: the word after them takes a role ("större än Norge" vs "Norge större än").
_ROLE_MARKERS = {"an": "than", "fran": "from"}
_TILL_ROLE = "to"  # "till X" is a role only when "från" is present ("från A till B")


def fold(text: str) -> str:
    """Lowercase without diacritics: "Höjd på Kebnekaise" -> "hojd pa kebnekaise"."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def normalise(text: str) -> str:
    """Casefolded text with collapsed whitespace (the form NLU also reports)."""
    return " ".join(text.casefold().split())


def _strip(word: str, first: bool) -> str:
    for suffix in _SUFFIXES:
        # Plural and adjective endings need a longer stem ("salta" -> "salt", but "kina" stays).
        minimum = _MIN_STEM + 1 if suffix in _LONG_STEM_SUFFIXES else _MIN_STEM
        if word.endswith(suffix) and len(word) - len(suffix) >= minimum:
            return word[: -len(suffix)]
    if first and len(word) >= 4 and word.endswith("n") and word[-2] in _VOWELS:  # "sjön" -> "sjö"
        return word[:-1]
    return word


def stem(word: str) -> str:
    """Strip up to two inflection endings from a folded word ("planeterna" -> "planet"), then map synonyms."""
    if word in LEXICON:
        return LEXICON[word]
    base = word
    if len(base) >= 4 and base.endswith("s") and not base.endswith("ss"):  # genitive: "Kebnekaises"
        base = base[:-1]
    for first in (True, False):
        if base in LEXICON:
            return LEXICON[base]
        base = _strip(base, first)
    return LEXICON.get(base, base)


def _number(token: str) -> str | None:
    if token[0].isdigit():
        return token.replace(",", ".")
    if token in _CARDINALS:
        return str(_CARDINALS[token])
    if token in _ORDINALS:
        return f"#{_ORDINALS[token]}"
    return None


@dataclass(frozen=True)
class Analysis:
    """What a question asks, as the keys and guards compare it."""

    content: frozenset[str]
    numbers: frozenset[str]
    negated: bool
    question: str
    names: frozenset[str]
    heads: frozenset[str] = frozenset()
    """Head nouns of a genitive ("Stockholms län"): they pick another referent, so they are never extra."""

    def key_form(self) -> str:
        """Canonical, order-free text form for the L1 key of intents whose answer the text decides."""
        return "|".join((
            self.question,
            "neg" if self.negated else "",
            ",".join(sorted(self.numbers)),
            ",".join(sorted(self.content)),
        ))

    def to_json(self) -> dict[str, object]:
        return {"c": sorted(self.content), "n": sorted(self.numbers), "x": self.negated, "q": self.question,
                "p": sorted(self.names), "h": sorted(self.heads)}

    @classmethod
    def from_json(cls, data: object) -> Analysis:
        """Parse what `to_json` wrote; raises ValueError on anything else (corrupt or foreign data)."""
        if not isinstance(data, dict):
            raise ValueError("analysis is not an object")
        try:
            content, numbers, names = data["c"], data["n"], data["p"]
            negated, question = data["x"], data["q"]
        except KeyError as error:
            raise ValueError(f"analysis lacks {error}") from None
        heads = data.get("h", [])
        for value in (content, numbers, names, heads):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError("analysis lists must hold strings")
        if not isinstance(negated, bool) or not isinstance(question, str):
            raise ValueError("analysis flags have the wrong type")
        return cls(frozenset(content), frozenset(numbers), negated, question, frozenset(names), frozenset(heads))


def analyse(text: str) -> Analysis:
    """Content words (stemmed, lexicon-mapped, role-tagged), numbers, negation, question type and names."""
    raw_tokens = _TOKEN.findall(text)
    tokens = [fold(t) for t in raw_tokens]
    content: set[str] = set()
    numbers: set[str] = set()
    names: set[str] = set()
    heads: set[str] = set()
    genitive = False
    negated = False
    question = ""
    open_question = False  # "vad/hur/vilken" seen: a later "var" is "was"
    has_from = "fran" in tokens
    role = ""
    previous = ""
    for index, (raw, token) in enumerate(zip(raw_tokens, tokens, strict=True)):
        before_content = not content and not numbers
        last = index == len(tokens) - 1
        if token == "var" and before_content and not open_question and not question:
            question = "where"
        elif token in _WH:
            # "hur gammal var hon när hon dog": a late "när" joins clauses; a final one still asks.
            if not question and (before_content or last):
                question = _WH[token]
        elif previous in _WH_DETERMINERS and token in _WH_NOUNS:
            question = question or _WH_NOUNS[token]
        elif token in NEGATIONS:
            negated = True
        elif token in _ROLE_MARKERS:
            role = _ROLE_MARKERS[token]
        elif token == "till" and has_from:
            role = _TILL_ROLE
        elif (number := _number(token)) is not None:
            numbers.add(number)
        elif token not in STOPWORDS and (len(token) >= 2 or raw.isupper()):
            word = stem(token)
            if role:
                word = f"{role}:{word}"
                role = ""
            content.add(word)
            # A capital inside the sentence marks a name; the first word is capitalised anyway.
            if index > 0 and raw[:1].isupper():
                names.add(word)
            if genitive:
                heads.add(word)
            genitive = len(token) >= 5 and token.endswith("s") and not token.endswith("ss")
            previous = token
            continue
        if token in _OPEN_INTERROGATIVES:
            open_question = True
        genitive = False
        previous = token
    return Analysis(frozenset(content), frozenset(numbers), negated, question, frozenset(names), frozenset(heads))


def _edit_distance_one(a: str, b: str) -> bool:
    """True when one substitution, insertion or deletion turns a into b ("maraton"/"marathon")."""
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) == 1
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:i] + long_[i + 1:] == short for i in range(len(long_)))


def _related(a: str, b: str) -> bool:
    """Same word: equal, an inflection (shared stem of 5+ letters, at most 3 more letters), or a typo."""
    a, b = a.removeprefix("to:"), b.removeprefix("to:")
    if a == b:
        return True
    if ":" in a or ":" in b:
        return False
    short, long_ = (a, b) if len(a) <= len(b) else (b, a)
    if len(short) >= 5 and long_.startswith(short) and len(long_) - len(short) <= 3:
        return True
    return len(short) >= 6 and a[0] == b[0] and _edit_distance_one(a, b)


def _unmatched(words: Iterable[str], others: frozenset[str]) -> set[str]:
    return {w for w in words if not any(_related(w, o) for o in others)}


def check(query: Analysis, candidate: Analysis, *, allow_extra: int = 1) -> str | None:
    """The first guard that rejects `candidate` as an answer to `query`, or None when all pass.

    Content words may differ only by inflection, or by up to `allow_extra` extra words on one side that are
    not names; a word replaced by another ("Peru"/"Chile", "gammal"/"hög") always rejects.
    """
    if query.negated != candidate.negated:
        return GUARD_NEGATION
    if query.numbers != candidate.numbers:
        return GUARD_NUMBERS
    if query.question and candidate.question and query.question != candidate.question:
        return GUARD_QUESTION
    only_query = _unmatched(query.content, candidate.content)
    only_candidate = _unmatched(candidate.content, query.content)
    if (only_query & query.names) or (only_candidate & candidate.names):
        return GUARD_NAMES
    if (only_query & query.heads) or (only_candidate & candidate.heads):
        return GUARD_CONTENT
    if only_query and only_candidate:
        return GUARD_CONTENT
    if len(only_query) + len(only_candidate) > allow_extra:
        return GUARD_CONTENT
    return None
