"""Text beyond the analyser's limit: a body over spaCy's nlp.max_length (1,000,000 characters)
is searched in overlapping chunks instead of being quarantined at `analyse`, and a body over
redaction.max_analysis_chars is cut with a notice, never stored unsearched."""

from __future__ import annotations

import functools
import itertools
import random
from collections.abc import Callable, Iterator

import pytest

from gateway.app import App
from gateway.config import Settings
from gateway.outgoing.senders import RecordingSender
from gateway.redaction import ALL_ENTITIES, Redactor, engine
from storage import spool
from tests.helpers import articles, make_mail

SENTENCES = (
    "Bitte rufen Sie Frau Anna Schmidt unter 030 12345678 zurück.",
    "Herr Jonas Becker (geb. 12.03.1980) hat den Antrag am 4. Mai gestellt.",
    "Die Rechnung geht an Petra Wagner, IBAN DE89 3704 0044 0532 0130 00.",
    "Der Drucker im 3. OG druckt seit Montag nur leere Seiten.",
    "Mit freundlichen Grüßen, Klaus Hoffmann, Tel. 0170 1234567",
    "Das Update von Version 2.3 auf 2.4 ist für Dienstag geplant.",
)


def german_text(size: int, seed: int = 1) -> str:
    rnd = random.Random(seed)
    lines: list[str] = []
    length = 0
    while length < size:
        line = " ".join(rnd.choice(SENTENCES) for _ in range(rnd.randint(1, 3)))
        lines.append(line + ("\n\n" if rnd.random() < 0.2 else "\n"))
        length += len(lines[-1])
    return "".join(lines)


@pytest.fixture(scope="module")
def redactor() -> Redactor:
    return Redactor(entities=ALL_ENTITIES)


def test_chunks_cover_the_text_once_with_overlap_at_line_boundaries() -> None:
    text = german_text(50_000)
    pieces = engine.chunks(text, size=5_000, overlap=600)
    assert len(pieces) > 10
    assert pieces[0][2] == 0 and pieces[-1][3] == len(text)
    for (start, end, _, own_to), following in itertools.pairwise(pieces):
        assert end - start <= 5_000 and text[end - 1] == "\n"
        assert own_to == following[2]  # the own parts partition the text
        assert following[0] < end  # overlapping, and the owner has context on both sides
        assert own_to - following[0] >= 200 and end - own_to >= 200
    for start, *_ in pieces[1:]:
        assert text[start - 1] == "\n"


def test_one_endless_word_is_still_cut_and_the_cutting_ends() -> None:
    pieces = engine.chunks("x" * 20_000, size=5_000, overlap=600)
    assert pieces[-1][1] == 20_000 and all(end - start <= 5_000 for start, end, *_ in pieces)


def test_chunked_analysis_finds_what_one_piece_finds(
    redactor: Redactor, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = german_text(30_000)
    whole = redactor.analyze(text, language="de")
    monkeypatch.setattr(engine, "chunks", functools.partial(engine.chunks, size=2_000,
                                                            overlap=400))
    assert redactor.analyze(text, language="de") == whole
    assert len(whole) > 300


def test_a_value_across_a_chunk_boundary_is_found_whole(
    redactor: Redactor, monkeypatch: pytest.MonkeyPatch
) -> None:
    filler = "der Drucker druckt nicht " * 80  # one long line: the cut falls between words
    text = filler[:1_990] + " Frau Anna Schmidt unter 030 12345678 " + filler
    monkeypatch.setattr(engine, "chunks", functools.partial(engine.chunks, size=2_000,
                                                            overlap=400))
    found = {text[f.start:f.end]: f.entity for f in redactor.analyze(text, language="de")}
    assert found.get("Anna Schmidt") == "PERSON"
    assert found.get("030 12345678") == "PHONE_NUMBER"


@pytest.fixture
def app_with(make_settings: Callable[..., Settings]) -> Iterator[Callable[..., App]]:
    built: list[App] = []

    def build(**redaction: object) -> App:
        settings = make_settings(redaction=redaction, worker={"mode": "thread"})
        application = App.build(settings, sender=RecordingSender())
        application.init_database()
        built.append(application)
        return application

    yield build
    for application in built:
        application.db.dispose()


def _deliver(app: App, body: str) -> None:
    with app.db.session() as session:
        spool.add_inbox_items(session, [spool.NewInboxItem(
            source="smtp", source_key="huge", raw=make_mail(body=body).as_bytes())])


def test_a_body_over_spacys_limit_becomes_a_redacted_ticket(
    app_with: Callable[..., App],
) -> None:
    app = app_with(max_analysis_chars=1_200_000)
    body = german_text(1_050_000) + "Zum Schluss: Frau Kowalski-Brandt, Tel. 0171 9876543\n"
    _deliver(app, body)
    [outcome] = app.worker.drain()
    assert outcome.state == "done"  # the old engine quarantined it at `analyse`, every time
    [article] = articles(app)
    assert len(article.body) > 900_000
    for value in ("Kowalski", "0171 9876543", "Anna Schmidt", "Petra Wagner", "12.03.1980"):
        assert value not in article.body
    assert "[NAME-" in article.body[-200:] and "[TELEFON" in article.body[-200:].upper()


def test_a_body_over_max_analysis_chars_is_cut_with_a_notice(
    app_with: Callable[..., App],
) -> None:
    app = app_with(max_analysis_chars=5_000)
    body = german_text(4_000) + german_text(20_000, seed=2) + "Gruß, Frau Kowalski-Brandt\n"
    _deliver(app, body)
    [outcome] = app.worker.drain()
    assert outcome.state == "done"
    [article] = articles(app)
    assert len(article.body) < 6_000
    assert "characters not kept: over redaction.max_analysis_chars" in article.body
    assert "Kowalski" not in article.body and "Anna Schmidt" not in article.body
