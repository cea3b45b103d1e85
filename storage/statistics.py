"""The anonymous statistics row a deleted ticket leaves behind (issue 16): queue, priority and
the times that reports count, nothing that leads back to a person. One place reads the SLA
outcome of a ticket, so the row is right whichever module keeps the SLA clocks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.models import Article, Ticket, TicketStatistic


def sla_outcome(ticket: Ticket) -> dict[str, Any]:
    """Each SLA clock of the ticket → "met" | "missed", as gateway.lifecycle.clocks recorded
    it; {} for a ticket whose clocks never ran (opened before migration 0009)."""
    return dict(ticket.sla_outcome or {})


def first_response_at(session: Session, ticket: Ticket) -> datetime | None:
    """When an agent first wrote to the requester (the first outgoing agent article)."""
    return session.scalar(
        select(func.min(Article.created_at)).where(
            Article.ticket_id == ticket.id, Article.kind == "agent", Article.direction == "out"
        )
    )


def statistics_row(session: Session, ticket: Ticket, *, articles: int,
                   now: datetime) -> TicketStatistic:
    """The row to keep for `ticket` (added to the session, not committed)."""
    row = TicketStatistic(
        queue=ticket.queue, priority=ticket.priority, status=ticket.status,
        created_at=ticket.created_at, first_response_at=first_response_at(session, ticket),
        resolved_at=ticket.resolved_at, closed_at=ticket.closed_at, articles=articles,
        sla_outcome=sla_outcome(ticket), deleted_at=now,
    )
    session.add(row)
    return row
