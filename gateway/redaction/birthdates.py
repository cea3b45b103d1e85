"""Find birth dates, and only birth dates: a date counts when a birth keyword leads to it
("geb. 12.03.1985", "geboren am 12. März 1985", "Geburtsdatum: …", "*12.03.1985",
"DOB 1985-03-12", "date of birth …", "born on March 12, 1985"), and a birth year alone after
"Jg.", "Jahrgang", "geboren" or "born in" ("geboren 1975 in Kiew"). Deadlines, appointments and
"Gebühr vom 03.11.2025" stay: a ticket whose dates are all redacted is useless."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date

_MONTHS = (
    r"Januar|Jan\.?|Jänner|Februar|Feb\.?|März|Maerz|Mär\.?|Mrz\.?|April|Apr\.?|Mai|Juni|Jun\.?"
    r"|Juli|Jul\.?|August|Aug\.?|September|Sept?\.?|Oktober|Okt\.?|November|Nov\.?|Dezember"
    r"|Dez\.?|January|February|March|Mar\.?|May|June|July|October|Oct\.?|December|Dec\.?"
)
_DAY = r"(?:0?[1-9]|[12]\d|3[01])"
_MONTH = r"(?:0?[1-9]|1[0-2])"
_YEAR = r"(?:19|20)\d{2}"
_DATE = (
    rf"(?:{_DAY}[ \t]?[./-][ \t]?{_MONTH}[ \t]?[./-][ \t]?(?:{_YEAR}|\d{{2}})(?!\d)"  # 12.03.1985
    rf"|{_MONTH}/{_DAY}/{_YEAR}(?!\d)"  # 03/12/1985
    rf"|{_YEAR}[-/.]{_MONTH}[-/.]{_DAY}(?!\d)"  # 1985-03-12
    rf"|{_DAY}(?:\.|st|nd|rd|th)?[ \t]+(?:of[ \t]+)?(?:{_MONTHS})[ \t]*,?[ \t]*{_YEAR}(?!\d)"
    rf"|(?:{_MONTHS})[ \t]+{_DAY}(?:st|nd|rd|th)?,?[ \t]+{_YEAR}(?!\d))"  # March 12, 1985
)
_TRIGGER = (
    r"(?<![\w-])(?:geb\.|geboren|Geburtsdatum|Geburtstag|Geb\.[ \t]?-?[ \t]?Datum|Geb\.-?Dat\."
    r"|Geburtsdat\.|Geburts-[ \t]?datum|DOB|D\.O\.B\.?|date[ \t]+of[ \t]+birth|birth[ \t]?date"
    r"|birthday|born)(?![a-zäöüß])"
)
# words that start another statement: "geboren und ziehe am 12.03.2025 um"
_NEW_CLAUSE = (
    "und|and|aber|but|bis|ab|seit|until|since|from|vom|zum|nach|after|before|vor|termin|frist"
)
# Between keyword and date: a few small words ("am", "on the", "ist der") or any short label
# that ends in a colon ("Geburtsdatum der Antragstellerin:"), never another number.
_FILLER = (
    r"[ \t]*(?:(?:[:|(\-–]|am|den|on|the|is|ist|was|war|lautet)[ \t]*){0,4}"
    r"(?:[^\d\n.!?;]{0,40}?:[ \t]*|(?:(?!(?:" + _NEW_CLAUSE + r")\b)[^\W\d_]+[ \t]+){1,3})?"
    r"\n?[ \t]*"
)
_KEYWORD_DATE = re.compile(rf"{_TRIGGER}{_FILLER}(?P<date>{_DATE})", re.IGNORECASE)
# "am 3. Mai 2019 geboren", "was born 12 March 1985" is covered by the keyword-first rule
_DATE_THEN_BORN = re.compile(
    rf"(?P<date>{_DATE})[ \t]+(?:in[ \t]+[A-ZÄÖÜ][\wäöüß-]+[ \t]+)?geboren(?![a-zäöüß])",
    re.IGNORECASE,
)
_STAR_DATE = re.compile(rf"\*[ \t]?(?P<date>{_DATE})", re.IGNORECASE)
# A birth year alone: "Jg. 1961", "Jahrgang 1958", "geboren 1975 in Kiew", "born in 1990".
_BIRTH_YEAR = re.compile(
    r"(?<![\w-])(?:Jg\.|Jahrgang|geboren(?:[ \t]+im[ \t]+Jahr(?:e)?)?|born(?:[ \t]+in)?)[ \t]+"
    r"(?P<date>(?:19|20)\d{2})(?![\d./-]?\d)",
    re.IGNORECASE,
)
_YEAR_WORDS = ("jg.", "jahrgang", "geboren", "born")
_YEAR_IN = re.compile(r"(?:19|20)\d{2}|\d{2}$")


_TRIGGER_STARTS = ("geb", "dob", "d.o.b", "date", "birth", "born")
"""How every _TRIGGER spelling begins, in lower case. The keyword pattern is tried only where
one of them stands: searching the whole text with it, position by position, was an eighth of
PREPARE's time (bench/e2e.py corpus, cProfile), finding these with str.find costs microseconds."""


