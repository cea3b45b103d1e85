"""Typed placeholders that keep a redacted ticket readable ("[NAME-1] hat angerufen;
[NAME-1] braucht …"), and the numbering that makes one person the same [NAME-n] in every
article of a ticket while storing only keyed hashes, never the names.

Placeholder words are German in German and English text alike: the agents reading the
tickets work in German, and one fixed vocabulary keeps searches and filters simple."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from typing import Protocol

PLACEHOLDERS: Mapping[str, str] = {
    "PERSON": "NAME",
    "DATE_OF_BIRTH": "GEBURTSDATUM",
    "PHONE_NUMBER": "TELEFON",
    "EMAIL_ADDRESS": "E-MAIL",
    "IBAN_CODE": "IBAN",
    "DE_TAX_ID": "STEUER-ID",
    "ID_DOCUMENT": "AUSWEISNUMMER",
    "DE_HEALTH_INSURANCE": "KVNR",
    "STREET_ADDRESS": "ADRESSE",
}
NUMBERED = frozenset({"PERSON"})


def placeholder(entity: str, number: int | None = None) -> str:
    """ "[TELEFON]", or "[NAME-3]" for numbered entities."""
    word = PLACEHOLDERS[entity]
    return f"[{word}-{number}]" if number is not None else f"[{word}]"


class Pseudonyms(Protocol):
    """Numbers values within one ticket: the same person gets the same number every time."""

    def number(self, entity: str, value: str) -> int: ...


_SPACE = re.compile(r"\s+")


def normalise(value: str) -> str:
    """Case and spacing do not make another person: "Anna  SCHMIDT" == "anna schmidt"."""
    return _SPACE.sub(" ", value.replace("’", "'")).strip(" .,").casefold()


class KeyedPseudonyms:
    """In-memory `Pseudonyms` keyed by HMAC-SHA256 of the normalised value.

    `state` (keyed hash → number) is all there is to persist per ticket; load it back with
    `KeyedPseudonyms(key, state)`. A full name also registers its surname and first given
    name as aliases, so a later "Frau Schmidt" or "Anna-Lena" gets the number that
    "Anna-Lena Schmidt" got; an alias never moves to a second person of the same surname."""

    def __init__(self, key: bytes, state: Mapping[str, int] | None = None,
                 previous: Sequence[bytes] = ()) -> None:
        if len(key) < 16:
            raise ValueError("pseudonym key must be at least 16 bytes")
        self._key = key
        self._previous = tuple(previous)  # keys of former secrets (a rotation): looked up only
        self.state: dict[str, int] = dict(state or {})

    def number(self, entity: str, value: str) -> int:
        words = normalise(value).split(" ")
        if self._previous:
            self._carry(entity, "name", " ".join(words))
            for word in {words[0], words[-1]}:
                self._carry(entity, "part", word)
        if len(words) == 1:
            return self._single(entity, words[0])
        name_key = self._hash(entity, "name", " ".join(words))
        if name_key in self.state:
            return self.state[name_key]
        alias_keys = [self._hash(entity, "part", words[-1]), self._hash(entity, "part", words[0])]
        number = next(
            (
                self.state[k]
                for k in alias_keys
                if k in self.state and not self._has_full_name(entity, self.state[k])
            ),
            None,
        )
        if number is None:
            number = self._next(entity)
        self.state[name_key] = number
        for key in alias_keys:
            self.state.setdefault(key, number)
        return number

    def _single(self, entity: str, word: str) -> int:
        key = self._hash(entity, "part", word)
        if key not in self.state:
            self.state[key] = self._next(entity)
        return self.state[key]

    def _has_full_name(self, entity: str, number: int) -> bool:
        prefix = f"{entity}:name:"
        return any(k.startswith(prefix) and n == number for k, n in self.state.items())

    def _next(self, entity: str) -> int:
        prefix = f"{entity}:"
        return 1 + max((n for k, n in self.state.items() if k.startswith(prefix)), default=0)

    def _carry(self, entity: str, kind: str, value: str) -> None:
        """A value numbered under a former secret keeps its number: its entry is copied to the
        current key's hash (the old one stays, harmless)."""
        current = self._hash(entity, kind, value)
        if current in self.state:
            return
        for key in self._previous:
            old = self._hash(entity, kind, value, key)
            if old in self.state:
                self.state[current] = self.state[old]
                return

    def _hash(self, entity: str, kind: str, value: str, key: bytes | None = None) -> str:
        digest = hmac.new(key or self._key, f"{entity}\0{value}".encode(), hashlib.sha256)
        return f"{entity}:{kind}:{digest.hexdigest()}"
