"""Named counters in one table: the round-robin position of each team, and ticket numbers on
SQLite. Ticket numbers on PostgreSQL come from a sequence (`ticket_number`).

A counter is taken with one `INSERT … ON CONFLICT DO UPDATE … RETURNING`, so its first use
creates the row and two instances that first use it at once both get a value (a plain INSERT
after a failed UPDATE made the second a UniqueViolation, and quarantined its mail). On SQLite it
runs in the caller's transaction (one writer: numbers stay consecutive, as before). On
PostgreSQL it runs in a short transaction of its own, so the row lock every instance needs is
held for one statement, not until the worker's batch commits (which made ticket creation one
instance at a time); a value taken for a mail that is then rolled back is skipped, harmless for
a rotation. That transaction commits without waiting for the WAL flush: the lock is not held
across an fsync, and a crash at worst hands one rotation position out twice."""

from __future__ import annotations

import functools
from typing import cast

from sqlalchemy import Table, bindparam, func, select, text
from sqlalchemy.orm import Session

from storage.direct import Direct, execute
from storage.models import Counter

_COUNTERS = cast(Table, Counter.__table__)
TICKET_SEQUENCE = "ticket_number_seq"
"""PostgreSQL: ticket numbers (created by migration 0005)."""
_NEXT_NUMBER = select(func.nextval(TICKET_SEQUENCE))
_NO_FLUSH_WAIT = text("SET LOCAL synchronous_commit TO OFF")


@functools.cache
def _next(dialect: str) -> Direct:
    """`INSERT (name, 1) ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value`."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    else:
        raise NotImplementedError(f"no counter upsert for {dialect}")
    statement = insert(_COUNTERS).values(name=bindparam("counter"), value=1)
    return Direct(
        statement.on_conflict_do_update(
            index_elements=[_COUNTERS.c.name], set_={"value": _COUNTERS.c.value + 1}
        ).returning(_COUNTERS.c.value)
    )


def next_value(session: Session, name: str) -> int:
    """The counter's next value: 1 the first time (the row is created then), 2, 3, …"""
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        return int(execute(session.connection(), _next(dialect), {"counter": name}).scalar_one())
    with session.get_bind().engine.connect() as connection, connection.begin():
        connection.execute(_NO_FLUSH_WAIT)  # before the statement that takes the row lock
        return int(execute(connection, _next(dialect), {"counter": name}).scalar_one())


def ticket_number(session: Session, counter: str) -> int:
    """The next ticket number: from the sequence on PostgreSQL (no row lock, never rolled back:
    numbers may have gaps), from the counter row in the caller's transaction on SQLite."""
    if session.get_bind().dialect.name == "postgresql":
        return int(session.connection().execute(_NEXT_NUMBER).scalar_one())
    return next_value(session, counter)
