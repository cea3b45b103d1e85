"""Redaction in the pipeline: what is stored (ticket JSON, database file) carries placeholders,
never the personal data; originals stay retrievable, encrypted, until the retention job ran."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from gateway.app import App
from gateway.cli import main
from gateway.config import Settings
from gateway.jobs import tasks as jobs
from gateway.outgoing.senders import RecordingSender
from storage import spool
from storage.models import InboxItem, utcnow
from tests.helpers import make_mail, write_config

GERMAN = """Sehr geehrte Damen und Herren,

für unsere neue Kollegin Frau Mareike Sommerfeld (geb. 14.07.1988) benötigen wir bis
30.11.2025 einen Zugang zum Fachverfahren. Ihr Geburtsdatum: 14. Juli 1988.
Die Freigabe hat Herr Dr. Albrecht Kowalczyk bereits erteilt; Rückfragen gern an
0351 564-2871.

Mit freundlichen Grüßen
Jens Wagner
Sachgebiet Personal
"""

ENGLISH = """Hello,

our contractor Oliver Bennett (DOB 1979-03-02, born on March 2, 1979) needs a badge for
the server room by Friday. Please send it to reception.

Best regards
Claire Donovan
"""


@pytest.fixture
def app(settings: Settings) -> Iterator[App]:
    application = App.build(settings, sender=RecordingSender())
    application.init_database()
    yield application
    application.db.dispose()


@pytest.fixture
def config_file(tmp_path: Path, settings: Settings) -> Path:
    return write_config(tmp_path / "config.yaml", settings)


def deliver(app: App, raw: bytes, key: str) -> None:
    with app.db.session() as session:
        spool.add_inbox_items(
            session,
            [
                spool.NewInboxItem(
                    source="smtp", source_key=key, raw=raw, envelope_from="jens.wagner@example.net"
                )
            ],
        )
    [outcome] = app.worker.drain()
    assert outcome.state == "done"


def show(config_file: Path, capsys: pytest.CaptureFixture[str], ref: str = "LDS-1") -> dict:
    assert main(["--config", str(config_file), "tickets", "show", ref, "--json"]) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def stored_bytes(settings: Settings) -> bytes:
    """Everything SQLite wrote: the database file and its WAL."""
    database = Path(settings.database.url.removeprefix("sqlite:///"))
    return b"".join(
        p.read_bytes()
        for p in database.parent.glob(database.name + "*")
        if p.is_file() and not p.name.endswith("-writelock")
    )


def test_german_mail_keeps_the_request_and_loses_the_personal_data(
    app: App, settings: Settings, config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mail = make_mail(
        sender="Jens Wagner <jens.wagner@example.net>",
        subject="Zugang für Frau Sommerfeld",
        body=GERMAN,
    )
    deliver(app, mail.as_bytes(), "de")
    ticket = show(config_file, capsys)
    body = ticket["articles"][0]["body"]
    everything = json.dumps(ticket, ensure_ascii=False)
    for secret in (
        "Mareike",
        "Sommerfeld",
        "14.07.1988",
        "14. Juli 1988",
        "Albrecht",
        "Kowalczyk",
        "Jens Wagner",
        "564-2871",
    ):
        assert secret not in everything, secret
    assert "bis\n30.11.2025 einen Zugang zum Fachverfahren" in body  # the deadline survives
    assert "Frau [NAME-1] (geb. [GEBURTSDATUM])" in body
    assert "Herr Dr. [NAME-2]" in body and "[TELEFON]" in body
    assert ticket["subject"] == "Zugang für Frau [NAME-1]"  # same person, same number
    if settings.database.url.startswith("sqlite"):
        raw = stored_bytes(settings)
        assert b"Sommerfeld" not in raw and b"Kowalczyk" not in raw  # not even the original


def test_english_mail_birth_dates_and_names_are_redacted(
    app: App, config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mail = make_mail(
        sender="Claire Donovan <claire.donovan@example.net>",
        subject="Badge for a contractor",
        body=ENGLISH,
    )
    deliver(app, mail.as_bytes(), "en")
    body = show(config_file, capsys)["articles"][0]["body"]
    for secret in ("Oliver", "Bennett", "1979-03-02", "March 2, 1979", "Claire", "Donovan"):
        assert secret not in body, secret
    assert "needs a badge for\nthe server room by Friday" in body


def test_placeholders_stay_consistent_across_articles_without_storing_names(
    app: App, settings: Settings, config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deliver(app, make_mail(subject="Zugang", body=GERMAN).as_bytes(), "1")
    follow_up = make_mail(
        subject="Re: [LDS-1] Zugang",
        body="Frau Sommerfeld hat heute angefangen; Herr Kowalczyk ist im Urlaub.\n",
    )
    deliver(app, follow_up.as_bytes(), "2")
    articles = show(config_file, capsys)["articles"]
    second = [a for a in articles if a["direction"] == "in"][1]["body"]
    assert second.startswith("Frau [NAME-1] hat heute angefangen; Herr [NAME-2] ist im")
    with app.db.session() as session:
        from storage.models import Ticket

        pseudonyms = session.query(Ticket).one().pseudonyms
    assert pseudonyms and "Sommerfeld" not in json.dumps(pseudonyms)


def test_original_is_encrypted_audited_and_gone_after_the_retention_job(
    app: App, settings: Settings, config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    original = make_mail(subject="Zugang", body=GERMAN)
    deliver(app, original.as_bytes(), "orig")
    assert main(["--config", str(config_file), "tickets", "original", "LDS-1", "1"]) == 0
    out = capsys.readouterr().out
    assert "Mareike Sommerfeld (geb. 14.07.1988)" in out.replace("=\n", "")
    events = [e for e in show_events(app) if e.kind == "original-viewed"]
    assert len(events) == 1 and events[0].actor.startswith("cli:")
    assert events[0].detail == {"article": 1, "way": "cli"}  # as gateway.pipeline.disclosure

    jobs.purge_originals(app)  # within retention: nothing purged
    assert main(["--config", str(config_file), "tickets", "original", "LDS-1", "1"]) == 0
    capsys.readouterr()
    with app.db.session() as session:
        item = session.query(InboxItem).one()
        item.received_at = utcnow() - timedelta(days=settings.redaction.raw_retention_days + 1)
    jobs.purge_originals(app)
    assert main(["--config", str(config_file), "tickets", "original", "LDS-1", "1"]) == 1
    err = capsys.readouterr().err
    assert err == (
        "postdesk: error: article 1 of LDS-1 has no stored original (originals are kept 14 days)\n"
    )


def show_events(app: App) -> list:
    from storage.models import Event

    with app.db.session() as session:
        return list(session.query(Event).order_by(Event.id))
