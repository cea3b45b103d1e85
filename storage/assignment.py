"""The two queries agent assignment needs: a persistent round-robin position per team, and the
live number of open tickets per agent. Both run for routed mails inside the worker's write
transaction, so their statements are built once at import. Plus the tickets nobody owns, for
`postdesk status` and the metrics."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, bindparam, func, select
from sqlalchemy.orm import Session

from storage import counters
from storage.models import Ticket

OPEN_STATES = ("new", "open", "pending")

_TICKETS = cast(Table, Ticket.__table__)
_OPEN_PER_OWNER = (
    select(_TICKETS.c.owner, func.count())
    .where(
        _TICKETS.c.owner.in_(bindparam("owners", expanding=True)),
        _TICKETS.c.status.in_(OPEN_STATES),
    )
    .group_by(_TICKETS.c.owner)
)


def next_in_rotation(session: Session, team: str) -> int:
    """0, 1, 2, … per team across tickets (a counter row, safe under concurrency)."""
    return counters.next_value(session, f"round-robin:{team}"[:50]) - 1


def open_tickets_per_owner(session: Session, owners: Sequence[str]) -> dict[str, int]:
    """How many new/open/pending tickets each of `owners` has now (0 for none). Through the
    session, which first writes pending changes to tickets (owner, status) so they count."""
    rows = session.execute(_OPEN_PER_OWNER, {"owners": list(owners)}).all()
    counts = {owner: 0 for owner in owners}
    counts.update({owner: int(count) for owner, count in rows if owner is not None})
    return counts


@dataclass(frozen=True, slots=True)
class Unassigned:
    """Open tickets without an owner created before some time: how many, and the oldest."""

    count: int
    oldest_ref: str | None
    oldest_created_at: datetime | None


def unassigned_before(session: Session, created_before: datetime) -> Unassigned:
    """New, open or pending tickets that nobody owns and that were created before
    `created_before`."""
    where = (
        _TICKETS.c.owner.is_(None),
        _TICKETS.c.status.in_(OPEN_STATES),
        _TICKETS.c.created_at < created_before,
    )
    count = session.execute(select(func.count()).where(*where)).scalar_one()
    oldest = session.execute(
        select(_TICKETS.c.ref, _TICKETS.c.created_at)
        .where(*where)
        .order_by(_TICKETS.c.created_at, _TICKETS.c.id)
        .limit(1)
    ).first()
    if oldest is None:
        return Unassigned(int(count), None, None)
    return Unassigned(int(count), oldest.ref, oldest.created_at)
