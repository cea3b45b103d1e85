"""Guess whether a text is German or English from frequent function words: enough to pick the
template language, with no model to load (a library such as langdetect would add ~50 ms start-up
and misjudges short mails with many names)."""

from __future__ import annotations

import re

_WORDS = re.compile(r"[a-zäöüß]+")
_GERMAN = frozenset(
    [
        "und",
        "der",
        "die",
        "das",
        "ist",
        "nicht",
        "ich",
        "sie",
        "wir",
        "ein",
        "eine",
        "einen",
        "mit",
        "für",
        "auf",
        "bitte",
        "danke",
        "dass",
        "wird",
        "werden",
        "haben",
        "habe",
        "kann",
        "können",
        "mein",
        "meine",
        "ihr",
        "ihre",
        "vielen",
        "grüße",
        "sehr",
        "geehrte",
        "hallo",
        "leider",
        "noch",
        "auch",
        "bei",
        "vom",
        "zum",
        "zur",
        "geht",
        "funktioniert",
    ]
)
_ENGLISH = frozenset(
    [
        "and",
        "the",
        "is",
        "not",
        "you",
        "we",
        "a",
        "an",
        "with",
        "for",
        "on",
        "please",
        "thanks",
        "thank",
        "that",
        "will",
        "have",
        "has",
        "can",
        "my",
        "your",
        "our",
        "regards",
        "dear",
        "hello",
        "hi",
        "unfortunately",
        "still",
        "also",
        "at",
        "from",
        "to",
        "does",
        "works",
    ]
)


def detect(text: str, default: str = "de") -> str:
    """'de' or 'en' for `text`; `default` when the text gives no clear signal."""
    german = english = 0
    for word in _WORDS.findall(text[:4000].lower()):
        german += word in _GERMAN
        english += word in _ENGLISH
    if german == english:
        return default
    return "de" if german > english else "en"