_FOLDED = "\u0131\u017f\u212a"  # ı, ſ, K (Kelvin): equal to i, s, k under re.IGNORECASE


def _trigger_starts(text: str, lowered: str) -> list[int] | None:
    """Where a keyword could begin, in order. None, and the pattern searches the whole text,
    when lower-casing changed the text's length (a few letters such as "İ" become two, so
    positions in `lowered` are not positions in `text`), or when the text holds one of the
    letters that the pattern's IGNORECASE takes for an ASCII one ("bırth" with a dotless ı)."""
    if len(lowered) != len(text) or (not text.isascii() and any(c in text for c in _FOLDED)):
        return None
    found: set[int] = set()
    for start in _TRIGGER_STARTS:
        at = lowered.find(start)
        while at >= 0:
            found.add(at)
            at = lowered.find(start, at + 1)
    return sorted(found)


def _keyword_dates(text: str, lowered: str) -> Iterator[re.Match[str]]:
    """The matches of _KEYWORD_DATE, as `finditer` gives them (leftmost, not overlapping)."""
    starts = _trigger_starts(text, lowered)
    if starts is None:
        yield from _KEYWORD_DATE.finditer(text)
        return
    end = 0
    for at in starts:
        if at < end:
            continue
        match = _KEYWORD_DATE.match(text, at)  # the lookbehind still sees the text before
        if match is not None:
            yield match
            end = match.end()


def _lines_holding(text: str, lowered: str, word: str) -> Iterator[tuple[int, int]]:
    """(start, end) of each line of `text` that holds `word` (lower case), in order. A match of
    _DATE_THEN_BORN never spans lines, so searching these lines finds what searching the whole
    text finds; the date-first pattern, tried at every position of a long text, was a tenth of
    PREPARE's time (bench/e2e.py corpus, cProfile)."""
    if len(lowered) != len(text):  # positions in `lowered` are not positions in `text`
        if word in lowered:
            yield 0, len(text)
        return
    at = lowered.find(word)
    while at >= 0:
        start = text.rfind("\n", 0, at) + 1
        end = text.find("\n", at)
        end = len(text) if end < 0 else end
        yield start, end
        at = lowered.find(word, end)


def find_birth_dates(text: str, *, today: date | None = None) -> Iterator[tuple[int, int]]:
    """Character spans of the birth dates in `text` (the date only, not the keyword)."""
    this_year = (today or date.today()).year
    lowered = text.lower()
    for match in _keyword_dates(text, lowered):
        if _plausible(match.group("date"), this_year):
            yield match.start("date"), match.end("date")
    for start, end in _lines_holding(text, lowered, "geboren"):
        for match in _DATE_THEN_BORN.finditer(text, start, end):
            if _plausible(match.group("date"), this_year):
                yield match.start("date"), match.end("date")
    if any(word in lowered for word in _YEAR_WORDS):
        for match in _BIRTH_YEAR.finditer(text):
            if _plausible(match.group("date"), this_year):
                yield match.start("date"), match.end("date")
    if "*" not in text:
        return
    for match in _STAR_DATE.finditer(text):
        line_start = text.rfind("\n", 0, match.start()) + 1
        before = text[line_start : match.start()]
        # "Anna Schmidt *12.03.1985", "(*12.03.1985)"; not a list bullet "* 12.03.2025: …"
        # nor Markdown emphasis "*Date:* 30. December 2022"
        if (
            any(ch.isalpha() for ch in before)
            and (before.endswith((" ", "(")))
            and (before.rstrip(" ")[-1:].isalpha() or before.rstrip(" ")[-1:] in ",(")
            and _plausible(match.group("date"), this_year)
        ):
            yield match.start("date"), match.end("date")


def _plausible(value: str, this_year: int) -> bool:
    """A birth date lies in the past; two-digit years always pass."""
    found = _YEAR_IN.findall(value.strip())
    if not found:
        return False
    year = found[0] if len(found[0]) == 4 else found[-1]
    return len(year) == 2 or 1900 <= int(year) <= this_year
