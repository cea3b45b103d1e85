"""The two queries agent assignment needs: a persistent round-robin position per team, and the
live number of open tickets per agent. Both run for routed mails inside the worker's write
transaction, so their statements are built once at import."""

from __future__ import annotations

from collections.abc import Sequence
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
