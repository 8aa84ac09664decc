"""Swedish gazetteer: canonical city names with their aliases, and common first names."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

CITY_ALIASES: Final[Mapping[str, tuple[str, ...]]] = {
    "Stockholm": ("stockholm", "sthlm", "sthml", "stockhol"),
    "Göteborg": ("göteborg", "gbg", "gothenburg", "götet", "göteborj"),
    "Malmö": ("malmö",),
    "Uppsala": ("uppsala",),
    "Norrköping": ("norrköping",),
    "Linköping": ("linköping",),
    "Västerås": ("västerås",),
    "Örebro": ("örebro",),
    "Jönköping": ("jönköping",),
    "Umeå": ("umeå",),
    "Luleå": ("luleå",),
    "Gävle": ("gävle",),
    "Sundsvall": ("sundsvall",),
    "Kiruna": ("kiruna",),
    "Visby": ("visby",),
    "Helsingborg": ("helsingborg",),
    "Lund": ("lund",),
    "Karlstad": ("karlstad",),
    "Växjö": ("växjö",),
    "Halmstad": ("halmstad",),
    "Östersund": ("östersund",),
    "Borås": ("borås",),
    "Kalmar": ("kalmar",),
    "Falun": ("falun",),
    "Skellefteå": ("skellefteå",),
    "Trollhättan": ("trollhättan",),
    "Eskilstuna": ("eskilstuna",),
    "Södertälje": ("södertälje",),
    "Kristianstad": ("kristianstad",),
    "Karlskrona": ("karlskrona",),
    "Nyköping": ("nyköping",),
    "Varberg": ("varberg",),
    "Örnsköldsvik": ("örnsköldsvik", "övik", "ö-vik"),
    "Piteå": ("piteå",),
    "Ystad": ("ystad",),
    "Uddevalla": ("uddevalla",),
    "Norrtälje": ("norrtälje",),
    "Haparanda": ("haparanda",),
    "Oslo": ("oslo",),
    "Köpenhamn": ("köpenhamn", "københavn", "copenhagen", "kbh"),
    "Helsingfors": ("helsingfors", "helsinki"),
    "London": ("london",),
    "Paris": ("paris",),
    "Berlin": ("berlin",),
    "Amsterdam": ("amsterdam",),
    "Madrid": ("madrid",),
    "Wien": ("wien",),
    "Tallinn": ("tallinn",),
    "New York": ("new york",),
}
"""Canonical spelling -> lowercase aliases; matching also accepts each alias without diacritics."""

DIACRITIC_ONLY_CITY_ALIASES: Final[Mapping[str, str]] = {"gött": "Göteborg"}
"""Aliases whose folded spelling is a common word ("gött" folds to "gott", good): matched only as written,
after a preposition ("vädret i gött")."""

FIRST_NAMES: Final[frozenset[str]] = frozenset(
    """
    adam adrian agnes ahmed aisha alexander alexandra ali alicia alma alva amanda amir ana andreas anders
    anette angelica anita ann anna annelie annika anton arvid astrid axel barbro benjamin bengt berit bertil birgitta
    björn bo britt camilla carina carl carlos caroline cecilia charlotte christer christina christoffer clara cristina
    dag dan daniel david ebba edvard edvin egon elias elin elina elis elisabeth ella ellen elliot elsa emelie emil
    emilia emma erik erika ester eva evelina fanny fatima felicia felix filip frida fredrik gabriel gunilla gunnar
    gustav göran hampus hanna hannes hans hassan hedvig helen helena henrik hugo ibrahim ida ines inga inger ingrid
    isabella isak jakob jan jenny jens jesper jessica joakim johan johanna johannes john jonas jonathan josefin
    josefine julia karin karl kent kerstin kevin khalid kim klara kristina kristoffer lars laura leila lena lennart
    leo leon liam lina linda linn linnea lisa liv louise lovisa ludvig lukas magnus maja malin marcus margareta maria
    marie marika markus martin mats mattias max maximilian meja melvin mia mikael mila mohammed mohammad moa
    nadia nathalie nicklas nils nina noah nora olle olivia olof omar oscar oskar patrik per peter petra philip
    rebecka robert robin rolf rut sabina saga sam samuel sandra sara selma simon siv sofia sofie stefan sten stig
    susanne svante sven thomas tilda tim tobias tomas tor torbjörn ulf ulla ulrika valter vera victor viktor
    viktoria vilgot vincent wilhelm william yasmin yousef yusuf zainab åsa åke östen
    """.split()
)
"""Common first names in Sweden, lowercase: evidence of a person even without a cue word or capital letter."""

AMBIGUOUS_FIRST_NAMES: Final[frozenset[str]] = frozenset(
    "alma bo dag dan ester hans inga karl kim klara lina linda liv mats max meja mila per rut saga sam siv sten "
    "stig sven tim tor vera".split()
)
"""First names that are also everyday Swedish words ("inga", "klara", "per"): a person only right after a cue
word ("med", "till", "mejla"), and then in lowercase only when listed in LOWERCASE_CUE_NAMES."""

LOWERCASE_CUE_NAMES: Final[frozenset[str]] = frozenset({"per", "kim", "mats", "sam", "vera", "linda"})
"""Ambiguous names that are rarely the everyday word right after a cue ("mejla per", but not "med max")."""
