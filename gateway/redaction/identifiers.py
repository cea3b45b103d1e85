"""Recognizers for personal numbers and addresses: e-mail addresses, German phone numbers,
IBANs, the tax ID, ID card and passport numbers, the health insurance number and (optional)
street addresses. Presidio's own German recognizers carry the checksums; this module makes
them work offline, adds the spellings German mail uses, and demands a context word where a
checksum alone would hit ordinary numbers too often."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import phonenumbers
import tldextract
from phonenumbers import Leniency
from presidio_analyzer import EntityRecognizer, Pattern, PatternRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts
from presidio_analyzer.predefined_recognizers import (
    DeHealthInsuranceRecognizer,
    DeIdCardRecognizer,
    DePassportRecognizer,
    DeTaxIdRecognizer,
    EmailRecognizer,
    IbanRecognizer,
)

# The Public Suffix List snapshot bundled with tldextract, never fetched, never cached on disk:
# Presidio's own EmailRecognizer uses the module-level extractor, which downloads the list.
_OFFLINE_TLD = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


# Mailboxes of offices and systems rather than people; kept for readability.
_FUNCTIONAL = re.compile(
    r"(?:[a-z]+[._-])?(?:servicedesk|service-desk|helpdesk|support|it-?support|poststelle|post|"
    r"info|kontakt|contact|office|buero|büro|sekretariat|verwaltung|noreply|no-reply|"
    r"donotreply|postmaster|mailer-daemon|webmaster|admin|hotline|buergerservice|"
    r"bürgerservice|service|team|datenschutz|presse|personal|personalstelle|zentrale)"
    r"(?:[._-][a-z0-9]+)?"
)


class OfflineEmailRecognizer(EmailRecognizer):
    """Presidio's e-mail recognizer with a top-level-domain check that needs no network.
    A valid address scores the maximum anyway, so it needs no context words."""

    def __init__(self, supported_language: str) -> None:
        super().__init__(supported_language=supported_language)
        self.context = []

    def validate_result(self, pattern_text: str) -> bool:
        local, _, domain = pattern_text.rpartition("@")
        if _FUNCTIONAL.fullmatch(local.lower()):
            return False  # servicedesk@…, poststelle@…: an office, not a person
        return _OFFLINE_TLD(domain).fqdn != ""


_NINE_WITH_DIGIT = re.compile(r"\d(?<=\w{8}\d)")  # a digit, looking back (fast)
"""Every ID card, passport, health insurance and (ungrouped) tax ID number has nine word
characters in a row that end in a digit; a text without them has none of these numbers."""
_GROUPED_TAX_ID = re.compile(r"\d[ \t]\d{3}[ \t]\d{3}[ \t]\d{3}")


class _Prefiltered:
    """Mixin: a text with no candidate at all (`_candidates`, a plain `re` pattern looser than
    the recognizer's own) returns no result before Presidio runs its `regex` patterns. Those
    patterns, run with IGNORECASE over every text, were a fifth of PREPARE's time (bench/e2e.py
    corpus, cProfile), and almost no service mail holds such a number."""

    _candidates: re.Pattern[str] = _NINE_WITH_DIGIT

    def analyze(self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None,
                regex_flags: int | None = None) -> list[RecognizerResult]:
        if not self._candidates.search(text):
            return []
        results: list[RecognizerResult] = super().analyze(  # type: ignore[misc]
            text, entities, nlp_artifacts, regex_flags)
        return results


class _ContextRequired:
    """Mixin: a passing checksum keeps the pattern's low score instead of the maximum, so
    only a context word ("Ausweisnummer", "KVNR", …) nearby lifts a hit over the threshold."""

    def validate_result(self, pattern_text: str) -> bool | None:
        valid: bool | None = super().validate_result(pattern_text)  # type: ignore[misc]
        return None if valid else False


class IdCardRecognizer(_Prefiltered, _ContextRequired, DeIdCardRecognizer):
    """German ID card numbers (ICAO check digit), only next to a context word."""


class PassportRecognizer(_Prefiltered, _ContextRequired, DePassportRecognizer):
    """German passport numbers (ICAO check digit), only next to a context word."""


class HealthInsuranceRecognizer(_Prefiltered, _ContextRequired, DeHealthInsuranceRecognizer):
    """Krankenversichertennummer (GKV check digit), only next to a context word."""


ID_CONTEXT = [
    "ausweis", "personalausweis", "ausweisnummer", "dokumentennummer", "reisepass", "pass",
    "passnummer", "passport", "identity", "id-card",
]  # fmt: skip
KVNR_CONTEXT = [
    "krankenversicherung", "krankenversicherten", "versichertennummer", "kvnr",
    "krankenkasse", "gesundheitskarte", "egk", "insurance", "aok", "barmer",
]  # fmt: skip
# "12 345 678 903" (the spacing on tax letters) next to the plain eleven digits
TAX_PATTERNS = [
    Pattern("Steuer-ID", r"\b[1-9]\d{10}\b", 0.5),
    Pattern("Steuer-ID (grouped)", r"\b[1-9]\d[ \t]\d{3}[ \t]\d{3}[ \t]\d{3}\b", 0.5),
]


class TaxIdRecognizer(_Prefiltered, DeTaxIdRecognizer):
    """German tax ID (Steuer-ID, checksum), also in its grouped spelling."""

    _candidates = re.compile(f"{_NINE_WITH_DIGIT.pattern}|{_GROUPED_TAX_ID.pattern}")

    def validate_result(self, pattern_text: str) -> bool | None:
        return bool(super().validate_result(re.sub(r"\s", "", pattern_text)))


_STREET_SUFFIX = (
    r"(?:straße|strasse|str\.|weg|allee|platz|gasse|ring|damm|ufer|chaussee|steig|pfad"
    r"|markt|hof|berg|graben|promenade|wall|brücke|kamp|stieg|twiete)"
)
STREET_PATTERNS = [
    Pattern(
        "German street and number",
        rf"\b(?:[A-ZÄÖÜ][\wäöüß-]*{_STREET_SUFFIX}|(?:Am|An[ \t]der|Auf[ \t]dem|Im|Zum|Zur)"
        rf"[ \t][A-ZÄÖÜ][\wäöüß-]+)[ \t]+\d{{1,4}}[ \t]?[a-zA-Z]?\b"
        rf"(?:,?[ \t\n]+\d{{5}}[ \t]+[A-ZÄÖÜ][\wäöüß-]+(?:[ \t][A-ZÄÖÜ][\wäöüß-]+)?)?",
        0.6,
    ),
    Pattern(
        "English street and number",
        r"\b\d{1,5}[ \t]+(?:[A-Z][a-z]+[ \t]){1,3}(?:Street|St\.|Road|Rd\.|Avenue|Ave\.|Lane"
        r"|Drive|Way|Close|Court|Square|Place|Terrace|Boulevard)\b",
        0.6,
    ),
]


class PhoneRecognizer(EntityRecognizer):
    """Phone numbers that libphonenumber holds valid for Germany (or any country when written
    with +CC). Dates, times, ticket numbers and IBAN fragments are not valid numbers."""

    def __init__(self, supported_language: str) -> None:
        super().__init__(
            ["PHONE_NUMBER"], name="PostdeskPhoneRecognizer", supported_language=supported_language
        )

    def load(self) -> None:
        """libphonenumber's metadata loads on first use."""

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        return [
            RecognizerResult("PHONE_NUMBER", start, end, 0.75) for start, end in find_phones(text)
        ]


