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
from functools import cache
from importlib import resources

from gateway.redaction.names import first_names, last_names, load_list

_KEY = re.compile(r'"([^"\\]+)":')


@cache
def dictionary_words() -> frozenset[str]:
    """Lower-cased German and English words (about 490,000); read by pattern, not json.load,
    which took 1 s for the same keys."""
    found: set[str] = set()
    for language in ("de", "en"):
        raw = resources.files("spellchecker").joinpath("resources", f"{language}.json.gz")
        found.update(_KEY.findall(gzip.decompress(raw.read_bytes()).decode("utf-8")))
    return frozenset(found)


@cache
def kept_words() -> frozenset[str]:
    """Places and products: capitalised, never a person's name on their own."""
    return load_list("places.txt") | load_list("products.txt")


def is_word(token: str) -> bool:
    """An ordinary word, place or product (each part of a hyphenated one: "Müller-Milch")."""
    if token in kept_words():
        return True
    words = dictionary_words()
    return all(part.lower() in words for part in token.split("-"))


def name_like(token: str) -> bool:
    """A capitalised token that may be (part of) a name: a listed first name or surname, or
    no ordinary word at all."""
    return token in last_names() or token in first_names() or not is_word(token)


def unknown(token: str) -> bool:
    """No listed name and no ordinary word: the evidence of a name nobody listed."""
    return not is_word(token) and token not in last_names() and token not in first_names()
