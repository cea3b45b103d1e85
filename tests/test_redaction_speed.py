"""The redaction short cuts PREPARE takes for speed find what the long way finds: phone
candidates that cannot be numbers are skipped before libphonenumber parses them, a text is
tokenised only when a context word could matter, and a reply's new text is analysed as part of
the full body. (Speed itself is measured by bench/e2e.py, not here.)"""

from __future__ import annotations

from typing import Any

import phonenumbers
import pytest
from phonenumbers import Leniency

from gateway.config import Settings
from gateway.pipeline import redact
from gateway.pipeline.context import IncomingMail, Preparing
from gateway.pipeline.parse import parse_mail
from gateway.redaction import Analysis, Finding, Redactor, identifiers, part_of
from gateway.redaction.engine import _LazyArtifacts
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
