"""The redaction short cuts PREPARE takes for speed find what the long way finds: phone
candidates that cannot be numbers are skipped before libphonenumber parses them, a text is
tokenised only when a context word could matter, a reply's new text is analysed as part of
the full body, the birth-date pattern is tried only where a keyword begins, and a mail's header
names are found without compiling a pattern for them. (Speed itself is measured by
bench/e2e.py, not here.)"""

from __future__ import annotations

import re
from typing import Any

import phonenumbers
import pytest
from phonenumbers import Leniency

from gateway.config import Settings
from gateway.pipeline import redact
from gateway.pipeline.context import IncomingMail, Preparing
from gateway.pipeline.parse import parse_mail
from gateway.redaction import (
    Analysis,
    Finding,
    Redactor,
    birthdates,
    identifiers,
    part_of,
    persons,
)
from gateway.redaction.engine import _LazyArtifacts
from gateway.redaction.names import PersonName, parse_display_name
from tests.helpers import make_mail

PHONE_TEXTS = [
    "Tel. 0351 564-2871, Fax 0351/564-2872, mobil +49 151 45193051 (ab 19.05.2026 09:15).",
    "Ticket LDS-2025-000123, Raum 12, PLZ 04109 Leipzig, Durchwahl -2871, Kosten 1.299,00 EUR",
    "Call me on +44 20 7946 0958 or 030 12345678 ext. 12; am 01.02.2025 bin ich weg.",
    "Geb. 10.07.1977, IBAN DE89 3704 0044 0532 0130 00, Kennung 01640, Pager 01641",
    "Zahlen: 1, 22, 333, 4444, 55555, 666666, 7777777, 88888888, 999999999",
]


@pytest.fixture(scope="module")
def redactor() -> Redactor:
    return Redactor(entities=["PERSON", "PHONE_NUMBER", "ID_DOCUMENT", "DE_HEALTH_INSURANCE"])


def _plain_phones(text: str) -> list[tuple[int, int]]:
    return [
        (m.start, m.end)
        for m in phonenumbers.PhoneNumberMatcher(text, "DE", leniency=Leniency.VALID)
        if not identifiers._DATE_LIKE.match(m.raw_string)
    ]


def test_the_phone_candidate_filter_is_in_use() -> None:
    # A libphonenumber release without the hook falls back to the plain (slow) matcher:
    # this test says so instead of the bench finding it out.
    assert identifiers._MATCHER is identifiers._CandidateFilter


@pytest.mark.parametrize("text", PHONE_TEXTS)
def test_filtered_phone_matcher_finds_what_the_plain_one_finds(text: str) -> None:
    assert list(identifiers.find_phones(text)) == _plain_phones(text)


