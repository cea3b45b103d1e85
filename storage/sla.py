"""What the SLA and auto-close jobs (gateway.lifecycle.reminders, .autoclose) read and claim.

`claim` is the exactly-once rule: a reminder, escalation or auto-close step is taken by
inserting its sla_notices row (unique per ticket, clock, kind and due moment) in the
transaction that queues its mail. A second instance, or a run after a restart, finds the row
and does nothing; on PostgreSQL the second INSERT waits for the first transaction and then
skips."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import Table, or_, select
from sqlalchemy.orm import Session

from storage.models import SlaNotice, Ticket
from storage.spool import insert_unless_present

_NOTICES = cast(Table, SlaNotice.__table__)
_DUE = (Ticket.first_response_due_at, Ticket.update_due_at, Ticket.solution_due_at)


def claim(session: Session, ticket: Ticket, *, clock: str, kind: str, due_at: datetime,
          now: datetime) -> bool:
    """Take the step (`kind` of `clock` for the run due at `due_at`); False: already taken."""
    statement = insert_unless_present(session.get_bind().dialect.name, _NOTICES).returning(
        _NOTICES.c.id)
    row = session.execute(statement, {"ticket_id": ticket.id, "clock": clock, "kind": kind,
                                      "due_at": due_at, "created_at": now}).first()
    return row is not None


def running_clocks(session: Session) -> list[int]:
    """Ids of tickets with a running SLA clock, oldest first."""
    query = select(Ticket.id).where(or_(*(column.is_not(None) for column in _DUE)))
    return list(session.scalars(query.order_by(Ticket.id)))


def in_status(session: Session, statuses: Sequence[str]) -> list[int]:
    """Ids of tickets in one of `statuses`, oldest first."""
    query = select(Ticket.id).where(Ticket.status.in_(statuses)).order_by(Ticket.id)
    return list(session.scalars(query))


def notices(session: Session, ticket_id: int) -> list[SlaNotice]:
    """The steps taken on a ticket, in order (tests, `tickets show`)."""
    query = select(SlaNotice).where(SlaNotice.ticket_id == ticket_id).order_by(SlaNotice.id)
    return list(session.scalars(query))
