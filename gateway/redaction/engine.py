"""Presidio set up for postdesk: fully offline, over blank spaCy pipelines (tokenizer only,
lemma = lower-cased text so context words work), with the rule-based recognizers of this
package; an installed statistical spaCy model can be added for its language. `Redactor`
builds this once (the slow part) and redacts one text per call.

Presidio's defaults would download `en_core_web_lg` and the Public Suffix List; neither
happens here: the NLP engine gets its pipelines injected and the e-mail recognizer uses
tldextract's bundled snapshot."""

from __future__ import annotations

import bisect
import re
import time
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import spacy
from presidio_analyzer import AnalyzerEngine, EntityRecognizer, RecognizerResult
from presidio_analyzer.context_aware_enhancers import LemmaContextAwareEnhancer
from presidio_analyzer.nlp_engine import NerModelConfiguration, NlpArtifacts, SpacyNlpEngine
from presidio_analyzer.predefined_recognizers import SpacyRecognizer
from presidio_analyzer.recognizer_registry import RecognizerRegistry
from spacy.language import Language as SpacyLanguage
from spacy.tokens import Doc

from gateway.errors import ConfigError
from gateway.redaction.birthdates import find_birth_dates
from gateway.redaction.identifiers import number_recognizers
from gateway.redaction.language import Language
from gateway.redaction.names import TITLES, PersonName, parse_display_name
from gateway.redaction.persons import KnownNames, NameSpan, PersonFinder, header_names
from gateway.redaction.placeholders import NUMBERED, Pseudonyms, placeholder
from gateway.redaction.vocabulary import dictionary_words

ALL_ENTITIES = (
    "PERSON",
    "DATE_OF_BIRTH",
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "IBAN_CODE",
    "DE_TAX_ID",
    "ID_DOCUMENT",
    "DE_HEALTH_INSURANCE",
    "STREET_ADDRESS",
)
DEFAULT_ENTITIES = tuple(e for e in ALL_ENTITIES if e != "STREET_ADDRESS")
LANGUAGES = ("de", "en")
SCORE_THRESHOLD = 0.5
CHUNK_CHARS = 100_000
"""A longer text is analysed in chunks of about this size: spaCy refuses a text over its
nlp.max_length (1,000,000 characters), and parts of the analysis (Presidio's context
enhancer) grow faster than the text, so a 925K body took 10 s in one piece and 6 s in chunks
(bench/huge_mail.py)."""
CHUNK_OVERLAP = 2_000
"""Each chunk reaches this far into the next one (to line boundaries), so a value across a
boundary, and the context words before it, lie whole inside one chunk."""
_RECOGNIZER_ID = RecognizerResult.RECOGNIZER_IDENTIFIER_KEY
# Which entity wins where two overlap: checksummed numbers first, names last.
_PRIORITY = {
    e: i
    for i, e in enumerate(
        (
            "EMAIL_ADDRESS",
            "IBAN_CODE",
            "DE_TAX_ID",
            "ID_DOCUMENT",
            "DE_HEALTH_INSURANCE",
            "PHONE_NUMBER",
            "DATE_OF_BIRTH",
            "STREET_ADDRESS",
            "PERSON",
        )
    )
}


@dataclass(frozen=True, slots=True)
class Redaction:
    """Redacted text and how many values of each entity type were replaced."""

    text: str
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Finding:
    """One value to replace: entity type and character span in the original text."""

    entity: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Analysis:
    """What `prepare` found in one text; `apply` turns it into redacted text. Split so the slow
    part (finding) can run before the ticket is known, the numbering inside its transaction."""

    text: str
    findings: list[Finding]
    people: list[PersonName]


