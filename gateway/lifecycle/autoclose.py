"""The auto-close job (per queue, `auto_close:` in the policy file): a `pending` ticket whose
requester has not answered for `pending_reminder_days` business days gets one friendly
reminder; after `pending_resolve_days` it is resolved with the usual status mail; a resolved
ticket is closed `close_after_days` calendar days after it was resolved (closed is final: a
later reply opens a linked ticket).

Each step is claimed like the SLA reminders (storage.sla.claim, keyed by the moment the ticket
entered its status), so it happens once per pending or resolved spell, whatever the number of
instances or restarts. After downtime the latest due step is taken, not every missed one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway import logs
from gateway.lifecycle import clocks, tally
from gateway.lifecycle.clocks import Lifecycle
from gateway.lifecycle.reminders import LetterMaker
from gateway.outgoing.letters import PENDING_REMINDER, STATUS_TEMPLATES, Letters
from storage import sla
from storage.engine import Database
from storage.models import Ticket
from storage.tickets import TicketStore

ACTOR = "system:auto-close"


@dataclass
class Report:
    reminded: int = 0
    resolved: int = 0
    closed: int = 0


def run(db: Database, lifecycle: Lifecycle, letters: LetterMaker, *, now: datetime) -> Report:
    """One pass over pending and resolved tickets; each ticket in its own transaction."""
    report = Report()
    with db.reading() as session:
        ids = sla.in_status(session, ("pending", "resolved"))
    for ticket_id in ids:
        with db.session() as session:
            store = TicketStore(session)
            ticket = store.by_id(ticket_id)
            if ticket is None:
                continue
            before = tally.snapshot(ticket)
            if ticket.status == "pending":
                _pending(lifecycle, store, letters(store), ticket, now, report)
            elif ticket.status == "resolved":
                _resolved(lifecycle, store, ticket, now, report)
            tally.keep(session, lifecycle, ticket, before)
    if report.reminded or report.resolved or report.closed:
        logs.event("autoclose.run", reminded=report.reminded, resolved=report.resolved,
                   closed=report.closed)
    return report


def _since(ticket: Ticket) -> datetime:
    return ticket.status_changed_at or ticket.updated_at


def _pending(lifecycle: Lifecycle, store: TicketStore, letters: Letters, ticket: Ticket,
             now: datetime, report: Report) -> None:
    policy = lifecycle.policy(ticket.queue).auto_close
    since = _since(ticket)
    waited = lifecycle.calendar(ticket.queue).business_days_between(since, now)
    if policy.pending_resolve_days is not None and waited >= policy.pending_resolve_days:
        if sla.claim(store.session, ticket, clock="pending", kind="resolve", due_at=since,
                     now=now):
            store.set_status(ticket, "resolved", actor=ACTOR, now=now)
            clocks.refresh(lifecycle, ticket, now)
            letters.requester_mail(ticket, template=STATUS_TEMPLATES["resolved"], now=now,
                                   automatic=True)
            store.add_event(ticket, actor=ACTOR, kind="auto-resolved", now=now,
                            business_days=waited)
            report.resolved += 1
            logs.event("autoclose.resolved", ticket=ticket.ref)
        return
    due = policy.pending_reminder_days is not None and waited >= policy.pending_reminder_days
    if due and sla.claim(store.session, ticket, clock="pending", kind="reminder", due_at=since,
                         now=now):
        letters.requester_mail(ticket, template=PENDING_REMINDER, now=now, automatic=True)
        store.add_event(ticket, actor=ACTOR, kind="pending-reminder", now=now,
                        business_days=waited)
        report.reminded += 1
        logs.event("autoclose.reminded", ticket=ticket.ref)


def _resolved(lifecycle: Lifecycle, store: TicketStore, ticket: Ticket, now: datetime,
              report: Report) -> None:
    days = lifecycle.policy(ticket.queue).auto_close.close_after_days
    since = ticket.resolved_at or _since(ticket)
    if days is None or now - since < timedelta(days=days):
        return
    if sla.claim(store.session, ticket, clock="resolved", kind="close", due_at=since, now=now):
        store.set_status(ticket, "closed", actor=ACTOR, now=now)
        clocks.refresh(lifecycle, ticket, now)
        report.closed += 1
        logs.event("autoclose.closed", ticket=ticket.ref)
