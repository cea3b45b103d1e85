"""What the morning digest job (gateway.lifecycle.digest) reads and claims.

`claim` is the exactly-once rule, as in storage.sla: a person's digest for a local day is taken
by inserting its digest_sends row (unique per recipient and day) in the transaction that
queues the mail. A restart or a second instance finds the row and sends nothing; on
PostgreSQL the second INSERT waits for the first transaction and then skips."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from storage.models import DigestSend, Event, Ticket
from storage.spool import insert_unless_present

OPEN = ("new", "open", "pending")  # not yet solved: what a digest lists
_SENDS = cast(Table, DigestSend.__table__)


@dataclass(frozen=True, slots=True)
class OpenTicket:
    """The plain fields a digest shows of one unsolved ticket (no requester address)."""

    id: int
    ref: str
    subject: str  # as stored: redacted
    status: str
    priority: str
    queue: str | None
    owner: str | None
    tags: tuple[str, ...]
    team: str | None  # the routing rules' team (latest `routed` event), None: no team rule
    dues: dict[str, datetime]  # running clocks: name → due moment


def open_tickets(session: Session) -> list[OpenTicket]:
    """Every ticket not yet solved, oldest first, with its team and running clocks."""
    rows = session.execute(
        select(Ticket.id, Ticket.ref, Ticket.subject, Ticket.status, Ticket.priority,
               Ticket.queue, Ticket.owner, Ticket.tags, Ticket.first_response_due_at,
               Ticket.update_due_at, Ticket.solution_due_at)
        .where(Ticket.status.in_(OPEN)).order_by(Ticket.id)
    ).all()
    teams = _teams(session, [row.id for row in rows])
    found = []
    for row in rows:
        dues = {name: moment for name, moment in (
            ("first_response", row.first_response_due_at), ("update", row.update_due_at),
            ("solution", row.solution_due_at)) if moment is not None}
        found.append(OpenTicket(
            id=row.id, ref=row.ref, subject=row.subject or "", status=row.status,
            priority=row.priority, queue=row.queue, owner=row.owner,
            tags=tuple(str(tag) for tag in (row.tags or [])), team=teams.get(row.id),
            dues=dues))
    return found


def _teams(session: Session, ids: list[int]) -> dict[int, str]:
    """Ticket id → the team of its latest `routed` event (see TicketStore.team)."""
    teams: dict[int, str] = {}
    for start in range(0, len(ids), 500):  # keep the IN list within every driver's limits
        chunk = ids[start:start + 500]
        events = session.execute(
            select(Event.ticket_id, Event.detail)
            .where(Event.kind == "routed", Event.ticket_id.in_(chunk)).order_by(Event.id))
        for ticket_id, detail in events:
            team = _team_of(detail)
            if team is not None and ticket_id is not None:
                teams[ticket_id] = team  # later events win
    return teams


def _team_of(detail: Any) -> str | None:
    team = detail.get("team") if isinstance(detail, dict) else None
    return team if isinstance(team, str) else None


def claim(session: Session, recipient: str, day: date, *, tickets: int, now: datetime) -> bool:
    """Take `recipient`'s digest of local day `day`; False: already taken."""
    statement = insert_unless_present(session.get_bind().dialect.name, _SENDS).returning(
        _SENDS.c.id)
    row = session.execute(statement, {"recipient": recipient, "day": day.isoformat(),
                                      "tickets": tickets, "created_at": now}).first()
    return row is not None


def sends(session: Session, day: date | None = None) -> list[DigestSend]:
    """The digests taken (on `day`), in order (tests, the audit of what went out)."""
    query = select(DigestSend).order_by(DigestSend.id)
    if day is not None:
        query = query.where(DigestSend.day == day.isoformat())
    return list(session.scalars(query))