def test_text_without_context_questions_is_never_tokenised(
    redactor: Redactor, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[str] = []
    original = _LazyArtifacts._artifacts

    def counting(self: _LazyArtifacts) -> Any:
        if self._made is None:
            made.append(self._text)
        return original(self)

    monkeypatch.setattr(_LazyArtifacts, "_artifacts", counting)
    found = redactor.analyze("Bitte rufen Sie Frau Mareike Sommerfeld an.", language="de")
    assert [f.entity for f in found] == ["PERSON"] and made == []
    # an ID card number scores below the threshold without its context word: tokenised
    text = "Ausweisnummer L01X00T44."
    found = redactor.analyze(text, language="de")
    assert [f.entity for f in found] == ["ID_DOCUMENT"] and made == [text]


def test_part_of_takes_findings_inside_and_cuts_those_across_the_edge() -> None:
    whole = Analysis("Hallo Anna Schmidt, Tel. 0351 5642871", [
        Finding("PERSON", 6, 18), Finding("PHONE_NUMBER", 25, 37)], [])
    part = part_of(whole, "Anna Schmidt, Tel. 0351")
    assert part is not None
    assert [(f.entity, part.text[f.start:f.end]) for f in part.findings] == [
        ("PERSON", "Anna Schmidt"), ("PHONE_NUMBER", "0351")]
    assert part_of(whole, "nicht darin") is None


def test_a_reply_text_inside_the_full_body_is_analysed_once(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, redactor: Redactor
) -> None:
    body = ("Guten Tag, Frau Mareike Sommerfeld erreicht man unter 0351 5642871.\n\n"
            "-- \nJens Wagner\nSachgebiet Personal\n")
    reply = body.split("\n\n-- ")[0]
    calls: list[str] = []
    original = redactor.prepare

    def counting(text: str, **kwargs: Any) -> Analysis:
        calls.append(text)
        return original(text, **kwargs)

    monkeypatch.setattr(redactor, "prepare", counting)
    mail = parse_mail(make_mail(sender="jens@example.org", subject="Zugang", body=body)
                      .as_bytes(), domain="example.org")
    body = mail.text
    reply = body.split("\n\n-- ")[0]
    state = Preparing(incoming=IncomingMail(id=1, source="smtp", raw=b"", received_at=None),
                      settings=settings, redactor=redactor, mail=mail,
                      texts={"full": body, "reply": reply})
    redact.prepare(state)
    assert sorted(calls) == sorted(["Zugang", body])
    assert state.analysis is not None
    found = state.analysis.bodies["reply"]
    assert found.text == reply
    assert {reply[f.start:f.end] for f in found.findings} == {"Mareike Sommerfeld",
                                                             "0351 5642871"}


# -- birth-date keywords: tried only where a keyword can begin --------------------------------

BIRTH_TEXTS = [
    "Frau Weber, geb. 12.03.1985, und Herr Roth (geboren am 3. Mai 1990) haben angerufen.",
    "Geburtsdatum: 01.02.1975; Geb.-Datum 02.03.1976; Geb.Dat. 04.05.1977; DOB 1985-03-12",
    "date of birth: March 12, 1985. D.O.B. 12/03/1985. birthday 4th of July 1976. born 1980",
    "Die Gebühr vom 03.11.2025 wurde gegeben; angegeben am 04.11.2025, Ergebnis 05.11.2025.",
    "geb. 12.03.1985 geb. 13.03.1986 gebgeb. 14.03.1987 -geb. 15.03.1988 xgeb. 16.03.1989",
    "İstanbul, geb. 12.03.1985 (the dotted İ makes lower() longer)",
    "bırth date 12.03.1985 (a dotless ı that IGNORECASE reads as i)",
    "Anna Schmidt *12.03.1985, am 3. Mai 2019 geboren; birth date\n12.03.1985",
    "am 12.03.1985 in Hoyerswerda geboren\n112.03.1985 geboren, 3. Mai 1990 GEBOREN\ngeboren",
    "İnci wurde am 12.03.1985 geboren (the dotted İ again)",
    "",
]


@pytest.mark.parametrize("text", BIRTH_TEXTS)
def test_birth_keywords_found_where_the_whole_text_search_finds_them(text: str) -> None:
    """The keyword pattern tried at the places a keyword can begin gives what `finditer` over
    the whole text gives (leftmost, not overlapping), fallbacks included."""
    expected = [m.span() for m in birthdates._KEYWORD_DATE.finditer(text)]
    assert [m.span() for m in birthdates._keyword_dates(text, text.lower())] == expected


@pytest.mark.parametrize("text", BIRTH_TEXTS)
def test_dates_before_geboren_found_where_the_whole_text_search_finds_them(text: str) -> None:
    expected = [m.span() for m in birthdates._DATE_THEN_BORN.finditer(text)]
    found = [m.span() for start, end in birthdates._lines_holding(text, text.lower(), "geboren")
             for m in birthdates._DATE_THEN_BORN.finditer(text, start, end)]
    assert found == expected


def test_birth_dates_after_a_dotless_i_keyword_are_found() -> None:
    text = "bırth date 12.03.1985"
    assert [text[s:e] for s, e in birthdates.find_birth_dates(text)] == ["12.03.1985"]


# -- the names of a mail's headers: found with str.find, as the alternation finds them -------

KNOWN = ["Schmidt, Anna-Lena (BA Mitte)", "Peter von der Heide", "Nguyễn Thị Lan", "Ann Anna"]
KNOWN_TEXTS = [
    "Anna-Lena Schmidt hat angerufen. Frau Schmidt sagt, Anna-Lena kommt; A. Schmidt auch.",
    "Schmidt, Anna-Lena; Schmidtke; anna-lena.schmidt@example.org; Meier-Schmidt; Schmidt's",
    "Peter von der Heide, Heide, die Heide blüht, Heidemarie; Peter",
    "Nguyễn Thị Lan schreibt: Lan, Thị, Nguyễn. Lanze, Nguyễns",
    "Ann Anna Annabell Ann. Anna.de Anna-",
    "Schmidt",
    "",
]


def _alternation_spans(people: list[PersonName], text: str) -> list[tuple[int, int]]:
    """What the former implementation found: one alternation, longest variant first."""
    variants = sorted({v for p in people for v in p.variants()}, key=len, reverse=True)
    pattern = re.compile(rf"(?<![\w@.-])(?:{'|'.join(map(re.escape, variants))}){persons._END}")
    return [m.span() for m in pattern.finditer(text)]


@pytest.mark.parametrize("text", KNOWN_TEXTS)
def test_known_names_found_where_the_alternation_finds_them(text: str) -> None:
    people = [p for p in map(parse_display_name, KNOWN) if p is not None]
    assert persons.KnownNames(people)._occurrences(text) == _alternation_spans(people, text)


# -- number recognizers: a text without a candidate is skipped before Presidio's patterns -----

NUMBER_TEXTS = [
    "Ausweisnummer L01X00T44, Versichertennummer A000500015, Reisepass C01X00T47.",
    "Steuer-ID 86095742719. Steuer-ID 12 345 678 903. Ausweis T22000129, KVNR a000500015",
    "Kein Ausweis, keine Nummer: nur Text, ein Datum 12.03.2025 und Tel. 0351 564-2871.",
    "Ticket LDS-2025-000123 Kennung L01X00T4 Pass c01x00t47 IBAN DE89370400440532013000",
    "",
]


@pytest.mark.parametrize("text", NUMBER_TEXTS)
def test_prefiltered_number_recognizers_find_what_they_found_without_the_filter(
    text: str,
) -> None:
    def spans(results: list[Any]) -> list[tuple[str, int, int, float]]:
        return sorted((r.entity_type, r.start, r.end, r.score) for r in results)

    for recognizer in identifiers.number_recognizers("de"):
        if not isinstance(recognizer, identifiers._Prefiltered):
            continue
        entities = recognizer.supported_entities
        unfiltered = super(identifiers._Prefiltered, recognizer).analyze(  # type: ignore[misc]
            text, entities, None)
        assert spans(recognizer.analyze(text, entities, None)) == spans(unfiltered)
