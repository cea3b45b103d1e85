"""The SLA job: at the policy's `remind_at` share of a clock's time the owner (or, while nobody
owns the ticket, its team's agents) gets a reminder; when the clock's due moment passes, the
team lead and the owner get an escalation, and the ticket the tag and event `escalated`.

Each step is taken at most once per clock run (storage.sla.claim, in the transaction that
queues the mail), so a restart or a second instance sends nothing twice. After downtime a
clock whose due moment has passed gets only its escalation, never a stale reminder first."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from gateway import logs
from gateway.config import Settings
from gateway.lifecycle import clocks, tally
from gateway.lifecycle.clocks import Lifecycle
from gateway.outgoing.letters import SLA_ESCALATION, SLA_REMINDER, Letters
from storage import sla
from storage.engine import Database
from storage.models import Ticket
from storage.tickets import TicketStore

LetterMaker = Callable[[TicketStore], Letters]  # the job's mail service in one transaction


@dataclass
class Report:
    reminders: int = 0
    escalations: int = 0
    mails: int = 0
    refs: list[str] = field(default_factory=list)  # tickets escalated in this run


def run(db: Database, settings: Settings, lifecycle: Lifecycle, letters: LetterMaker, *,
        now: datetime) -> Report:
    """One pass over the tickets with running clocks; each ticket in its own transaction."""
    report = Report()
    with db.reading() as session:
        ids = sla.running_clocks(session)
    for ticket_id in ids:
        with db.session() as session:
            store = TicketStore(session)
            ticket = store.by_id(ticket_id)
            if ticket is not None:
                before = tally.snapshot(ticket)
                _check(settings, lifecycle, store, letters(store), ticket, now, report)
                tally.keep(session, lifecycle, ticket, before)  # a miss is a figure
    if report.reminders or report.escalations:
        logs.event("sla.run", reminders=report.reminders, escalations=report.escalations,
                   mails=report.mails)
    return report


def _check(settings: Settings, lifecycle: Lifecycle, store: TicketStore, letters: Letters,
           ticket: Ticket, now: datetime, report: Report) -> None:
    share = lifecycle.policy(ticket.queue).sla.remind_at
    for clock in clocks.CLOCKS:
        due = getattr(ticket, clocks.DUE[clock])
        if due is None:
            continue
        if now >= due:
            if sla.claim(store.session, ticket, clock=clock, kind="escalation", due_at=due,
                         now=now):
                _escalate(settings, store, letters, ticket, clock, due, now, report)
            continue
        remind = clocks.moment(lifecycle, ticket, clock, share)
        if remind is not None and now >= remind and sla.claim(
                store.session, ticket, clock=clock, kind="reminder", due_at=due, now=now):
            recipients = _owner_or_team(settings, store, ticket)
            for agent in recipients:
                letters.sla_notice(ticket, agent, SLA_REMINDER, clock=clock, due_at=due, now=now)
            store.add_event(ticket, actor="system", kind="sla-reminder", now=now, clock=clock,
                            due_at=due.isoformat(), recipients=len(recipients))
            report.reminders += 1
            report.mails += len(recipients)
            logs.event("sla.reminder", ticket=ticket.ref, clock=clock)


def _escalate(settings: Settings, store: TicketStore, letters: Letters, ticket: Ticket,
              clock: str, due: datetime, now: datetime, report: Report) -> None:
    clocks.record(ticket, clock, "missed")
    if "escalated" not in (ticket.tags or []):
        ticket.tags = [*(ticket.tags or []), "escalated"]
    recipients = _leads_and_owner(settings, store, ticket)
    for agent in recipients:
        letters.sla_notice(ticket, agent, SLA_ESCALATION, clock=clock, due_at=due, now=now)
    store.add_event(ticket, actor="system", kind="escalated", now=now, clock=clock,
                    due_at=due.isoformat(), recipients=len(recipients))
    report.escalations += 1
    report.mails += len(recipients)
    report.refs.append(ticket.ref)
    logs.event("sla.escalated", ticket=ticket.ref, clock=clock)


def _owner_or_team(settings: Settings, store: TicketStore, ticket: Ticket) -> list[str]:
    """The owner; while nobody owns the ticket its team's agents, else the dispatchers."""
    if ticket.owner is not None:
        return [ticket.owner]
    team = store.team(ticket)
    members = [agent.email for agent in settings.team_members(team)] if team else []
    return members or list(settings.dispatchers())


def _leads_and_owner(settings: Settings, store: TicketStore, ticket: Ticket) -> list[str]:
    """The lead of the ticket's team (else of the owner's teams) and the owner; if neither
    exists, whoever gets the reminder."""
    team = store.team(ticket)
    teams = [team] if team else []
    owner = settings.agent(ticket.owner) if ticket.owner else None
    if not teams and owner is not None:
        teams = list(owner.teams)
    leads = [t.lead for t in settings.teams if t.name in teams and t.lead is not None]
    found = list(dict.fromkeys([*(lead.lower() for lead in leads),
                                *([ticket.owner] if ticket.owner else [])]))
    return found or _owner_or_team(settings, store, ticket)
