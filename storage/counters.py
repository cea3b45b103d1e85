"""Named counters in one table: ticket numbers and the round-robin position of each team.

Taken with one `UPDATE … RETURNING` on the connection (the row is locked on PostgreSQL, SQLite
has one writer), so numbers are safe under concurrency and no ORM flush rides along."""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table, bindparam, update
from sqlalchemy.orm import Session

from storage.models import Counter

_COUNTERS = cast(Table, Counter.__table__)
_NEXT = (
    update(_COUNTERS)
    .where(_COUNTERS.c.name == bindparam("counter"))
    .values(value=_COUNTERS.c.value + 1)
    .returning(_COUNTERS.c.value)
)


def next_value(session: Session, name: str) -> int:
    """The counter's next value: 1 the first time (the row is created then), 2, 3, …"""
    value = session.connection().execute(_NEXT, {"counter": name}).scalar_one_or_none()
    if value is None:  # first use, or a database created without the seed row
        session.add(Counter(name=name, value=1))
        session.flush()
        return 1
    return int(value)