_DATE_LIKE = re.compile(r"\d{1,2}\.\d{1,2}\.(?:\d{4}|\d{2})(?!\d)")
_DATE_ONLY = re.compile(r"\d{1,2}\.\d{1,2}\.(?:\d{4}|\d{2})")
_DIGIT = re.compile(r"\d")
MIN_PHONE_DIGITS = 4
"""No valid number has fewer digits: the shortest national numbers libphonenumber knows (DE,
AT) have 4, and a number in international form adds its country code."""


class _CandidateFilter(phonenumbers.PhoneNumberMatcher):
    """libphonenumber's matcher, skipping candidates that cannot be a valid number before it
    parses them and each of their inner groups: "12", "9", a bare date. German service mail is
    full of such numbers, and parsing them was 28 % of the time PREPARE spent per mail (bench/
    e2e.py profile); the spans found are the same (tests/test_redaction.py compares)."""

    def _extract_match(self, candidate: str, offset: int) -> Any:
        if len(_DIGIT.findall(candidate)) < MIN_PHONE_DIGITS or _DATE_ONLY.fullmatch(candidate):
            return None
        return super()._extract_match(candidate, offset)


_MATCHER: type[phonenumbers.PhoneNumberMatcher] = (
    _CandidateFilter
    if hasattr(phonenumbers.PhoneNumberMatcher, "_extract_match")  # a private hook
    else phonenumbers.PhoneNumberMatcher
)


def find_phones(text: str) -> Iterator[tuple[int, int]]:
    """Spans of phone numbers in `text`."""
    for match in _MATCHER(text, "DE", leniency=Leniency.VALID):
        if _DATE_LIKE.match(match.raw_string):  # "02.05.2025 09:15" is a date and a time
            continue
        yield match.start, match.end


def _without_context(recognizer: PatternRecognizer) -> PatternRecognizer:
    """Checksummed hits score the maximum already; context words would only cost time."""
    recognizer.context = []
    return recognizer


def number_recognizers(language: str) -> list[EntityRecognizer]:
    """One instance of each number recognizer for `language` ("de" or "en")."""
    return [
        OfflineEmailRecognizer(supported_language=language),
        PhoneRecognizer(language),
        _without_context(IbanRecognizer(supported_language=language)),
        _without_context(TaxIdRecognizer(supported_language=language, patterns=TAX_PATTERNS)),
        IdCardRecognizer(
            supported_language=language, supported_entity="ID_DOCUMENT", context=ID_CONTEXT
        ),
        PassportRecognizer(
            supported_language=language, supported_entity="ID_DOCUMENT", context=ID_CONTEXT
        ),
        HealthInsuranceRecognizer(
            supported_language=language,
            supported_entity="DE_HEALTH_INSURANCE",
            context=KVNR_CONTEXT,
        ),
        PatternRecognizer(
            supported_entity="STREET_ADDRESS",
            patterns=STREET_PATTERNS,
            supported_language=language,
            name="StreetAddressRecognizer",
        ),
    ]
