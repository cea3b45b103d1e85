"""Deletion periods and erasure requests (issue 16, items 5 and 6): tickets made by the running
service from real SMTP mail, with an attachment and the requester's name in the signature; the
clock is moved by passing `now`. After a deletion run (or an erasure) a scan of every column of
every table (sealed values opened) and of every file under var/ (blob files opened) finds
nothing of the person, while the statistics row and the deletion record are there."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData, func, select

from gateway.app import App
from gateway.cli import main
from gateway.config import Settings
from gateway.lifecycle import retention
from gateway.lifecycle.policy import Policies, load_policies
from gateway.secrets import subject_hash
from storage.models import (
    DeletionRecord,
    ErasureRequest,
    Event,
    Participant,
    Ticket,
    TicketStatistic,
)
from storage.sealing import MARKER
from storage.tickets import TicketStore
from tests.fakes.smtp import Sink
from tests.helpers import make_mail, running, send, wait_for, write_config

ATTACHMENT = b"Bescheinigung Nr. 4711-QX fuer Erika Musterfrau, Bautzener Str. 12\n"
ATTACHMENT_MARK = b"4711-QX"
SIGNATURE = ("\n\nMit freundlichen Gruessen\nErika Musterfrau\nSachbearbeiterin\n"
             "Tel. 0351 4445556\n")


# --- building tickets through the service ---------------------------------------------------


@pytest.fixture
def service(make_settings: Callable[..., Settings], sink: Sink,
            tmp_path: Path) -> Iterator[App]:
    """The running service with SMTP out to `sink`, and a policy file: `personal` 6 months,
    `pseudo` keeps its tickets on a request (pseudonymised), defaults 2 years."""
    policy = tmp_path / "queues.yaml"
    policy.write_text(
        "defaults:\n  retention: {trigger: closed, period: 2 years, on_request: delete}\n"
        "queues:\n"
        "  personal:\n    retention: {trigger: closed, period: 6 months}\n"
        "  pseudo:\n    retention: {trigger: closed, period: 2 years,"
        " on_request: pseudonymise}\n")
    settings = make_settings(
        outgoing={"transport": "smtp", "host": "127.0.0.1", "port": sink.port,
                  "interval_seconds": 0.1},
        agents=[{"email": "anna.schmidt@example.org", "name": "Anna Schmidt"}],
        lifecycle_file=str(policy),
    )
    app = App.build(settings)
    with running(app):
        yield app


def mail_in(app: App, sender: str, subject: str, body: str, *, attachment: bytes | None = None,
            cc: str | None = None) -> Ticket:
    """Send a mail over SMTP and wait until it is a ticket (the newest one) whose mails left."""
    msg = make_mail(sender=sender, subject=subject, body=body,
                    headers={"Cc": cc} if cc else None)
    if attachment is not None:
        msg.add_attachment(attachment, maintype="application", subtype="octet-stream",
                           filename="bescheinigung.dat")
    with app.db.reading() as session:
        before = session.scalar(select(func.count(Ticket.id))) or 0
    send(app.settings, msg)

    def made() -> Ticket | None:
        with app.db.reading() as session:
            tickets = list(session.scalars(select(Ticket).order_by(Ticket.id)))
            return tickets[-1] if len(tickets) > before else None

    ticket: Ticket = wait_for(made)
    wait_for(lambda: _outbox_settled(app))
    return ticket


def _outbox_settled(app: App) -> bool:
    from storage.models import OutboxItem

    with app.db.reading() as session:
        return not session.scalar(select(func.count(OutboxItem.id))
                                  .where(OutboxItem.state.in_(("queued", "sending"))))


def close(app: App, ref: str, queue: str | None = None) -> datetime:
    """Close the ticket now (as an agent's #erledigt would); optionally move it to `queue`."""
    now = datetime.now(UTC)
    with app.db.session() as session:
        store = TicketStore(session)
        ticket = store.by_ref(ref)
        assert ticket is not None
        if queue is not None:
            ticket.queue = queue
        store.set_status(ticket, "closed", actor="anna.schmidt@example.org", now=now)
    return now


# --- the scan ---------------------------------------------------------------------------------


def traces(app: App, needles: list[bytes]) -> list[str]:
    """Where any of `needles` (compared case-insensitively) is found: every column of every
    table (sealed values opened) and every file under data_dir (sealed files opened)."""
    lowered = [n.lower() for n in needles]
    found: list[str] = []

    def look(where: str, value: Any) -> None:
        if value is None or isinstance(value, int | float | datetime):
            return
        if isinstance(value, memoryview):
            value = bytes(value)
        if isinstance(value, bytes):
            data = app.keys.sealer.unseal(value) if value.startswith(MARKER) else value
        elif isinstance(value, str):
            data = value.encode()
        else:
            data = json.dumps(value, ensure_ascii=False).encode()
        data = data.lower()
        found.extend(f"{where}: {n.decode()}" for n in lowered if n in data)

    metadata = MetaData()
    with app.db.engine.connect() as connection:
        metadata.reflect(connection)
        for table in metadata.sorted_tables:
            for row in connection.execute(table.select()):
                for column, value in row._mapping.items():
                    look(f"{table.name}.{column}", value)
    for path in sorted(app.settings.data_dir.rglob("*")):
        if path.is_file():
            look(str(path.relative_to(app.settings.data_dir)), path.read_bytes())
    return found


def table_dump(app: App) -> str:
    metadata = MetaData()
    with app.db.engine.connect() as connection:
        metadata.reflect(connection)
        return repr([(t.name, sorted(map(repr, connection.execute(t.select()))))
                     for t in metadata.sorted_tables if t.name not in ("job_runs",
                                                                       "cluster_instances",
                                                                       "cluster_leases")])


def policies(app: App) -> Policies:
    return load_policies(app.settings)


ERIKA = "Erika Musterfrau <erika.musterfrau@example.net>"
ERIKA_NEEDLES = [b"erika.musterfrau@example.net", b"Musterfrau", ATTACHMENT_MARK]


# --- deletion periods -------------------------------------------------------------------------


def test_a_deletion_run_removes_every_trace_and_keeps_statistics_and_record(
    service: App, sink: Sink, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = service
    caplog.set_level(logging.INFO)
    ticket = mail_in(app, ERIKA, "Bescheinigung fehlt",
                     "Guten Tag,\nanbei die Bescheinigung, bitte pruefen." + SIGNATURE,
                     attachment=ATTACHMENT, cc="Karl Beispiel <karl.beispiel@example.net>")
    other = mail_in(app, "Bert Keller <bert.keller@example.net>", "Monitor flackert",
                    "Hallo,\nmein Monitor flackert.\nGruss\nBert Keller\n")
    assert sink.messages  # the acknowledgements went out over SMTP
    assert traces(app, ERIKA_NEEDLES)  # the scan sees what is there
    closed = close(app, ticket.ref)

    # the day before the period is over: nothing due, and the plan changes nothing
    early = closed + timedelta(days=365 * 2 - 2)
    assert retention.due(app.db, policies(app), early) == []
    later = closed + timedelta(days=365 * 2 + 3)
    with app.db.reading() as session:
        articles = len(session.scalars(select(Ticket).where(Ticket.id == ticket.id)).one()
                       .articles)  # the request, the acknowledgement
    before = table_dump(app)
    lines = retention.plan(app.db, policies(app), later)
    assert sum(line.tickets for line in lines) == 1
    [line] = [line for line in lines if line.tickets]
    assert (line.queue, line.rule, line.trigger, line.period) == (
        ticket.queue, "defaults", "closed", "2 years")
    assert line.counts["articles"] == articles and line.counts["attachments"] == 1
    assert line.counts["originals"] == 1 and line.counts["outbox"] >= 1
    assert table_dump(app) == before

    report = retention.run(app.db, app.blobs, policies(app), later)
    assert report.refs == [ticket.ref]
    assert report.counts["blobs"] == 1
    assert f"retention.deleted ticket={ticket.ref}" in caplog.text
    ours = " ".join(r.getMessage() for r in caplog.records if r.name.startswith("postdesk"))
    assert "musterfrau" not in ours.lower()  # postdesk's log names the ref, no person

    assert traces(app, [*ERIKA_NEEDLES, b"karl.beispiel@example.net"]) == []
    with app.db.reading() as session:
        [stats] = session.scalars(select(TicketStatistic)
                                  .where(TicketStatistic.deleted_at.is_not(None)))
        assert stats.ticket_id is None and stats.channel == "smtp"  # the link is gone
        live = session.scalars(select(TicketStatistic)
                               .where(TicketStatistic.deleted_at.is_(None))).one()
        assert live.ticket_id == other.id  # Bert's ticket keeps its current row
        assert (stats.queue, stats.priority, stats.status) == (ticket.queue, "normal", "closed")
        assert stats.closed_at == closed.replace(microsecond=stats.closed_at.microsecond)
        assert stats.created_at == ticket.created_at and stats.articles == articles
        assert stats.sla_outcome == {}
        [record] = session.scalars(select(DeletionRecord))
        assert (record.ticket_ref, record.cause, record.rule, record.period) == (
            ticket.ref, "period", "defaults", "2 years")
        assert record.counts["articles"] == articles and record.counts["attachments"] == 1
        assert record.counts["originals"] == 1 and record.counts["tickets"] == 1
        [event] = session.scalars(select(Event).where(Event.kind == "ticket-deleted"))
        assert event.ticket_id is None and event.detail["ref"] == ticket.ref
        # Bert's ticket is untouched
        kept = session.scalars(select(Ticket)).one()
        assert kept.ref == other.ref and kept.requester == "bert.keller@example.net"
    assert traces(app, [b"bert.keller@example.net"])

    # a second run finds nothing; the records command lists the record
    assert retention.run(app.db, app.blobs, policies(app), later).tickets == 0
    config = write_config(tmp_path / "config.yaml", app.settings)
    assert main(["--config", str(config), "retention", "records", "--json"]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert listed["ticket"] == ticket.ref and listed["rule"] == "defaults"
    assert main(["--config", str(config), "retention", "records", "--csv"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("deleted_at,ticket,") and ticket.ref in out
    assert main(["--config", str(config), "retention", "records", "--since", "2999-01-01"]) == 0
    assert "no deletion records" in capsys.readouterr().out

    if app.settings.database.url.startswith("sqlite"):  # the file itself, log included
        database = Path(app.settings.database.url.removeprefix("sqlite:///"))
        raw = b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*")
                       if p.is_file())
        assert b"erika.musterfrau@example.net" not in raw


def test_personal_queue_goes_after_six_months_the_rest_after_two_years(
    service: App, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    app = service
    sick = mail_in(app, ERIKA, "Krankmeldung", "Guten Tag,\nich bin krankgeschrieben." + SIGNATURE)
    printer = mail_in(app, "Bert Keller <bert.keller@example.net>", "Drucker defekt",
                      "Hallo,\nder Drucker geht nicht.\nBert Keller\n")
    assert sick.queue == "personal"
    closed = close(app, sick.ref)
    close(app, printer.ref)

    seven_months = closed + timedelta(days=7 * 31)
    lines = {line.queue: line for line in retention.plan(app.db, policies(app), seven_months)}
    assert lines["personal"].tickets == 1 and lines["personal"].period == "6 months"
    assert lines["personal"].rule == "personal"
    assert sum(line.tickets for q, line in lines.items() if q != "personal") == 0
    five_months = closed + timedelta(days=5 * 30)
    assert retention.due(app.db, policies(app), five_months) == []

    # the CLI plan (real clock: nothing due yet) shows every queue, then the run at 7 months
    config = write_config(tmp_path / "config.yaml", app.settings)
    assert main(["--config", str(config), "retention", "plan"]) == 0
    out = capsys.readouterr().out
    assert "personal" in out and "6 months" in out and "nothing is due" in out
    assert main(["--config", str(config), "retention", "run"]) == 0
    assert "nothing was due" in capsys.readouterr().out

    assert retention.run(app.db, app.blobs, policies(app), seven_months).refs == [sick.ref]
    assert traces(app, ERIKA_NEEDLES) == []
    assert traces(app, [b"bert.keller@example.net"])
    two_years = closed + timedelta(days=2 * 365 + 3)
    assert retention.run(app.db, app.blobs, policies(app), two_years).refs == [printer.ref]
    with app.db.reading() as session:
        assert session.scalar(select(func.count(Ticket.id))) == 0
        assert sorted(r.rule for r in session.scalars(select(DeletionRecord))) == [
            "defaults", "personal"]
        assert session.scalar(select(func.count(TicketStatistic.id))) == 2


def test_last_activity_counts_from_the_last_change_whatever_the_status(
    make_settings: Callable[..., Settings], tmp_path: Path,
) -> None:
    from gateway.lifecycle.policy import parse_policies

    rules = parse_policies(b"defaults:\n  retention: {trigger: last_activity, period: 90 days}\n",
                           "test.yaml")
    app = App.build(make_settings())
    app.init_database()
    now = datetime.now(UTC)
    with app.db.session() as session:
        store = TicketStore(session)
        ticket = store.create_ticket(prefix="LDS", subject="x", requester="a@x.de",
                                     language="de", conversation=None, now=now)
        store.add_participant(ticket, "a@x.de", "requester")
    assert retention.due(app.db, rules, now + timedelta(days=89)) == []
    [item] = retention.due(app.db, rules, now + timedelta(days=91))
    assert item.why.trigger == "last_activity" and item.why.period == "90 days"
    app.db.dispose()


# --- erasure requests -------------------------------------------------------------------------


def test_erase_leaves_nothing_of_the_person_and_spares_an_address_containing_theirs(
    service: App, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    app = service
    mia = "Mia Sommerlich <mia@example.net>"
    tom = "Tom Winterberg <tomia@example.net>"  # contains mia@example.net
    first = mail_in(app, mia, "Antrag auf Akteneinsicht",
                    "Guten Tag,\nich bitte um Einsicht.\nMia Sommerlich\n",
                    attachment=b"Vollmacht MIA-9911 Sommerlich\n")
    kept = mail_in(app, mia, "Krankmeldung", "Hallo,\nich bin krankgeschrieben.\nMia Sommerlich\n")
    close(app, kept.ref, queue="pseudo")  # a queue whose tickets are kept: pseudonymised
    toms = mail_in(app, tom, "Schluessel verloren",
                   "Hallo,\nich habe den Schluessel verloren.\nTom Winterberg\n",
                   cc="Mia Sommerlich <MIA@example.net>")
    with app.db.reading() as session:
        assert {p.email for p in session.scalars(select(Participant).where(
            Participant.ticket_id == toms.id))} == {"tomia@example.net", "mia@example.net"}
    needles = [b"mia@example.net", b"Sommerlich", b"MIA-9911"]
    config = write_config(tmp_path / "config.yaml", app.settings)

    # the dry run says what it would do and changes nothing
    before = table_dump(app)
    assert main(["--config", str(config), "requester", "erase", "Mia@Example.net",
                 "--reason", "Antrag vom 3. Mai, Az. 12-345", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"would delete 1 ticket(s): {first.ref}" in out
    assert f"would pseudonymise 1 ticket(s): {kept.ref}" in out and "dry run" in out
    assert table_dump(app) == before

    assert main(["--config", str(config), "requester", "erase", "Mia@Example.net",
                 "--reason", "Antrag vom 3. Mai, Az. 12-345", "--json"]) == 0
    done = json.loads(capsys.readouterr().out)
    assert done["deleted"] == [first.ref] and done["pseudonymised"] == [kept.ref]
    assert done["counts"]["cc_participants"] == 1

    # nothing of Mia: neither "mia@example.net" as a whole address nor her name or file
    assert _whole_address_hits(app, "mia@example.net") == []
    assert traces(app, needles[1:]) == []
    with app.db.reading() as session:
        pseudo = session.scalars(select(Ticket).where(Ticket.ref == kept.ref)).one()
        assert pseudo.requester.endswith("@pseudonym.invalid")
        assert all(a.body == "" and not a.attachments for a in pseudo.articles)
        assert session.scalars(select(Ticket).where(Ticket.ref == first.ref)).first() is None
        # Tom's ticket and address are untouched
        tom_ticket = session.scalars(select(Ticket).where(Ticket.ref == toms.ref)).one()
        assert tom_ticket.requester == "tomia@example.net"
        assert "Schluessel" in tom_ticket.articles[0].body
        assert {p.email for p in session.scalars(select(Participant).where(
            Participant.ticket_id == toms.id))} == {"tomia@example.net"}
        [request] = session.scalars(select(ErasureRequest))
        assert request.subject_hash == subject_hash(app.keys.data_subject,
                                                            "mia@example.net")
        assert request.counts["tickets_deleted"] == 1 and request.actor.startswith("cli:")
        [event] = session.scalars(select(Event).where(Event.kind == "erased"))
        assert event.detail["request"] == request.id
        causes = sorted(r.cause for r in session.scalars(select(DeletionRecord)))
        assert causes == ["erasure", "pseudonymised"]
    assert traces(app, [b"tomia@example.net", b"Winterberg"])


def _whole_address_hits(app: App, address: str) -> list[str]:
    """Places where `address` stands as a whole address (not inside a longer one)."""
    import re

    pattern = re.compile(rb"(?<![\w.+-])" + re.escape(address.encode()) + rb"(?![\w-])",
                         re.IGNORECASE)
    found: list[str] = []
    metadata = MetaData()
    with app.db.engine.connect() as connection:
        metadata.reflect(connection)
        for table in metadata.sorted_tables:
            for row in connection.execute(table.select()):
                for column, value in row._mapping.items():
                    data = _bytes(app, value)
                    if data is not None and pattern.search(data):
                        found.append(f"{table.name}.{column}")
    for path in app.settings.data_dir.rglob("*"):
        if path.is_file() and pattern.search(_bytes(app, path.read_bytes()) or b""):
            found.append(str(path))
    return found


def _bytes(app: App, value: Any) -> bytes | None:
    if value is None or isinstance(value, int | float | datetime):
        return None
    if isinstance(value, memoryview):
        value = bytes(value)
    if isinstance(value, bytes):
        return app.keys.sealer.unseal(value) if value.startswith(MARKER) else value
    if isinstance(value, str):
        return value.encode()
    return json.dumps(value, ensure_ascii=False).encode()


def test_erase_refuses_what_is_no_address(
    make_settings: Callable[..., Settings], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    app = App.build(make_settings())
    app.init_database()
    config = write_config(tmp_path / "config.yaml", app.settings)
    assert main(["--config", str(config), "requester", "erase", "mia", "--reason", "x"]) == 1
    assert "not an e-mail address" in capsys.readouterr().err
    app.db.dispose()


# --- shared blobs and the timed job -----------------------------------------------------------


@pytest.fixture(params=["filesystem", "database"])
def quiet_app(request: pytest.FixtureRequest,
              make_settings: Callable[..., Settings]) -> Iterator[App]:
    """An app without a running service; mail goes through the worker (`drain`)."""
    from gateway.outgoing.senders import RecordingSender

    application = App.build(make_settings(blobs={"store": request.param}),
                            sender=RecordingSender())
    application.init_database()
    yield application
    application.db.dispose()


def deliver(app: App, sender: str, key: str, attachment: bytes) -> Ticket:
    from storage import spool

    msg = make_mail(sender=sender, subject=f"Formular {key}", body="Anbei das Formular.\n")
    msg.add_attachment(attachment, maintype="application", subtype="octet-stream",
                       filename="formular.dat")
    with app.db.session() as session:
        spool.add_inbox_items(session, [spool.NewInboxItem(
            source="smtp", source_key=key, raw=msg.as_bytes(), envelope_from=sender)])
    [outcome] = app.worker.drain()
    assert outcome.state == "done"
    with app.db.reading() as session:
        newest = session.scalars(select(Ticket).order_by(Ticket.id.desc())).first()
    assert newest is not None
    return newest


def test_a_blob_shared_by_two_tickets_stays_until_the_last_one_goes(quiet_app: App) -> None:
    app = quiet_app
    shared = b"the same form, sent by two people FORM-5150\n"
    one = deliver(app, "a@x.de", "1", shared)
    two = deliver(app, "ba@x.de", "2", shared)
    address = app.blobs.address(shared)
    assert app.blobs.get(address) == shared
    later = close(app, one.ref) + timedelta(days=3 * 365)
    assert retention.run(app.db, app.blobs, policies(app), later).counts["blobs"] == 0
    assert app.blobs.get(address) == shared  # ba@x.de's ticket still has it
    close(app, two.ref)
    assert retention.run(app.db, app.blobs, policies(app), later).counts["blobs"] == 1
    assert traces(app, [b"FORM-5150", b"a@x.de"]) == []


def test_the_deletion_job_is_a_leader_only_timed_job(
    quiet_app: App, tmp_path: Path,
) -> None:
    from gateway.jobs import tasks
    from gateway.jobs.scheduler import timed_jobs

    app = quiet_app
    [job] = [job for job in timed_jobs(app, lambda: None) if job.name == "deletion"]
    assert job.leader_only and job.seconds == app.settings.jobs.deletion_interval_seconds
    ticket = deliver(app, "a@x.de", "1", b"FORM-5150")
    close(app, ticket.ref)
    with app.db.session() as session:  # closed three years ago
        row = session.get(Ticket, ticket.id)
        assert row is not None
        row.closed_at = datetime.now(UTC) - timedelta(days=3 * 365)
    tasks.delete_expired(app)
    with app.db.reading() as session:
        assert session.get(Ticket, ticket.id) is None
        [record] = session.scalars(select(DeletionRecord))
        assert record.actor == "system" and record.rule == "defaults"
