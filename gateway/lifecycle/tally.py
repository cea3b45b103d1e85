"""Keep a ticket's statistics row (storage.statistics) current at the moments its figures
change: created, first agent reply, resolved, closed, reopened, queue, priority or tags
changed, an SLA outcome recorded. Callers take a `snapshot` before they change the ticket and
call `keep` after: it writes (one UPSERT) only when the figures moved, so a plain follow-up
costs nothing but a tuple comparison.

The durations are business minutes on the calendar of the ticket's queue (policy `calendar`),
computed here once, so a report of 100,000 tickets adds numbers instead of walking calendars."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from gateway.lifecycle.clocks import Lifecycle
from storage import statistics
from storage.models import Event, Ticket, TicketStatistic

Snapshot = tuple[Any, ...]


def snapshot(ticket: Ticket) -> Snapshot:
    """What the figures depend on, cheaply comparable (no calendar arithmetic)."""
    return (ticket.status, ticket.queue, ticket.priority, tuple(ticket.tags or ()),
            ticket.first_responded_at, ticket.resolved_at, ticket.closed_at,
            tuple(sorted((ticket.sla_outcome or {}).items())))


def figures(lc: Lifecycle | None, ticket: Ticket) -> dict[str, Any]:
    """The row's figures: the ticket's plain ones and the business-minute durations (None
    without a lifecycle, i.e. no calendars)."""
    values = statistics.plain_figures(ticket)
    values["first_response_minutes"] = _minutes(lc, ticket, ticket.first_responded_at)
    values["resolution_minutes"] = _minutes(lc, ticket, ticket.resolved_at)
    return values


def keep(session: Session, lc: Lifecycle | None, ticket: Ticket, before: Snapshot | None, *,
         channel: str | None = None, reopened: bool | None = None) -> bool:
    """Write the row if the figures changed since `before` (None: a new ticket, always
    written, with its `channel`). `reopened` defaults to "was resolved or closed, is not any
    more". True if a row was written."""
    if before is not None and snapshot(ticket) == before and not reopened:
        return False
    if reopened is None:
        reopened = (before is not None and before[0] in statistics.DONE
                    and ticket.status not in statistics.DONE)
    statistics.keep(session, ticket.id, figures(lc, ticket), channel=channel,
                    reopened=reopened)
    return True


def rebuild(session: Session, lc: Lifecycle | None, *, only_missing: bool = False) -> int:
    """Write every live ticket's row afresh from the ticket (the backfill after migration
    0012, and a repair): channel from its first mail, reopenings from its status events.
    Returns how many rows were written."""
    ids = statistics.missing(session) if only_missing else list(
        session.scalars(select(Ticket.id).order_by(Ticket.id)))
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        channels = _channels(session, chunk)
        reopens = _reopens(session, chunk)
        for ticket in session.scalars(select(Ticket).where(Ticket.id.in_(chunk))):
            statistics.keep(session, ticket.id, figures(lc, ticket))
            session.execute(update(TicketStatistic)
                            .where(TicketStatistic.ticket_id == ticket.id)
                            .values(reopens=reopens.get(ticket.id, 0),
                                    channel=channels.get(ticket.id)))
    return len(ids)


def _minutes(lc: Lifecycle | None, ticket: Ticket, end: Any) -> int | None:
    if lc is None or end is None:
        return None
    return round(lc.calendar(ticket.queue).minutes_between(ticket.created_at, end))


def _channels(session: Session, ids: list[int]) -> dict[int, str]:
    """Ticket id → inbox.source of its first mail, as its `created` event recorded it."""
    events = session.execute(select(Event.ticket_id, Event.detail).where(
        Event.ticket_id.in_(ids), Event.kind == "created").order_by(Event.id.desc()))
    return {ticket_id: str(detail["source"]) for ticket_id, detail in events
            if isinstance(detail, dict) and detail.get("source")}


def _reopens(session: Session, ids: list[int]) -> dict[int, int]:
    counts: dict[int, int] = {}
    events = session.execute(select(Event.ticket_id, Event.detail).where(
        Event.ticket_id.in_(ids), Event.kind == "status"))
    for ticket_id, detail in events:
        detail = detail or {}
        if detail.get("old") in statistics.DONE and detail.get("new") not in statistics.DONE:
            counts[ticket_id] = counts.get(ticket_id, 0) + 1
    return counts