class _InjectedSpacyEngine(SpacyNlpEngine):
    """Presidio's spaCy engine over pipelines built here; never downloads a model."""

    def __init__(self, pipelines: dict[str, SpacyLanguage], ner: NerModelConfiguration) -> None:
        super().__init__(
            models=[{"lang_code": lang, "model_name": "injected"} for lang in pipelines],
            ner_model_configuration=ner,
        )
        self.nlp = pipelines  # type: ignore[assignment]  # Presidio annotates it as None

    def load(self) -> None:
        """The pipelines are injected; there is nothing to load."""

    def _doc_to_nlp_artifact(self, doc: Doc, language: str) -> NlpArtifacts:
        tokens = list(doc)  # a list: Presidio walks the tokens once per context lookup
        entities, scores = self._get_updated_entities(
            list(doc.ents), self._get_scores_for_entities(doc)
        )
        return NlpArtifacts(
            entities=entities,
            tokens=tokens,  # type: ignore[arg-type]  # a list of Tokens iterates alike
            tokens_indices=[t.idx for t in tokens],
            # a blank pipeline has no lemmatizer: the lower-cased token is lemma enough
            # for context words such as "ausweisnummer" or "versichertennummer"
            lemmas=[t.lemma_ or t.lower_ for t in tokens],
            nlp_engine=self,
            language=language,
            scores=scores,
        )


class _LazyArtifacts(NlpArtifacts):
    """The artifacts of a blank pipeline, tokenised only when something asks for tokens: only
    the context enhancer does, and only for a result a context word could lift over the
    threshold; most texts have none, and tokenising them was a fifth of PREPARE's time per
    mail (bench/e2e.py profile). A blank pipeline finds no entities, so there are none."""

    def __init__(self, text: str, language: str, engine: _InjectedSpacyEngine) -> None:
        # NlpArtifacts.__init__ would tokenise at once; set what it sets, tokens on demand
        self.entities = []
        self.scores = []
        self.nlp_engine = engine
        self._text, self._language = text, language
        self._made: NlpArtifacts | None = None

    def _artifacts(self) -> NlpArtifacts:
        if self._made is None:
            self._made = self.nlp_engine.process_text(self._text, self._language)
        return self._made

    @property
    def tokens(self) -> Any:  # type: ignore[override]
        return self._artifacts().tokens

    @property
    def tokens_indices(self) -> list[int]:  # type: ignore[override]
        return self._artifacts().tokens_indices

    @property
    def lemmas(self) -> list[str]:  # type: ignore[override]
        return self._artifacts().lemmas

    @property
    def keywords(self) -> list[str]:  # type: ignore[override]
        return self._artifacts().keywords


class _ContextEnhancer(LemmaContextAwareEnhancer):
    """Presidio's context enhancer, asked only about results a context word could still lift
    over the threshold (it deep-copies and re-scans every result it is given), and finding
    a result's token by bisection instead of walking all tokens."""

    def enhance_using_context(
        self,
        text: str,
        raw_results: list[RecognizerResult],
        nlp_artifacts: NlpArtifacts,
        recognizers: list[EntityRecognizer],
        context: list[str] | None = None,
    ) -> list[RecognizerResult]:
        with_context = {r.id for r in recognizers if r.context}
        todo: list[RecognizerResult] = []
        done: list[RecognizerResult] = []
        for result in raw_results:
            recognizer_id = (result.recognition_metadata or {}).get(_RECOGNIZER_ID)
            lift = recognizer_id in with_context and result.score < SCORE_THRESHOLD
            (todo if lift else done).append(result)
        if not todo:
            return done
        enhanced: list[RecognizerResult] = super().enhance_using_context(
            text, todo, nlp_artifacts, recognizers, context
        )
        return done + enhanced

    @staticmethod
    def _find_index_of_match_token(
        word: str, start: int, tokens: Any, tokens_indices: list[int]
    ) -> int:
        i = bisect.bisect_right(tokens_indices, start) - 1
        if i < 0 or start >= tokens_indices[i] + len(tokens[i]):
            i += 1
        if i >= len(tokens_indices):
            raise ValueError("match lies beyond the last token")
        return i


