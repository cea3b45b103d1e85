"""German, English or mixed, from frequent function words per paragraph: enough to pick the
template language and the redaction recognizers, with no model to load (a library such as
langdetect adds start-up time and misjudges short mails full of names). "mixed" is for mails
that carry both (an English question above a German forwarded mail)."""

from __future__ import annotations

import re
from typing import Literal

Language = Literal["de", "en", "mixed"]

_WORDS = re.compile(r"[a-zäöüß]+")
_PARAGRAPHS = re.compile(r"\n[ \t>]*\n")
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
        "hat",
        "kann",
        "können",
        "mein",
        "meine",
        "ihr",
        "ihre",
        "ihnen",
        "vielen",
        "grüße",
        "grüßen",
        "sehr",
        "geehrte",
        "geehrter",
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
        "wurde",
        "sind",
        "oder",
        "aber",
        "wenn",
        "wie",
        "mir",
        "mich",
        "uns",
        "im",
        "am",
        "den",
        "dem",
        "des",
        "von",
        "zu",
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
        "at",
        "from",
        "to",
        "does",
        "works",
        "were",
        "are",
        "or",
        "but",
        "if",
        "how",
        "what",
        "me",
        "us",
        "of",
        "this",
        "it",
        "be",
    ]
)
_MIN_SHARE = 0.25  # each language needs this share of the signal …
_MIN_WORDS = 8  # … and this many function words to make a mail "mixed"


def detect_language(text: str, default: Literal["de", "en"] = "de") -> Language:
    """ "de", "en" or "mixed" for `text`; `default` when it gives no clear signal."""
    german = english = 0
    german_blocks = english_blocks = 0
    for paragraph in _PARAGRAPHS.split(text[:20000].lower()):
        words = _WORDS.findall(paragraph)
        de = sum(w in _GERMAN for w in words)
        en = sum(w in _ENGLISH for w in words)
        german, english = german + de, english + en
        german_blocks += de > en and de >= 3
        english_blocks += en > de and en >= 3
    total = german + english
    if total == 0:
        return default
    if (
        german_blocks
        and english_blocks
        and min(german, english) >= _MIN_WORDS
        and min(german, english) / total >= _MIN_SHARE
    ):
        return "mixed"
    if german == english:
        return default
    return "de" if german > english else "en"


def detect(text: str, default: Literal["de", "en"] = "de") -> Literal["de", "en"]:
    """The one language to answer in: a mixed mail gets the default language."""
    verdict = detect_language(text, default)
    return default if verdict == "mixed" else verdict
