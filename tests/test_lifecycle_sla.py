"""SLA clocks, reminders, escalation and auto-close with a controllable clock: the job
functions take `now`, tickets are created at a chosen moment. Mail leaves through the real
outbox to an SMTP sink on loopback."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from gateway.app import App
from gateway.config import Settings
from gateway.lifecycle import autoclose, clocks, reminders
from gateway.lifecycle.clocks import Lifecycle
from gateway.outgoing import outbox
from gateway.outgoing.letters import Letters
from gateway.pipeline import actions
from storage import sla, spool
from storage.models import Event, OutboxItem, Ticket
from storage.tickets import TicketFilter, TicketStore
from tests.fakes.smtp import Sink
from tests.helpers import make_mail, started

BERLIN = ZoneInfo("Europe/Berlin")
POLICY = """
defaults:
  calendar: default
  sla:
    remind_at: 0.75
    priorities:
      normal: {first_response: 4h, next_update: 8h, solution: 40h}
      high:   {first_response: 2h, solution: 16h}
  auto_close: {pending_reminder_days: 2, pending_resolve_days: 4, close_after_days: 3}
"""
BEN, ANNA = "ben.mueller@example.org", "anna.schmidt@example.org"


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)  # type: ignore[misc]


@pytest.fixture
def sla_settings(make_settings: Callable[..., Settings], tmp_path: Path, sink: Sink
                 ) -> Settings:
    policy = tmp_path / "queues.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    return make_settings(lifecycle_file=str(policy),
                         outgoing={"transport": "smtp", "host": "127.0.0.1",
                                   "port": sink.port})


@pytest.fixture
def app(sla_settings: Settings) -> Iterator[App]:
    application = started(sla_settings)
    yield application
    application.db.dispose()


def letters_of(app: App) -> Callable[[TicketStore], Letters]:
    return lambda store: Letters(app.settings, app.renderer, store,
                                 proof_key=app.worker.proof_key)


def remind(app: App, now: datetime) -> reminders.Report:
    return reminders.run(app.db, app.settings, app.worker.lifecycle, letters_of(app), now=now)


def close(app: App, now: datetime) -> autoclose.Report:
    return autoclose.run(app.db, app.worker.lifecycle, letters_of(app), now=now)


def new_ticket(app: App, at: datetime, *, owner: str | None = BEN,
               priority: str = "normal") -> int:
    """A ticket that arrived `at` (as the record stage opens one: clocks in its INSERT)."""
    with app.db.session() as session:
        store = TicketStore(session)
        ticket = store.create_ticket(
            prefix="LDS", subject="Drucker defekt", requester="erika.muster@example.net",
            language="de", conversation=None, now=at, owner=owner, priority=priority,
            clocks=clocks.initial(app.worker.lifecycle, queue=None, priority=priority, now=at))
        store.add_participant(ticket, "erika.muster@example.net", "requester")
        return ticket.id


def ticket(app: App, ticket_id: int) -> Ticket:
    with app.db.reading() as session:
        found = session.get(Ticket, ticket_id)
        assert found is not None
        session.expunge(found)
        return found


def outgoing(app: App, kind: str) -> list[OutboxItem]:
    with app.db.reading() as session:
        return list(session.scalars(select(OutboxItem).where(OutboxItem.kind == kind)
                                    .order_by(OutboxItem.id)))


def test_the_pipeline_starts_the_clocks_of_a_new_ticket(app: App) -> None:
    with app.db.session() as session:
        spool.add_inbox_items(session, [spool.NewInboxItem(
            source="smtp", source_key="k1", raw=make_mail().as_bytes(),
            envelope_from="erika.muster@example.net", envelope_to=("servicedesk@example.org",))])
    [outcome] = app.worker.drain()
    assert outcome.ticket_id is not None
    made = ticket(app, outcome.ticket_id)
    calendar = app.worker.lifecycle.calendar(made.queue)
    assert made.first_response_due_at == calendar.add(made.created_at, 4 * 60)
    assert made.solution_due_at == calendar.add(made.created_at, 40 * 60)
    assert made.update_due_at is None and made.sla_basis == f"{made.queue or ''}/normal"


def test_reminder_at_75_and_escalation_at_100_each_once_across_restarts(
    app: App, sla_settings: Settings, sink: Sink
) -> None:
    # Friday 13 Nov 2026 15:00, 4 business hours: due Monday 16 Nov 11:00, reminder at 10:00
    ticket_id = new_ticket(app, local(2026, 11, 13, 15, 0))
    assert ticket(app, ticket_id).first_response_due_at == local(2026, 11, 16, 11, 0)

    assert remind(app, local(2026, 11, 16, 9, 59)).reminders == 0
    assert remind(app, local(2026, 11, 16, 10, 0)).reminders == 1
    assert remind(app, local(2026, 11, 16, 10, 1)).reminders == 0
    restarted = started(sla_settings)  # a restart: a new App on the same database
    assert remind(restarted, local(2026, 11, 16, 10, 30)).reminders == 0
    report = remind(restarted, local(2026, 11, 16, 11, 0))
    assert (report.reminders, report.escalations) == (0, 1)
    again = started(sla_settings)
    assert remind(again, local(2026, 11, 16, 11, 30)).escalations == 0

    [reminder] = outgoing(app, "agent-sla-reminder")
    assert reminder.envelope_to == [BEN]
    escalations = outgoing(app, "agent-sla-escalation")
    assert sorted(e.envelope_to[0] for e in escalations) == [ANNA, BEN]  # lead of "it", owner
    done = ticket(app, ticket_id)
    assert "escalated" in done.tags and done.sla_outcome == {"first_response": "missed"}
    with app.db.reading() as session:
        kinds = [e.kind for e in session.scalars(select(Event).where(Event.ticket_id == ticket_id))]
    assert kinds.count("escalated") == 1 and kinds.count("sla-reminder") == 1

    outbox.deliver_due(app.db, app.sender, app.settings)  # real SMTP to the sink
    subjects = sorted(str(m["Subject"]) for m in sink.parsed())
    assert len(subjects) == 3
    assert sum("Erinnerung" in s for s in subjects) == 1
    assert sum("Eskalation" in s for s in subjects) == 2
    assert all("16.11.2026" in s or "2026-11-16" in s or "11:00" in s for s in subjects)
    for restarted_app in (restarted, again):
        restarted_app.db.dispose()


def test_after_downtime_only_the_escalation_goes_out(app: App) -> None:
    ticket_id = new_ticket(app, local(2026, 11, 17, 15, 0))  # due Thu 19 Nov 11:00 (Bettag)
    assert ticket(app, ticket_id).first_response_due_at == local(2026, 11, 19, 11, 0)
    report = remind(app, local(2026, 11, 19, 14, 0))  # down since before the reminder
    assert (report.reminders, report.escalations) == (0, 1)
    assert outgoing(app, "agent-sla-reminder") == []
    assert remind(app, local(2026, 11, 19, 15, 0)).escalations == 0


def test_unowned_ticket_reminds_the_team_agents_or_dispatchers(app: App) -> None:
    new_ticket(app, local(2026, 11, 16, 8, 0), owner=None)
    assert remind(app, local(2026, 11, 16, 11, 0)).reminders == 1
    [row] = outgoing(app, "agent-sla-reminder") or [None]
    assert row is not None or app.settings.dispatchers() == []


def test_pending_pauses_the_solution_clock_and_priority_recomputes(app: App) -> None:
    lc: Lifecycle = app.worker.lifecycle
    ticket_id = new_ticket(app, local(2026, 11, 16, 8, 0))
    # 40 business hours from Mon 16 Nov 8:00: Mon, Tue, (Wed Bettag), Thu, Fri, Mon 23 → 16:00
    assert ticket(app, ticket_id).solution_due_at == local(2026, 11, 23, 16, 0)
    with app.db.session() as session:
        store = TicketStore(session)
        found = store.by_id(ticket_id)
        assert found is not None
        at = local(2026, 11, 16, 12, 0)
        actions.set_status(store, found, "pending", actor="test", now=at)
        clocks.refresh(lc, found, at)
        assert found.solution_due_at is None
        at = local(2026, 11, 17, 12, 0)  # 8 business hours later
        actions.set_status(store, found, "open", actor="test", now=at)
        clocks.refresh(lc, found, at)
        assert found.solution_paused_minutes == 8 * 60
        assert found.solution_due_at == local(2026, 11, 24, 16, 0)
        clocks.requester_wrote(lc, found, at)  # the update clock starts: 8 h → Thu 19 12:00
        assert found.update_due_at == local(2026, 11, 19, 12, 0)
        clocks.answered(lc, found, local(2026, 11, 17, 13, 0))
        assert found.update_due_at is None and found.first_response_due_at is None
        assert found.sla_outcome == {"first_response": "missed", "update": "met"}
        actions.set_priority(store, found, "high", actor="test", now=at)
        clocks.refresh(lc, found, at)
        # high: 16 h solution + 8 h paused = 24 h from Mon 8:00 → Thu 19 16:00
        assert found.solution_due_at == local(2026, 11, 19, 16, 0)
    with app.db.reading() as session:
        store = TicketStore(session)
        overdue = TicketFilter(overdue_at=local(2026, 11, 20, 9, 0))
        assert [t.id for t in store.list_tickets(overdue)] == [ticket_id]
        assert store.list_tickets(TicketFilter(due_before=local(2026, 11, 19, 15, 0))) == []


def test_pending_reminder_resolve_and_close_on_the_configured_days(app: App, sink: Sink
                                                                   ) -> None:
    lc: Lifecycle = app.worker.lifecycle
    ticket_id = new_ticket(app, local(2026, 11, 16, 8, 0))
    with app.db.session() as session:
        store = TicketStore(session)
        found = store.by_id(ticket_id)
        assert found is not None
        at = local(2026, 11, 16, 10, 0)  # Monday
        actions.set_status(store, found, "pending", actor="test", now=at)
        clocks.refresh(lc, found, at)
    # business days after Monday: Tue 17 (1), Wed 18 Bettag, Thu 19 (2), Fri 20 (3), Mon 23 (4)
    assert close(app, local(2026, 11, 18, 12, 0)).reminded == 0
    assert close(app, local(2026, 11, 19, 9, 0)).reminded == 1
    assert close(started(app.settings), local(2026, 11, 20, 9, 0)).reminded == 0  # once only
    assert close(app, local(2026, 11, 20, 23, 0)).resolved == 0
    report = close(app, local(2026, 11, 23, 8, 0))
    assert report.resolved == 1
    resolved = ticket(app, ticket_id)
    assert resolved.status == "resolved" and resolved.sla_outcome.get("solution") == "met"
    assert close(app, local(2026, 11, 26, 7, 59)).closed == 0  # 3 calendar days not yet over
    assert close(app, local(2026, 11, 26, 8, 0)).closed == 1
    assert close(app, local(2026, 11, 27, 8, 0)).closed == 0
    closed = ticket(app, ticket_id)
    assert closed.status == "closed" and closed.closed_at == local(2026, 11, 26, 8, 0)
    assert [r.envelope_to for r in outgoing(app, "requester-pending-reminder")] == [
        ["erika.muster@example.net"]]
    assert len(outgoing(app, "requester-solved")) == 1
    outbox.deliver_due(app.db, app.sender, app.settings)
    assert len(sink.messages) == 2
    with app.db.reading() as session:
        assert [n.kind for n in sla.notices(session, ticket_id)] == ["reminder", "resolve",
                                                                     "close"]


def test_two_instances_send_each_reminder_once(sla_settings: Settings) -> None:
    if not sla_settings.database.url.startswith("postgresql"):
        pytest.skip("two instances share one PostgreSQL database")
    first, second = started(sla_settings), started(sla_settings)
    ids = [new_ticket(first, local(2026, 11, 13, 15, 0)) for _ in range(20)]
    barrier = threading.Barrier(2)
    reports: list[reminders.Report] = []
    errors: list[BaseException] = []

    def run(instance: App, now: datetime) -> None:
        try:
            barrier.wait()
            reports.append(remind(instance, now))
        except BaseException as exc:  # reported by the test below
            errors.append(exc)

    for now in (local(2026, 11, 16, 10, 0), local(2026, 11, 16, 11, 0)):
        threads = [threading.Thread(target=run, args=(a, now)) for a in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert errors == []
    assert sum(r.reminders for r in reports) == len(ids)
    assert sum(r.escalations for r in reports) == len(ids)
    assert len(outgoing(first, "agent-sla-reminder")) == len(ids)
    assert len(outgoing(first, "agent-sla-escalation")) == 2 * len(ids)
    for instance in (first, second):
        instance.db.dispose()


def test_notices_are_unique_per_clock_run(app: App) -> None:
    ticket_id = new_ticket(app, local(2026, 11, 13, 15, 0))
    due = local(2026, 11, 16, 11, 0)
    with app.db.session() as session:
        found = session.get(Ticket, ticket_id)
        assert found is not None
        now = due - timedelta(hours=1)
        assert sla.claim(session, found, clock="first_response", kind="reminder", due_at=due,
                         now=now)
        assert not sla.claim(session, found, clock="first_response", kind="reminder",
                             due_at=due, now=now)
        assert sla.claim(session, found, clock="first_response", kind="reminder",
                         due_at=due + timedelta(hours=2), now=now)  # a new run: a new due


def test_cli_lists_overdue_tickets_and_shows_due_times(
    app: App, sla_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from gateway.cli import main
    from tests.helpers import write_config

    late = new_ticket(app, local(2026, 11, 13, 15, 0))
    new_ticket(app, datetime.now(BERLIN) + timedelta(days=30))  # due long after now
    config = write_config(tmp_path / "config.yaml", sla_settings)
    assert main(["--config", str(config), "tickets", "list", "--overdue", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [t["ref"] for t in listed] == [ticket(app, late).ref]
    assert listed[0]["sla"]["first_response_due_at"].startswith("2026-11-16T10:00")  # UTC
    assert main(["--config", str(config), "tickets", "list", "--due-before",
                 "2026-11-16 11:01"]) == 0
    out = capsys.readouterr().out
    assert "DUE" in out and "2026-11-16 11:00" in out and out.count("LDS-") == 1
    assert main(["--config", str(config), "tickets", "show", ticket(app, late).ref]) == 0
    assert "first response 2026-11-16 11:00" in capsys.readouterr().out
    assert main(["--config", str(config), "tickets", "list", "--due-before", "morgen"]) == 1
