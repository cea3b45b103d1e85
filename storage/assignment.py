"""The two queries agent assignment needs: a persistent round-robin position per team, and the
live number of open tickets per agent."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from storage.models import Counter, Ticket

OPEN_STATES = ("new", "open", "pending")


def next_in_rotation(session: Session, team: str) -> int:
    """0, 1, 2, … per team across tickets (a counter row, safe under concurrency)."""
    name = f"round-robin:{team}"[:50]
    value = session.execute(
        update(Counter)
        .where(Counter.name == name)
        .values(value=Counter.value + 1)
        .returning(Counter.value)
    ).scalar_one_or_none()
    if value is None:
        session.add(Counter(name=name, value=1))
        session.flush()
        value = 1
    return int(value) - 1


def open_tickets_per_owner(session: Session, owners: Sequence[str]) -> dict[str, int]:
    """How many new/open/pending tickets each of `owners` has now (0 for none)."""
    rows = session.execute(
        select(Ticket.owner, func.count())
        .where(Ticket.owner.in_(list(owners)), Ticket.status.in_(OPEN_STATES))
        .group_by(Ticket.owner)
    ).all()
    counts = {owner: 0 for owner in owners}
    counts.update({owner: int(count) for owner, count in rows if owner is not None})
    return counts
