"""Whether a capitalised word is an ordinary German or English word, a place or a product,
so that a capitalised word that is none of these, in a place where names stand, can be taken
for a name nobody listed ("Frau Ayşe Kaya", "an Olena Kovalenko übergeben").

The words come from pyspellchecker's German and English frequency dictionaries (MIT; built
from OpenSubtitles), read from its installed package, so it works offline from the wheel;
the places from data/places.txt (GeoNames via bench/make_place_list.py), the products from
data/products.txt. All are read once, on first use (about 0.4 s)."""

from __future__ import annotations

import gzip
import re
from functools import cache, lru_cache
from importlib import resources

from gateway.redaction.names import first_names, last_names, load_list

_KEY = re.compile(r'"([^"\\]+)":')
_FREQUENT = re.compile(r'"([^"\\]+)": ?\d{4,}')  # counted 1,000 times or more
_words: dict[str, frozenset[str]] = {}


def _dictionary(language: str) -> str:
    raw = resources.files("spellchecker").joinpath("resources", f"{language}.json.gz")
    return gzip.decompress(raw.read_bytes()).decode("utf-8")


@cache
def dictionary_words() -> frozenset[str]:
    """Lower-cased German and English words (about 490,000); read by pattern, not json.load,
    which took 1 s for the same keys."""
    english = _dictionary("en")
    _words["frequent"] = frozenset(_FREQUENT.findall(english))
    return frozenset(_KEY.findall(_dictionary("de"))) | frozenset(_KEY.findall(english))


def frequent_english(word: str) -> bool:
    """An everyday English word ("case", "bill"): the German list counts nothing (all its
    words have the same count), the English one does."""
    dictionary_words()
    return word.lower() in _words["frequent"]


@cache
def kept_words() -> frozenset[str]:
    """Places and products: capitalised, never a person's name on their own."""
    return load_list("places.txt") | load_list("products.txt")


@lru_cache(maxsize=65536)
def is_word(token: str) -> bool:
    """An ordinary word, place or product (each part of a hyphenated one: "Müller-Milch"),
    or a German compound of two words ("Landratsamt", "Wohngeldantrag")."""
    if token in kept_words():
        return True
    words = dictionary_words()
    return all(part.lower() in words or _compound(part.lower(), words)
               for part in token.split("-"))


_LINKS = ("s", "es", "n", "en", "er", "e")  # Fugenelemente: "Wohnungs|amt", "Hort|platz"


def _compound(word: str, words: frozenset[str], depth: int = 0) -> bool:
    """Whether `word` is a known word after another known word or compound, perhaps with a
    linking element ("Landrat|s|amt", "Hort|platz|vergabe"): compounds are German's
    everyday words, and no dictionary lists them all; a name rarely splits so."""
    if len(word) < 7 or depth > 1:
        return False
    for cut in range(len(word) - 3, 2, -1):
        if word[cut:] not in words:
            continue
        head = word[:cut]
        heads = [head] + [head[: -len(link)] for link in _LINKS
                          if head.endswith(link) and len(head) - len(link) >= 3]
        if len(word) - cut < 4:  # a short tail ("amt") only after a linking "s"
            heads = [h for h in heads[1:] if head.endswith("s") and len(h) >= 4]
        if any(h in words or _compound(h, words, depth + 1) for h in heads):
            return True
    return False


def name_like(token: str) -> bool:
    """A capitalised token that may be (part of) a name: a listed first name or surname, or
    no ordinary word at all."""
    return token in last_names() or token in first_names() or not is_word(token)


def unknown(token: str) -> bool:
    """No listed name and no ordinary word: the evidence of a name nobody listed."""
    return not is_word(token) and token not in last_names() and token not in first_names()
