"""What the PERSON rules know about names: first names and surnames (generated from Faker's
person providers, MIT, by bench/make_name_lists.py), the words that look like names but are
ordinary words, and the forms a mail header's display name takes in running text.

A name list with a rule ("a known first name followed by a capitalised word") finds most
people in service-desk mail without a statistical model; the curated word lists (data/*.txt,
read once at import) keep "April", "Brett", "Mark", "Amt", "Weiß" or "Wolf" in ordinary prose."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources


@cache
def load_list(name: str) -> frozenset[str]:
    """A word list from gateway/redaction/data/ (one word a line, # comments), read once; through
    importlib.resources, so it is found in an installed wheel as in the checkout."""
    text = resources.files("gateway.redaction").joinpath("data", name).read_text("utf-8")
    return frozenset(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


# Latin-1, Latin Extended-A and -B (Romanian "ș", "ț") and Vietnamese (Latin Extended
# Additional) letters: "Çağlar", "Bedřich Havlíček", "Łukasz Wiśniewski", "Ionuț Popescu",
# "Nguyễn Thị Hằng"
UPPER = "A-ZÀ-ÖØ-ÞĀ-ɏḀ-ỿ"
LOWER = "a-zß-öø-ÿĀ-ɏḀ-ỿ"
# one capitalised name word: "Schmidt", "Anna-Lena", "O'Brien", "McDonald", "Müller-Lüdenscheidt"
WORD = rf"(?:Mc|Mac|O['’])?[{UPPER}][{LOWER}]+(?:-[{UPPER}][{LOWER}]+)*"
# surname particles, lower case: "von der Heide", "van Dijk", "de la Cruz"
_PARTICLE_LIST = (
    "von", "van", "vom", "zu", "zur", "de", "der", "den", "del", "della", "di", "da", "dos", "du",
    "la", "le", "ter", "ten", "al",
)
PARTICLES = rf"(?:(?:{'|'.join(_PARTICLE_LIST)})[ \t]+){{1,3}}"
_WORD_RE = re.compile(rf"{WORD}")
_INITIAL = re.compile(rf"[{UPPER}]\.")
_PARTICLE_WORDS = frozenset(_PARTICLE_LIST)

# Titles written before a name; never part of the name itself.
TITLES = load_list("titles.txt")

# Words in a display name or signature line that show it names an office, not a person.
ORG_WORDS = load_list("org_words.txt")

# Capitalised words that are never part of a name: pronouns (German capitalises the polite
# "Sie", "Ihnen"), greetings, function words at the start of a sentence.
FUNCTION_WORDS = load_list("function_words.txt")
# Capitalised words that rarely start a name but may well be a surname after a first name
# ("Willi Zimmer", "April Jones"): German nouns, months, weekdays, office words.
NOUNS = load_list("nouns.txt")
NOT_NAME = FUNCTION_WORDS | NOUNS
MONTHS = load_list("months.txt")

# First names that are also everyday words, months, places or adjectives. Alone, or before a
# word that is not a known surname, they are left alone: "im August Urlaub", "German Federal
# Office", "Roman lesen", "Grace period", "Bill payment", "Mark Twain" (yes, that one too).
AMBIGUOUS_FIRST = load_list("ambiguous_first_names.txt")

# Ordinary words that are also surnames; as a lone surname variant of a display name they
# are redacted only when they do not follow an article or preposition ("im Sommer", "der Wolf").
COMMON_WORDS = load_list("common_words.txt")

# Words before "Frau"/"Herr" that make it an ordinary noun ("eine Frau", "der Herr").
DETERMINERS = load_list("determiners.txt")
# Words before a lone surname that make it an ordinary word ("im Sommer", "der Wolf").
ARTICLES = DETERMINERS | frozenset(["im", "am", "vom", "zum", "zur", "ins", "ans", "beim", "in"])


@cache
def first_names() -> frozenset[str]:
    """First names from the generated list (de_DE, de_AT, de_CH, en_US, en_GB)."""
    return load_list("first_names.txt")


@cache
def last_names() -> frozenset[str]:
    """Surnames from the generated list (de_DE, de_AT, de_CH, en_US, en_GB)."""
    return load_list("last_names.txt")


def is_first_name(word: str) -> bool:
    """True for a first name (or each part of a hyphenated one: "Anna-Lena", "Hans-Jürgen")."""
    names = first_names()
    return word in names or ("-" in word and all(p in names for p in word.split("-")))


def is_clear_first_name(word: str) -> bool:
    """A first name that is not also an everyday word."""
    return word not in AMBIGUOUS_FIRST and word not in NOT_NAME and is_first_name(word)


@dataclass(frozen=True, slots=True)
class PersonName:
    """A person's name split into given names and surname (either may be empty, not both)."""

    given: tuple[str, ...]
    surname: str

    @property
    def full(self) -> str:
        return " ".join((*self.given, self.surname)).strip()

    def variants(self) -> list[str]:
        """The forms this name takes in text, longest first: "Anna-Lena Schmidt",
        "Schmidt, Anna-Lena", "A. Schmidt", "Anna-Lena", "Schmidt"."""
        found = [self.full]
        if self.given and self.surname:
            found += [
                f"{self.surname}, {' '.join(self.given)}",
                f"{self.given[0]} {self.surname}",
                f"{self.given[0][0]}. {self.surname}",
                self.surname,
                self.given[0],
            ]
            last = self.surname.split()[-1]
            if last != self.surname:  # "von der Heide" → also "Heide"
                found.append(last)
        unique = list(dict.fromkeys(v for v in found if v))
        return sorted(unique, key=len, reverse=True)


_BRACKETS = re.compile(r"\([^)]*\)|\[[^\]]*\]|<[^>]*>|\{[^}]*\}")
_ORG_SUFFIX = re.compile(r"\s+[-–|/]\s+.*$")
_SPACES = re.compile(r"\s+")


def parse_display_name(display: str) -> PersonName | None:
    """The person behind a display name ("Schmidt, Anna-Lena (BA Mitte)" → Anna-Lena Schmidt),
    or None when it names an office, a system or an address rather than a person."""
    text = _BRACKETS.sub(" ", display).replace('"', " ").replace("'", "'")
    text = _ORG_SUFFIX.sub("", text.strip())
    text = _SPACES.sub(" ", text).strip(" ,;:")
    if not text or "@" in text or any(ch.isdigit() for ch in text):
        return None
    if text.count(",") == 1:  # "Schmidt, Anna-Lena"
        surname, given = (part.strip() for part in text.split(","))
        text = f"{given} {surname}"
    elif "," in text:
        return None
    words = [w for w in text.split(" ") if w.lower() not in TITLES]
    if text.isupper() and len(text) > 3:
        words = [w.capitalize() for w in words]
    return _split_name(words)


def _split_name(words: list[str]) -> PersonName | None:
    if not words or len(words) > 5:
        return None
    for i, word in enumerate(words):
        if word.lower() in ORG_WORDS or word in FUNCTION_WORDS:  # "The Hiring Engine"
            return None
        initial = 0 < i < len(words) - 1 and _INITIAL.fullmatch(word)  # "John S. Greene"
        if word not in _PARTICLE_WORDS and not initial and not _WORD_RE.fullmatch(word):
            return None
    if len(words) == 1:
        word = words[0]
        if is_first_name(word):
            return PersonName((word,), "")
        return PersonName((), word) if word in last_names() else None
    cut = next((i for i, w in enumerate(words) if w in _PARTICLE_WORDS), len(words) - 1)
    if cut == 0:
        return None
    return PersonName(tuple(words[:cut]), " ".join(words[cut:]))