class _PersonRecognizer(EntityRecognizer):
    """Presidio wrapper around the PERSON rules (bilingual: German and English vocabulary)."""

    def __init__(self, language: str, finder: PersonFinder) -> None:
        self._finder = finder
        super().__init__(["PERSON"], name="PostdeskPersonRecognizer", supported_language=language)

    def load(self) -> None:
        """Rules only; nothing to load."""

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        return [_result("PERSON", s) for s in self._finder.find(text)]


class _KnownNamesRecognizer(EntityRecognizer):
    """Ad-hoc recognizer for the people named in this mail's headers."""

    def __init__(self, language: str, people: Sequence[PersonName], kind: str = "") -> None:
        self._known = KnownNames(people)
        super().__init__(
            ["PERSON"], name=f"Postdesk{kind}KnownNames", supported_language=language
        )

    def load(self) -> None:
        """Built per mail from its headers; nothing to load."""

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        return [_result("PERSON", s) for s in self._known.find(text)]


class _BirthDateRecognizer(EntityRecognizer):
    """Presidio wrapper around `find_birth_dates`."""

    def __init__(self, language: str) -> None:
        super().__init__(
            ["DATE_OF_BIRTH"], name="PostdeskBirthDateRecognizer", supported_language=language
        )

    def load(self) -> None:
        """Rules only; nothing to load."""

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        return [
            RecognizerResult("DATE_OF_BIRTH", start, end, 0.9)
            for start, end in find_birth_dates(text)
        ]


def _result(entity: str, span: NameSpan) -> RecognizerResult:
    return RecognizerResult(entity, span.start, span.end, span.score)


def _load_model(name: str) -> SpacyLanguage:
    """An installed spaCy model (package name or folder); never downloaded."""
    try:
        model = spacy.load(name)
    except OSError as exc:
        raise ConfigError(
            f"redaction.spacy_model: {name!r} is not an installed spaCy model "
            "(install it from spaCy's releases, or leave the key empty)"
        ) from exc
    if model.lang not in LANGUAGES:
        raise ConfigError(
            f"redaction.spacy_model: {name!r} is a model for {model.lang!r}; "
            f"only {' and '.join(LANGUAGES)} are supported"
        )
    return model


