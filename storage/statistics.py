"""The statistics row of a ticket (issue 17): the one source of reports. It is written while
the ticket lives, with one UPSERT at each moment a figure changes (gateway.lifecycle.tally
computes the figures), and finalised when the ticket is deleted: the link to the ticket goes,
`deleted_at` is set, and the row stays for reports. Nothing in it leads back to a person."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import Table, Text, func, select, type_coerce, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from storage.direct import Direct, execute
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


FIGURES = ("queue", "priority", "status", "tags", "created_at", "first_response_at",
           "resolved_at", "closed_at", "sla_outcome", "first_response_minutes",
           "resolution_minutes")
"""The columns `keep` writes from the figures (gateway.lifecycle.tally.figures)."""


@functools.cache
def _upsert(dialect: str) -> Direct:
    """INSERT … ON CONFLICT (ticket_id) DO UPDATE, built once per dialect and run with bound
    values: building it per call cost about 1 ms of the worker's time per new ticket (the
    largest part of the `figures` stage, measured with bench/worker_profile.py)."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = cast(Table, TicketStatistic.__table__)
    statement = insert(table)
    new = statement.excluded
    changes: dict[str, Any] = {name: new[name] for name in FIGURES}
    changes["reopens"] = table.c.reopens + new.reopens  # new.reopens is 1 or 0
    changes["channel"] = func.coalesce(table.c.channel, new.channel)  # the first mail's
    return Direct(statement.on_conflict_do_update(index_elements=["ticket_id"], set_=changes))


def keep(session: Session, ticket_id: int, figures: Mapping[str, Any], *,
         channel: str | None = None, reopened: bool = False) -> None:
    """One INSERT … ON CONFLICT (ticket_id) DO UPDATE: the row of a new ticket, or its
    figures brought up to date; `reopened` counts one more reopening, `channel` is kept from
    the first mail (a later one never changes it)."""
    values = {name: figures[name] for name in FIGURES}
    values.update(ticket_id=ticket_id, channel=channel, reopens=1 if reopened else 0,
                  articles=0)
    execute(session.connection(), _upsert(session.get_bind().dialect.name), values)


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


class ReportRow(NamedTuple):
    """A statistics row as a report reads it: times naive UTC, JSON decoded."""

    queue: str | None
    channel: str | None
    tags: list[str]
    created_at: datetime
    done_at: datetime | None  # resolved, or closed if never resolved
    first_response_minutes: int | None
    resolution_minutes: int | None
    reopens: int
    sla_outcome: dict[str, str]


def report_rows(session: Session, start: datetime, end: datetime,
                queue: str | None = None) -> list[ReportRow]:
    """Every statistics row (live or of a deleted ticket) that a report of [start, end)
    counts: created before `end` and not done before `start` (a ticket still open at the
    start counts in the backlog). One SELECT of the figures' columns, no ticket, no ref.

    Fast enough for 100,000 rows in well under a second: the columns come without the ORM's
    per-value processing (times parsed with fromisoformat, the few distinct JSON values of
    tags and SLA outcomes decoded once each)."""
    stats = TicketStatistic
    done = func.coalesce(stats.resolved_at, stats.closed_at)
    statement = select(
        stats.queue, stats.channel, type_coerce(stats.tags, Text),
        type_coerce(stats.created_at, Text), type_coerce(done, Text),
        stats.first_response_minutes, stats.resolution_minutes, stats.reopens,
        type_coerce(stats.sla_outcome, Text),
    ).where(stats.created_at < end, (done.is_(None)) | (done >= start))
    if queue is not None:
        statement = statement.where(stats.queue == queue)
    memo: dict[str, Any] = {}
    return [ReportRow(q, channel, _json(tags, memo) or [], _time(created), _time(finished),
                      first, resolution, reopens or 0, _json(outcome, memo) or {})
            for q, channel, tags, created, finished, first, resolution, reopens, outcome
            in session.execute(statement)]


def _json(value: Any, memo: dict[str, Any]) -> Any:
    if not isinstance(value, str):
        return value  # None, or decoded already (PostgreSQL's driver)
    decoded = memo.get(value)
    if decoded is None:
        decoded = memo[value] = json.loads(value)
    return decoded


def _time(value: Any) -> Any:
    if value is None or isinstance(value, datetime):
        return value.replace(tzinfo=None) if value is not None else None
    return datetime.fromisoformat(value)
