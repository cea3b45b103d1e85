"""Whether a capitalised word is an ordinary German or English word, a place or a product,
so that a capitalised word that is none of these, in a place where names stand, can be taken
for a name nobody listed ("Frau Ayşe Kaya", "an Olena Kovalenko übergeben").

The words come from pyspellchecker's German and English frequency dictionaries (MIT; built
from OpenSubtitles), read from its installed package, so it works offline from the wheel;
the places from data/places.txt (GeoNames via bench/make_place_list.py), the products from
data/products.txt. All are read once, on first use (about 0.5 s). The 490,000 dictionary words
are kept as a Bloom filter of 8 MiB, not as a set of strings (65 MiB in every process that
redacts); the price is that about one unknown word in 90,000 passes for a word."""

from __future__ import annotations

import contextlib
import ctypes
import gzip
import re
from collections.abc import Iterator
from functools import cache, lru_cache
from importlib import resources
from zlib import crc32

import numpy as np

from gateway.redaction.names import first_names, last_names, load_list

_KEY = re.compile(r'"([^"\\]+)":')
_FREQUENT = re.compile(r'"([^"\\]+)": ?\d{4,}')  # counted 1,000 times or more
_words: dict[str, frozenset[str]] = {}
_BITS = 1 << 26  # 8 MiB of bits for ~490,000 words, three bits each: 1 false word in 90,000
_SHIFTS = (0, 19, 38)  # three 26-bit windows of the 64-bit hash


def _hash(word: str) -> int:
    """A 64-bit hash that is the same in every process (Python's own string hash is salted
    per process: which rare words passed for words would change from run to run)."""
    data = word.encode()
    return crc32(data) | crc32(data, 0x9E3779B9) << 32


class WordFilter:
    """Set membership of many words in little memory (a Bloom filter)."""

    def __init__(self, words: Iterator[str]) -> None:
        hashes = np.fromiter((_hash(w) for w in words), dtype=np.uint64)
        bits = np.zeros(_BITS // 8, dtype=np.uint8)
        for shift in _SHIFTS:
            index = (hashes >> np.uint64(shift)) & np.uint64(_BITS - 1)
            np.bitwise_or.at(bits, index >> np.uint64(3),
                             np.left_shift(1, index & np.uint64(7)).astype(np.uint8))
        self._bits = bits.tobytes()
        self.size = len(hashes)

    def __contains__(self, word: object) -> bool:
        if not isinstance(word, str):
            return False
        value = _hash(word)
        bits = self._bits
        for shift in _SHIFTS:
            i = (value >> shift) & (_BITS - 1)
            if not bits[i >> 3] >> (i & 7) & 1:
                return False
        return True


def _dictionary(language: str) -> str:
    raw = resources.files("spellchecker").joinpath("resources", f"{language}.json.gz")
    return gzip.decompress(raw.read_bytes()).decode("utf-8")


@cache
def dictionary_words() -> WordFilter:
    """Lower-cased German and English words (about 490,000); read by pattern, not json.load,
    which took 1 s for the same keys, one word at a time, so no list of them all is built."""
    english = _dictionary("en")
    _words["frequent"] = frozenset(_FREQUENT.findall(english))

    def keys() -> Iterator[str]:
        for text in (_dictionary("de"), english):
            for match in _KEY.finditer(text):
                yield match.group(1)

    found = WordFilter(keys())
    _give_back_memory()
    return found


def _give_back_memory() -> None:
    """Hand the heap the dictionaries' text used back to the system: glibc keeps freed large
    blocks after its mmap threshold grew, and 24 MiB of them stayed in every process."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to do
        ctypes.CDLL("libc.so.6").malloc_trim(0)


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


def _compound(word: str, words: WordFilter, depth: int = 0) -> bool:
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
