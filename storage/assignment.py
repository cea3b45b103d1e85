"""The two queries agent assignment needs: a persistent round-robin position per team, and the
live number of open tickets per agent. Both run for routed mails inside the worker's write
transaction, so their statements are built once at import."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.orm import Session

from storage.models import Counter, Ticket

OPEN_STATES = ("new", "open", "pending")

_COUNTERS = cast(Table, Counter.__table__)
_TICKETS = cast(Table, Ticket.__table__)
# A Core UPDATE on the table: the ORM-enabled form also looked for Counter objects in the
# session to synchronise (there are none) at several times the cost.
_NEXT_IN_ROTATION = (
    update(_COUNTERS)
    .where(_COUNTERS.c.name == bindparam("counter"))
    .values(value=_COUNTERS.c.value + 1)
    .returning(_COUNTERS.c.value)
)
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
    name = f"round-robin:{team}"[:50]
    value = session.execute(_NEXT_IN_ROTATION, {"counter": name}).scalar_one_or_none()
    if value is None:
        session.add(Counter(name=name, value=1))
        session.flush()
        value = 1
    return int(value) - 1


def open_tickets_per_owner(session: Session, owners: Sequence[str]) -> dict[str, int]:
    """How many new/open/pending tickets each of `owners` has now (0 for none). Through the
    session, which first writes pending changes to tickets (owner, status) so they count."""
    rows = session.execute(_OPEN_PER_OWNER, {"owners": list(owners)}).all()
    counts = {owner: 0 for owner in owners}
    counts.update({owner: int(count) for owner, count in rows if owner is not None})
    return counts
