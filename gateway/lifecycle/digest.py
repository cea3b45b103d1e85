"""The morning digest (`digests:` in the config): on each business day of the configured
calendar, from `digests.at` local time on, every agent who has not opted out (`agents[].digest:
false`) gets one mail listing their unsolved tickets (overdue, due today, the rest), and a team
lead also the team's backlog and its escalated tickets. Nothing to list: no mail.

Each person's digest is claimed once per local day (storage.digests.claim, in the transaction
that queues the mail), so a restart or a second instance sends nothing twice. The leader checks
every few minutes; after downtime it sends today's digest late if it is still today, and never
one of an earlier day. The digest shows ticket refs and stored (redacted) subjects, never a
requester's address."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from gateway import logs
from gateway.config import Settings
from gateway.lifecycle.calendar import Calendars
from gateway.lifecycle.reminders import LetterMaker
from storage import digests
from storage.digests import OpenTicket
from storage.engine import Database
from storage.tickets import TicketStore

MAX_ITEMS = 50  # per section; the section's `total` tells how many there are


@dataclass
class Report:
    day: date | None = None  # the day whose digests were due in this run (None: none due)
    sent: int = 0
    empty: int = 0  # claimed with nothing to list: no mail
    taken: int = 0  # claimed already (an earlier run, another instance)


def due_day(settings: Settings, calendars: Calendars, now: datetime) -> date | None:
    """Today's local date if today's digests are due at `now`: digests on, a business day of
    the digest calendar, and `digests.at` passed. Only ever today: a missed day stays missed."""
    config = settings.digests
    if config is None or not config.enabled:
        return None
    calendar = calendars.get(config.calendar)
    local = now.astimezone(calendar.zone)
    if not calendar.is_business_day(local.date()):
        return None
    if local.time() < config.time_of_day():
        return None
    return local.date()


def run(db: Database, settings: Settings, calendars: Calendars, letters: LetterMaker, *,
        now: datetime) -> Report:
    """Send every digest of today that is due and not yet taken; one transaction per person."""
    day = due_day(settings, calendars, now)
    if day is None or settings.digests is None:
        return Report()
    report = Report(day=day)
    zone = calendars.get(settings.digests.calendar).zone
    midnight = datetime.combine(day, time(0), tzinfo=zone)
    day_end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    with db.reading() as session:
        tickets = digests.open_tickets(session)
        taken = {send.recipient for send in digests.sends(session, day)}
    for agent in settings.agents:
        if not agent.digest or agent.email in taken:
            continue
        teams = [team.name for team in settings.teams if team.lead == agent.email]
        sections = build_sections(settings, agent.email, teams, tickets, now, day_end)
        listed = sum(sections[name]["total"] for name in ("overdue", "due_today", "open",
                                                          "backlog"))
        with db.session() as session:
            if not digests.claim(session, agent.email, day, tickets=listed, now=now):
                report.taken += 1
                continue
            if listed == 0:
                report.empty += 1
                continue
            letters(TicketStore(session)).digest(agent.email, day=midnight, sections=sections,
                                                 teams=teams, now=now)
            report.sent += 1
    if report.sent or report.empty:
        logs.event("digest.run", day=day.isoformat(), sent=report.sent, empty=report.empty)
    return report


def build_sections(settings: Settings, agent: str, teams: list[str],
                   tickets: Iterable[OpenTicket], now: datetime, day_end: datetime
                   ) -> dict[str, dict[str, Any]]:
    """The digest's sections for `agent`: own tickets by their next due moment (overdue, due
    before `day_end`, the rest) and, for the lead of `teams`, the backlog and escalations."""
    own: dict[str, list[OpenTicket]] = {"overdue": [], "due_today": [], "open": []}
    backlog: list[OpenTicket] = []
    for ticket in tickets:
        if ticket.owner == agent:
            due = _next_due(ticket)
            kind = ("open" if due is None else "overdue" if due[1] < now
                    else "due_today" if due[1] < day_end else "open")
            own[kind].append(ticket)
        if teams and _teams_of(settings, ticket) & set(teams):
            backlog.append(ticket)
    escalations = [ticket for ticket in backlog if "escalated" in ticket.tags]
    parts = {**own, "backlog": backlog, "escalations": escalations}
    return {name: _section(settings, found) for name, found in parts.items()}


def _teams_of(settings: Settings, ticket: OpenTicket) -> set[str]:
    """The routing rules' team, else the owner's teams (as the SLA escalation finds a lead)."""
    if ticket.team is not None:
        return {ticket.team}
    owner = settings.agent(ticket.owner) if ticket.owner else None
    return set(owner.teams) if owner is not None else set()


def _next_due(ticket: OpenTicket) -> tuple[str, datetime] | None:
    return min(ticket.dues.items(), key=lambda item: item[1]) if ticket.dues else None


def _section(settings: Settings, tickets: list[OpenTicket]) -> dict[str, Any]:
    """Soonest due first (tickets without a running clock last, oldest first)."""
    def order(ticket: OpenTicket) -> tuple[bool, float, int]:
        due = _next_due(ticket)
        return (due is None, due[1].timestamp() if due else 0.0, ticket.id)

    ordered = sorted(tickets, key=order)
    return {"items": [_item(settings, t) for t in ordered[:MAX_ITEMS]], "total": len(ordered)}


def _item(settings: Settings, ticket: OpenTicket) -> dict[str, Any]:
    due = _next_due(ticket)
    owner = settings.agent(ticket.owner) if ticket.owner else None
    return {
        "ref": ticket.ref,
        "subject": ticket.subject,
        "status": ticket.status,
        "priority": ticket.priority,
        "queue": ticket.queue,
        "owner_name": owner.name if owner else ticket.owner,
        "due_at": due[1] if due else None,
        "clock": due[0] if due else None,
    }
