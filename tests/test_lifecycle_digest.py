"""Morning digests with a controllable clock: the job function takes `now`, tickets are made at
a chosen moment. One digest per person and business day across restarts and instances; mail
leaves through the real outbox to an SMTP sink on loopback."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import date, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from gateway.app import App
from gateway.config import Settings
from gateway.errors import ConfigError
from gateway.jobs.scheduler import timed_jobs
from gateway.lifecycle import clocks, digest
from gateway.outgoing import outbox
from gateway.outgoing.letters import Letters
from storage import digests
from storage.models import OutboxItem
from storage.tickets import TicketStore
from tests.fakes.smtp import Sink
from tests.helpers import started

BERLIN = ZoneInfo("Europe/Berlin")
POLICY = """
defaults:
  calendar: default
  sla:
    remind_at: 0.75
    priorities:
      normal: {first_response: 4h, solution: 40h}
"""
ANNA, BEN, CARLA = "anna.schmidt@example.org", "ben.mueller@example.org", "carla.c@example.org"
REQUESTER = "erika.muster@example.net"
AGENTS = [
    {"email": ANNA, "name": "Anna Schmidt", "teams": ["it"]},  # lead of "it"
    {"email": BEN, "name": "Ben Müller", "teams": ["it", "fachverfahren"]},
    {"email": CARLA, "name": "Carla Cordes", "teams": ["it"], "digest": False},
]


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)  # type: ignore[misc]


MONDAY = local(2026, 11, 16, 7, 30)


@pytest.fixture
def digest_settings(make_settings: Callable[..., Settings], tmp_path: Path, sink: Sink
                    ) -> Settings:
    policy = tmp_path / "queues.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    return make_settings(lifecycle_file=str(policy), agents=AGENTS,
                         digests={"at": "07:30", "calendar": "default"},
                         outgoing={"transport": "smtp", "host": "127.0.0.1",
                                   "port": sink.port})


@pytest.fixture
def app(digest_settings: Settings) -> Iterator[App]:
    application = started(digest_settings)
    yield application
    application.db.dispose()


def send(app: App, now: datetime) -> digest.Report:
    def letters(store: TicketStore) -> Letters:
        return Letters(app.settings, app.renderer, store, proof_key=app.worker.proof_key)

    return digest.run(app.db, app.settings, app.worker.lifecycle.calendars, letters, now=now)


def new_ticket(app: App, at: datetime, *, owner: str | None = BEN, subject: str = "Drucker",
               team: str | None = None, escalated: bool = False, sla: bool = True) -> str:
    with app.db.session() as session:
        store = TicketStore(session)
        ticket = store.create_ticket(
            prefix="LDS", subject=subject, requester=REQUESTER, language="de",
            conversation=None, now=at, owner=owner, tags=["escalated"] if escalated else [],
            clocks=clocks.initial(app.worker.lifecycle, queue=None, priority="normal", now=at)
            if sla else None)
        store.add_participant(ticket, REQUESTER, "requester")
        if team is not None:
            store.add_event(ticket, actor="system", kind="routed", now=at, team=team)
        return ticket.ref


def digest_rows(app: App) -> list[OutboxItem]:
    with app.db.reading() as session:
        return list(session.scalars(select(OutboxItem).where(OutboxItem.kind == "agent-digest")
                                    .order_by(OutboxItem.id)))


def mail_to(app: App, agent: str) -> EmailMessage:
    from email import policy
    from email.parser import BytesParser

    [row] = [r for r in digest_rows(app) if r.envelope_to == [agent]]
    message = BytesParser(policy=policy.default).parsebytes(row.raw)
    assert isinstance(message, EmailMessage)
    return message


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def test_monday_digest_goes_out_once_across_runs_and_restarts(
        app: App, digest_settings: Settings) -> None:
    new_ticket(app, local(2026, 11, 13, 15, 0))  # first response due Mon 16 Nov 11:00
    assert send(app, local(2026, 11, 16, 7, 29)).day is None  # not yet
    report = send(app, MONDAY)
    assert (report.day, report.sent) == (date(2026, 11, 16), 2)  # Anna (lead) and Ben
    assert send(app, local(2026, 11, 16, 7, 35)).sent == 0
    restarted = started(digest_settings)
    try:
        again = send(restarted, local(2026, 11, 16, 9, 0))
        assert (again.sent, again.taken) == (0, 0)  # the day's rows are read, not retried
    finally:
        restarted.db.dispose()
    assert sorted(row.envelope_to[0] for row in digest_rows(app)) == [ANNA, BEN]
    with app.db.reading() as session:
        assert [(s.recipient, s.day) for s in digests.sends(session)] == [
            (ANNA, "2026-11-16"), (BEN, "2026-11-16")]


def test_holidays_and_weekends_send_nothing(app: App) -> None:
    new_ticket(app, local(2026, 11, 13, 15, 0))
    assert send(app, local(2026, 11, 18, 8, 0)).day is None  # Buß- und Bettag (Saxony)
    assert send(app, local(2026, 11, 21, 8, 0)).day is None  # Saturday
    assert send(app, local(2026, 11, 22, 8, 0)).day is None  # Sunday
    assert send(app, local(2026, 12, 24, 8, 0)).day is None  # a configured closed day
    assert digest_rows(app) == []
    assert send(app, local(2026, 11, 19, 8, 0)).sent == 2  # Thursday: a business day


def test_catch_up_sends_today_late_but_never_an_earlier_day(app: App) -> None:
    new_ticket(app, local(2026, 11, 13, 15, 0))
    # down all Monday; Tuesday before 07:30 nothing (Monday's is not sent late) …
    assert send(app, local(2026, 11, 17, 7, 0)).day is None
    # … and at 15:00 Tuesday's goes out, once
    report = send(app, local(2026, 11, 17, 15, 0))
    assert (report.day, report.sent) == (date(2026, 11, 17), 2)
    assert send(app, local(2026, 11, 17, 23, 59)).sent == 0
    with app.db.reading() as session:
        assert {s.day for s in digests.sends(session)} == {"2026-11-17"}


def test_opted_out_agent_gets_nothing(app: App) -> None:
    new_ticket(app, local(2026, 11, 13, 15, 0), owner=CARLA)
    send(app, MONDAY)
    recipients = [row.envelope_to[0] for row in digest_rows(app)]
    assert CARLA not in recipients
    assert recipients == [ANNA]  # the lead still sees Carla's ticket in the team backlog


def test_nothing_open_sends_nothing(app: App) -> None:
    report = send(app, MONDAY)
    assert (report.sent, report.empty) == (0, 2)
    assert digest_rows(app) == []
    new_ticket(app, local(2026, 11, 16, 9, 0))  # a ticket later that day: tomorrow's digest
    assert send(app, local(2026, 11, 16, 10, 0)).sent == 0


def test_switched_off_sends_nothing_and_no_job(make_settings: Callable[..., Settings],
                                               tmp_path: Path) -> None:
    for digests_config in (None, {"enabled": False}):
        extra: dict[str, Any] = {} if digests_config is None else {"digests": digests_config}
        settings = make_settings(agents=AGENTS, **extra)
        application = started(settings)
        try:
            new_ticket(application, local(2026, 11, 13, 15, 0))
            assert send(application, MONDAY).day is None
            names = [job.name for job in timed_jobs(application, lambda: None)]
            assert "digest" not in names
        finally:
            application.db.dispose()


def test_the_digest_job_is_declared_leader_only(app: App) -> None:
    [job] = [job for job in timed_jobs(app, lambda: None) if job.name == "digest"]
    assert job.leader_only and job.seconds == 300


def test_agent_sections_and_lead_backlog_with_escalations(app: App) -> None:
    overdue = new_ticket(app, local(2026, 11, 12, 9, 0), subject="Server steht")  # Thu 13:00
    today = new_ticket(app, local(2026, 11, 13, 15, 0), subject="Drucker defekt")  # Mon 11:00
    later = new_ticket(app, local(2026, 11, 16, 7, 0), owner=None, team="it",
                       subject="Neuer Zugang", escalated=True)  # unowned, team it
    other = new_ticket(app, local(2026, 11, 16, 7, 0), owner=None, team="fachverfahren",
                       subject="Fachverfahren")
    no_clock = new_ticket(app, local(2026, 11, 10, 9, 0), subject="Ohne Frist", sla=False)
    send(app, MONDAY)

    ben = text_of(mail_to(app, BEN))
    assert ben.index("Überfällig (1)") < ben.index(overdue) < ben.index("Heute fällig (1)")
    assert ben.index("Heute fällig (1)") < ben.index(today) < ben.index("Weitere offene")
    assert ben.index("Weitere offene Tickets (1)") < ben.index(no_clock)
    assert "16.11.2026, 11:00 Uhr" in ben  # due time in local time
    assert "Team" not in ben and later not in ben and other not in ben
    assert REQUESTER not in ben and "erika" not in ben.lower()

    lead = mail_to(app, ANNA)
    subject = str(lead["Subject"])
    assert subject.startswith("Tagesübersicht 16.11.2026: 0 überfällig")
    assert "Team: 4 offen, 1 eskaliert" in subject
    body = text_of(lead)
    escalations = body[body.index("Eskaliert (1)"):body.index("Offene Tickets des Teams")]
    assert later in escalations and "Neuer Zugang" in escalations and today not in escalations
    backlog = body[body.index("Offene Tickets des Teams (4)"):]
    for ref in (overdue, today, later, no_clock):
        assert ref in backlog
    assert other not in body  # another team's ticket
    assert "zuständig: Ben Müller" in backlog and "zuständig: noch niemand" in backlog
    assert REQUESTER not in lead.as_string()


def test_a_custom_calendar_and_time(make_settings: Callable[..., Settings], tmp_path: Path
                                    ) -> None:
    settings = make_settings(
        agents=AGENTS, digests={"at": "06:00", "calendar": "weekend"},
        calendars={"weekend": {"hours": {"sat": "08:00-12:00"}, "holidays": None}})
    application = started(settings)
    try:
        new_ticket(application, local(2026, 11, 13, 15, 0), sla=False)
        assert send(application, local(2026, 11, 16, 8, 0)).day is None  # Monday: closed
        assert send(application, local(2026, 11, 21, 5, 59)).day is None
        assert send(application, local(2026, 11, 21, 6, 0)).sent == 2  # Saturday 06:00
    finally:
        application.db.dispose()


def test_bad_digest_config_is_refused(make_settings: Callable[..., Settings]) -> None:
    with pytest.raises(ConfigError, match=r"digests\.at: .*expected HH:MM"):
        make_settings(digests={"at": "7.30"})
    with pytest.raises(ConfigError, match=r"digests\.calendar: unknown calendar"):
        make_settings(digests={"calendar": "nope"})


def test_delivered_through_the_outbox_to_the_smtp_sink(app: App, sink: Sink) -> None:
    ref = new_ticket(app, local(2026, 11, 13, 15, 0), subject="Drucker im 3. OG")
    send(app, MONDAY)
    report = outbox.deliver_due(app.db, app.sender, app.settings)
    assert report.sent == 2
    mails = {str(m["To"]): m for m in sink.parsed()}
    assert len(mails) == 2
    ben = next(m for to, m in mails.items() if BEN in to)
    assert str(ben["Subject"]) == (
        "Tagesübersicht 16.11.2026: 0 überfällig, 1 heute fällig, 1 offen")
    assert str(ben["Auto-Submitted"]).startswith("auto-")
    assert ben["Message-ID"] is not None
    raw = ben.as_string()
    assert ref in raw and REQUESTER not in raw
    html = ben.get_body(("html",))
    assert html is not None and ref in str(html.get_content())
    assert send(app, local(2026, 11, 16, 12, 0)).sent == 0
    outbox.deliver_due(app.db, app.sender, app.settings)
    assert len(sink.messages) == 2


def test_two_instances_send_each_digest_once(digest_settings: Settings) -> None:
    if not digest_settings.database.url.startswith("postgresql"):
        pytest.skip("two instances share one PostgreSQL database")
    first, second = started(digest_settings), started(digest_settings)
    new_ticket(first, local(2026, 11, 13, 15, 0))
    barrier = threading.Barrier(2)
    reports: list[digest.Report] = []
    errors: list[BaseException] = []

    def run(instance: App) -> None:
        try:
            barrier.wait()
            reports.append(send(instance, MONDAY))
        except BaseException as exc:  # reported by the test below
            errors.append(exc)

    for _ in range(3):
        threads = [threading.Thread(target=run, args=(a,)) for a in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert errors == []
    assert sum(r.sent for r in reports) == 2
    assert sorted(row.envelope_to[0] for row in digest_rows(first)) == [ANNA, BEN]
    for instance in (first, second):
        instance.db.dispose()


def test_a_digest_is_claimed_once_per_person_and_day(app: App) -> None:
    now = MONDAY
    with app.db.session() as session:
        assert digests.claim(session, BEN, date(2026, 11, 16), tickets=1, now=now)
        assert not digests.claim(session, BEN, date(2026, 11, 16), tickets=1, now=now)
        assert digests.claim(session, ANNA, date(2026, 11, 16), tickets=0, now=now)
        assert digests.claim(session, BEN, date(2026, 11, 17), tickets=1, now=now)


def test_the_retention_job_forgets_digest_claims_after_a_week(app: App) -> None:
    """The claims name staff addresses and matter only on their day."""
    from datetime import timedelta

    from storage.retention import purge_digest_log

    new_ticket(app, local(2026, 11, 13, 15, 0))
    assert send(app, MONDAY).sent == 2
    with app.db.session() as session:
        assert purge_digest_log(session, MONDAY) == 0  # still the week of the digest
        assert purge_digest_log(session, MONDAY + timedelta(days=8)) == 2
    with app.db.reading() as session:
        assert digests.sends(session) == []