class Redactor:
    """Finds personal data with Presidio and replaces it with typed placeholders.

    Build once per process (about a second: spaCy and Presidio imports, name lists); `redact`
    is then pure CPU work with no I/O and safe to call from one thread at a time."""

    def __init__(
        self,
        *,
        entities: Collection[str],
        spacy_model: str | None = None,
        staff_names: Sequence[str] = (),
    ) -> None:
        """`staff_names`: the display names of the configured agents, found in every text
        in every form they take ("Schmidt", "Anna", "Schmidt, Anna") like a mail's own
        header names: an agent's name is personal data in a citizen's mail too."""
        started = time.perf_counter()
        self.entities = _check_entities(entities)
        self._staff = [p for p in map(parse_display_name, staff_names) if p is not None]
        dictionary_words()  # the word list for names nobody listed: read now, not per mail
        pipelines = {lang: spacy.blank(lang) for lang in LANGUAGES}
        self.model_language: str | None = None
        if spacy_model:
            model = _load_model(spacy_model)
            self.model_language = str(model.lang)
            pipelines[self.model_language] = model
        ner = NerModelConfiguration(
            labels_to_ignore=["LOC", "GPE", "ORG", "MISC", "NORP", "DATE", "TIME", "FAC",
                              "PRODUCT", "EVENT", "WORK_OF_ART", "LAW", "LANGUAGE", "PERCENT",
                              "MONEY", "QUANTITY", "ORDINAL", "CARDINAL", "LOCATION",
                              "ORGANIZATION", "DATE_TIME", "NRP"],
        )  # fmt: skip
        self._nlp = _InjectedSpacyEngine(pipelines, ner)
        registry = RecognizerRegistry(supported_languages=list(LANGUAGES))
        finder = PersonFinder()
        for lang in LANGUAGES:
            registry.add_recognizer(_PersonRecognizer(lang, finder))
            registry.add_recognizer(_BirthDateRecognizer(lang))
            if self._staff:  # one pattern, built once, instead of per mail like header names
                registry.add_recognizer(_KnownNamesRecognizer(lang, self._staff, "Staff"))
            for recognizer in number_recognizers(lang):
                registry.add_recognizer(recognizer)
        if self.model_language:
            registry.add_recognizer(
                SpacyRecognizer(
                    supported_language=self.model_language, supported_entities=["PERSON"]
                )
            )
        self._analyzer = AnalyzerEngine(
            registry=registry,
            nlp_engine=self._nlp,
            supported_languages=list(LANGUAGES),
            context_aware_enhancer=_ContextEnhancer(),
        )
        self.startup_seconds = time.perf_counter() - started

    def analyze(
        self,
        text: str,
        *,
        language: Language,
        known_names: Sequence[str] = (),
        entities: Collection[str] | None = None,
    ) -> list[Finding]:
        """The non-overlapping values to replace in `text`, in text order."""
        return self._analyze(text, language, known_names, entities)[0]

    def _analyze(
        self,
        text: str,
        language: Language,
        known_names: Sequence[str],
        entities: Collection[str] | None,
    ) -> tuple[list[Finding], list[PersonName]]:
        wanted = self.entities if entities is None else _check_entities(entities)
        if not text or not wanted:
            return [], []
        people = _people(known_names, text)
        results: list[RecognizerResult] = []
        for start, end, own_from, own_to in chunks(text):
            found = self._analyze_piece(text[start:end], language, people, wanted)
            for r in found:  # a value belongs to the chunk whose own part it starts in
                if own_from <= r.start + start < own_to:
                    r.start, r.end = r.start + start, r.end + start
                    results.append(r)
        named = [p for p in self._staff if p.surname in text or (p.given and p.given[0] in text)]
        return _resolve(results), list(dict.fromkeys([*people, *named]))  # staff named here

    def _analyze_piece(
        self, text: str, language: Language, people: list[PersonName], wanted: frozenset[str]
    ) -> list[RecognizerResult]:
        results: list[RecognizerResult] = []
        artifacts = None
        for lang in self._languages(language):
            if lang == self.model_language:  # its entities are needed: process at once
                artifacts = self._nlp.process_text(text, lang)
            elif artifacts is None:
                artifacts = _LazyArtifacts(text, lang, self._nlp)
            ad_hoc: list[EntityRecognizer] = (
                [_KnownNamesRecognizer(lang, people)] if people and "PERSON" in wanted else []
            )
            results += self._analyzer.analyze(
                text,
                lang,
                entities=list(wanted),
                score_threshold=SCORE_THRESHOLD,
                ad_hoc_recognizers=ad_hoc or None,
                nlp_artifacts=artifacts,
            )
        return results

    def prepare(
        self,
        text: str,
        *,
        language: Language,
        known_names: Sequence[str] = (),
        entities: Collection[str] | None = None,
    ) -> Analysis:
        """Find every wanted entity in `text` (the expensive part; needs no ticket)."""
        findings, people = self._analyze(text, language, known_names, entities)
        return Analysis(text, findings, people)

    def apply(
        self,
        analysis: Analysis,
        *,
        pseudonyms: Pseudonyms,
        entities: Collection[str] | None = None,
    ) -> Redaction:
        """See `apply_analysis`."""
        return apply_analysis(analysis, pseudonyms=pseudonyms, entities=entities)

    def redact(
        self,
        text: str,
        *,
        language: Language,
        known_names: Sequence[str] = (),
        pseudonyms: Pseudonyms,
        entities: Collection[str] | None = None,
    ) -> Redaction:
        """`text` with every wanted entity replaced by its placeholder; `known_names` are the
        display names from From/To/Cc/Reply-To, `entities` a per-queue override."""
        analysis = self.prepare(text, language=language, known_names=known_names,
                                entities=entities)
        return self.apply(analysis, pseudonyms=pseudonyms)

    def _languages(self, language: Language) -> tuple[str, ...]:
        """The rules are bilingual, so one pass suffices unless a statistical model for one
        language is installed: then a mixed text is analysed once for each language."""
        if language == "mixed":
            return ("de", "en") if self.model_language else ("de",)
        if language not in LANGUAGES:
            raise ValueError(f"language must be 'de', 'en' or 'mixed', not {language!r}")
        return (language,)


