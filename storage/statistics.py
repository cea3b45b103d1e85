"""The statistics row of a ticket (issue 17): the one source of reports. It is written while
the ticket lives, with one UPSERT at each moment a figure changes (gateway.lifecycle.tally
computes the figures), and finalised when the ticket is deleted: the link to the ticket goes,
`deleted_at` is set, and the row stays for reports. Nothing in it leads back to a person."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from storage.models import Ticket, TicketStatistic

DONE = ("resolved", "closed")


def sla_outcome(ticket: Ticket) -> dict[str, Any]:
    """Each SLA clock of the ticket → "met" | "missed", as gateway.lifecycle.clocks recorded
    it; {} for a ticket whose clocks never ran (opened before migration 0009)."""
    return dict(ticket.sla_outcome or {})


def plain_figures(ticket: Ticket) -> dict[str, Any]:
    """The figures read straight off the ticket row (no calendar needed)."""
    return {
        "queue": ticket.queue, "priority": ticket.priority, "status": ticket.status,
        "tags": sorted(str(tag) for tag in ticket.tags or []),
        "created_at": ticket.created_at, "first_response_at": ticket.first_responded_at,
        "resolved_at": ticket.resolved_at, "closed_at": ticket.closed_at,
        "sla_outcome": sla_outcome(ticket),
    }


def keep(session: Session, ticket_id: int, figures: Mapping[str, Any], *,
         channel: str | None = None, reopened: bool = False) -> None:
    """One INSERT … ON CONFLICT (ticket_id) DO UPDATE: the row of a new ticket, or its
    figures brought up to date; `reopened` counts one more reopening, `channel` is kept from
    the first mail (a later one never changes it)."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    values = {**figures, "ticket_id": ticket_id, "channel": channel,
              "reopens": 1 if reopened else 0, "articles": 0}
    statement = insert(TicketStatistic).values(values)
    changes: dict[str, Any] = dict(figures)
    if reopened:
        changes["reopens"] = TicketStatistic.reopens + 1
    if channel is not None:
        changes["channel"] = func.coalesce(TicketStatistic.channel, channel)
    session.execute(statement.on_conflict_do_update(index_elements=["ticket_id"], set_=changes))


def finalise(session: Session, ticket: Ticket, *, articles: int, now: datetime) -> None:
    """The ticket is being deleted: its row keeps the figures (the plain ones refreshed from
    the ticket, the business minutes as kept) and loses the link. A ticket without a row (one
    not rebuilt since migration 0012) gets one now, without business minutes."""
    figures = plain_figures(ticket)
    done = session.execute(
        update(TicketStatistic).where(TicketStatistic.ticket_id == ticket.id)
        .values(**figures, ticket_id=None, articles=articles, deleted_at=now)
        .execution_options(synchronize_session=False))
    if done.rowcount:  # type: ignore[attr-defined]
        return
    session.add(TicketStatistic(**figures, ticket_id=None, articles=articles, deleted_at=now,
                                reopens=0))


def missing(session: Session) -> list[int]:
    """Ids of live tickets without a statistics row (for `postdesk report rebuild`)."""
    have = select(TicketStatistic.ticket_id).where(TicketStatistic.ticket_id.is_not(None))
    return list(session.scalars(select(Ticket.id).where(Ticket.id.not_in(have))
                                .order_by(Ticket.id)))


REPORT_COLUMNS = (
    TicketStatistic.queue, TicketStatistic.priority, TicketStatistic.channel,
    TicketStatistic.tags, TicketStatistic.created_at, TicketStatistic.resolved_at,
    TicketStatistic.closed_at, TicketStatistic.first_response_minutes,
    TicketStatistic.resolution_minutes, TicketStatistic.reopens, TicketStatistic.sla_outcome,
)


def report_rows(session: Session, start: datetime, end: datetime,
                queue: str | None = None) -> list[Any]:
    """Every statistics row (live or of a deleted ticket) that a report of [start, end)
    counts: created before `end` and not done before `start` (a ticket still open at the
    start counts in the backlog). One SELECT of the figures' columns, no ticket, no ref."""
    done = func.coalesce(TicketStatistic.resolved_at, TicketStatistic.closed_at)
    statement = select(*REPORT_COLUMNS).where(
        TicketStatistic.created_at < end, (done.is_(None)) | (done >= start))
    if queue is not None:
        statement = statement.where(TicketStatistic.queue == queue)
    return list(session.execute(statement))