def chunks(
    text: str, size: int = CHUNK_CHARS, overlap: int = CHUNK_OVERLAP
) -> list[tuple[int, int, int, int]]:
    """(start, end, own_from, own_to) of each chunk of `text`: chunks cut at a paragraph, line
    or word boundary near `size`, each reaching `overlap` into the next; a value found in a
    chunk is kept by the chunk whose own part [own_from, own_to) it starts in, the middle of
    each overlap dividing them, so every value is found with `overlap / 2` of text around it
    and no half value cut at a chunk's end is kept."""
    if len(text) <= size:
        return [(0, len(text), 0, len(text))]
    overlap = min(overlap, size // 4)  # so every chunk moves on by at least size / 4
    pieces: list[tuple[int, int]] = []
    start = 0
    while True:
        if len(text) - start <= size:
            pieces.append((start, len(text)))
            break
        end = _boundary(text, start + size, start + size // 2)
        pieces.append((start, end))
        start = _boundary(text, end - overlap, max(start + 1, end - 2 * overlap))
    result: list[tuple[int, int, int, int]] = []
    own_from = 0
    for i, (start, end) in enumerate(pieces):
        own_to = len(text) if i == len(pieces) - 1 else (pieces[i + 1][0] + end) // 2
        result.append((start, end, own_from, own_to))
        own_from = own_to
    return result


def _boundary(text: str, at: int, lowest: int) -> int:
    """The last paragraph, else line, else word boundary at or before `at` (not before
    `lowest`); `at` itself if there is none (one endless word)."""
    for separator in ("\n\n", "\n", " "):
        found = text.rfind(separator, lowest, at)
        if found >= 0:
            return found + len(separator)
    return at


def _check_entities(entities: Iterable[str]) -> frozenset[str]:
    chosen = frozenset(entities)
    unknown = chosen - set(ALL_ENTITIES)
    if unknown:
        raise ConfigError(
            f"redaction.entities: unknown {', '.join(sorted(unknown))}; "
            f"known are {', '.join(ALL_ENTITIES)}"
        )
    return chosen


def _people(known_names: Sequence[str], text: str) -> list[PersonName]:
    """The people named in the headers of this mail and of mails quoted in its text."""
    people = [p for p in map(parse_display_name, known_names) if p is not None]
    people += [p for _, _, p in header_names(text)]
    return list(dict.fromkeys(people))


def _resolve(results: Iterable[RecognizerResult]) -> list[Finding]:
    """Overlapping spans of one type merge; across types the higher-priority type wins."""
    by_type: dict[str, list[tuple[int, int]]] = {}
    for r in results:
        by_type.setdefault(r.entity_type, []).append((r.start, r.end))
    merged: list[Finding] = []
    for entity, spans in by_type.items():
        spans.sort()
        start, end = spans[0]
        for s, e in spans[1:]:
            if s < end:
                end = max(end, e)
            else:
                merged.append(Finding(entity, start, end))
                start, end = s, e
        merged.append(Finding(entity, start, end))
    merged.sort(key=lambda f: (_PRIORITY.get(f.entity, 99), f.start - f.end))
    # The chosen spans never overlap, so sorted by start their ends are sorted too: a new
    # span is free if it ends before the next chosen one starts and starts after the one
    # before it ends (bisection: 12,000 findings of a 925K body took 5 s checked pairwise).
    starts: list[int] = []
    chosen: list[Finding] = []
    for finding in merged:
        i = bisect.bisect_right(starts, finding.start)
        if i > 0 and chosen[i - 1].end > finding.start:
            continue
        if i < len(chosen) and chosen[i].start < finding.end:
            continue
        starts.insert(i, finding.start)
        chosen.insert(i, finding)
    return chosen


_INITIAL = re.compile(r"^[A-ZÄÖÜ]\.$")


def _as_person(value: str) -> PersonName | None:
    """A name as found in text ("Schmidt, Anna", "Dr. Anna Schmidt", "A. Schmidt")."""
    if "," in value:
        surname, _, given = value.partition(",")
        value = f"{given.strip()} {surname.strip()}"
    words = [w for w in value.split() if w.lower() not in TITLES]
    if not words:
        return None
    if len(words) == 1:
        return PersonName((), words[0])
    return PersonName(tuple(words[:-1]), words[-1])


def _identity(value: str, people: Sequence[PersonName], in_text: Sequence[PersonName]) -> str:
    """What a name found in text stands for: the full name of the header person or of the
    fully named person in this text it belongs to ("Frau Schmidt" → "Anna-Lena Schmidt")."""
    found = _as_person(value)
    if found is None:
        return value
    for person in (*people, *in_text):
        if _same_person(found, person):
            return person.full
    return found.full


def _same_person(found: PersonName, person: PersonName) -> bool:
    if found.full == person.full:
        return True
    if not found.given:  # a single word: surname or first name
        word = found.surname
        return word in (person.surname, person.surname.split()[-1] if person.surname else "") or (
            bool(person.given) and word == person.given[0]
        )
    if found.surname != person.surname or not person.given:
        return False
    first = found.given[0]
    return first == person.given[0] or (
        bool(_INITIAL.match(first)) and person.given[0].startswith(first[0])
    )


def part_of(analysis: Analysis, part: str) -> Analysis | None:
    """The analysis of `part`, a piece of the analysed text, taken from the whole text's (None
    if `part` is not in it): a reply's new text is mostly the full body less its quote and
    signature, so analysing it again doubled PREPARE's largest cost. What is found in the whole
    can only be more than what the part alone shows (more context words, more people named),
    and a value cut by the part's edge is cut too, so redacting by it is never less."""
    start = analysis.text.find(part)
    if start < 0:
        return None
    end = start + len(part)
    findings = [
        Finding(f.entity, max(f.start, start) - start, min(f.end, end) - start)
        for f in analysis.findings
        if f.start < end and f.end > start
    ]
    return Analysis(part, findings, analysis.people)


def apply_analysis(
    analysis: Analysis,
    *,
    pseudonyms: Pseudonyms,
    entities: Collection[str] | None = None,
) -> Redaction:
    """Replace what `Redactor.prepare` found (only `entities`, if given: a queue's narrower
    choice) by placeholders numbered through the ticket's `pseudonyms`. Needs no Presidio, so
    the process that writes tickets never has to load it."""
    text = analysis.text
    wanted = None if entities is None else _check_entities(entities)
    findings = [f for f in analysis.findings if wanted is None or f.entity in wanted]
    if not findings:
        return Redaction(text, {})
    full_names = [_as_person(text[f.start : f.end]) for f in findings if f.entity == "PERSON"]
    parts: list[str] = []
    counts: dict[str, int] = {}
    last = 0
    for finding in findings:
        value = text[finding.start : finding.end]
        number = None
        if finding.entity in NUMBERED:
            identity = _identity(value, analysis.people,
                                 [p for p in full_names if p and p.given])
            number = pseudonyms.number(finding.entity, identity)
        parts += [text[last : finding.start], placeholder(finding.entity, number)]
        counts[finding.entity] = counts.get(finding.entity, 0) + 1
        last = finding.end
    parts.append(text[last:])
    return Redaction("".join(parts), counts)
