"""The inbox and outbox as durable queues: add (idempotent by key), claim, finish, quarantine,
retry.

Claiming is a compare-and-set UPDATE (state and attempts in the WHERE clause), which is safe on
SQLite (one writer at a time) and on PostgreSQL with several instances; PostgreSQL additionally
picks candidates with FOR UPDATE SKIP LOCKED so instances do not queue behind each other.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.models import InboxItem, OutboxItem, utcnow

INBOX_STATES = ("queued", "processing", "done", "quarantined")
OUTBOX_STATES = ("queued", "sending", "sent", "failed")


@dataclass(frozen=True, slots=True)
class NewInboxItem:
    source: str
    source_key: str
    raw: bytes
    envelope_from: str = ""
    envelope_to: tuple[str, ...] = ()


def message_hash(raw: bytes) -> str:
    """A short, stable id of the raw bytes for logs (never the content itself)."""
    return hashlib.sha256(raw).hexdigest()[:32]


def add_inbox_items(session: Session, items: Sequence[NewInboxItem]) -> list[int]:
    """Insert items in the caller's transaction; an item whose (source, source_key) is already
    stored returns the existing id."""
    ids: list[int] = []
    for item in items:
        existing = session.scalar(
            select(InboxItem.id).where(
                InboxItem.source == item.source, InboxItem.source_key == item.source_key
            )
        )
        if existing is not None:
            ids.append(existing)
            continue
        row = InboxItem(
            source=item.source,
            source_key=item.source_key,
            raw=item.raw,
            size=len(item.raw),
            envelope_from=item.envelope_from,
            envelope_to=list(item.envelope_to),
            message_hash=message_hash(item.raw),
        )
        try:
            with session.begin_nested():
                session.add(row)
        except IntegrityError:
            concurrent = session.scalar(
                select(InboxItem.id).where(
                    InboxItem.source == item.source, InboxItem.source_key == item.source_key
                )
            )
            if concurrent is None:  # not a concurrent insert of the same key: a real failure
                raise
            ids.append(concurrent)
            continue
        ids.append(row.id)
    return ids


@dataclass(frozen=True, slots=True)
class Claim:
    id: int
    attempts: int  # including this one


def claim_inbox(session: Session, worker: str) -> Claim | None:
    """Take the oldest queued row and mark it processing, in one UPDATE … RETURNING (PostgreSQL
    picks the row with SKIP LOCKED, so several instances never wait on each other)."""
    oldest = select(InboxItem.id).where(InboxItem.state == "queued").order_by(InboxItem.id).limit(1)
    if session.get_bind().dialect.name == "postgresql":
        oldest = oldest.with_for_update(skip_locked=True)
    row = session.execute(
        update(InboxItem)
        .where(InboxItem.id == oldest.scalar_subquery(), InboxItem.state == "queued")
        .values(
            state="processing",
            attempts=InboxItem.attempts + 1,
            claimed_at=utcnow(),
            claimed_by=worker,
        )
        .returning(InboxItem.id, InboxItem.attempts)
    ).first()
    return None if row is None else Claim(row.id, row.attempts)


def recover_inbox(
    session: Session, max_attempts: int, claimed_before: datetime | None = None
) -> tuple[int, int]:
    """Rows a crashed worker left `processing` go back to the queue, or to quarantine once they
    have used up their attempts. At start-up every such row is recovered; while running, only
    those claimed before `claimed_before` (their lease ran out). Returns (requeued, quarantined)."""
    stuck = InboxItem.state == "processing"
    if claimed_before is not None:
        stuck = stuck & (InboxItem.claimed_at < claimed_before)
    quarantined = session.execute(
        update(InboxItem)
        .where(stuck, InboxItem.attempts >= max_attempts)
        .values(
            state="quarantined",
            stage="worker",
            reason=f"processing was interrupted {max_attempts} times (crash or kill)",
            finished_at=utcnow(),
        )
    ).rowcount  # type: ignore[attr-defined]
    requeued = session.execute(update(InboxItem).where(stuck).values(state="queued")).rowcount  # type: ignore[attr-defined]
    return requeued, quarantined


def finish_inbox(
    session: Session, item_id: int, *, ticket_id: int | None, stage: str | None, reason: str | None
) -> None:
    session.execute(
        update(InboxItem)
        .where(InboxItem.id == item_id)
        .values(state="done", ticket_id=ticket_id, stage=stage, reason=reason, finished_at=utcnow())
    )


def quarantine_inbox(session: Session, item_id: int, *, stage: str, reason: str) -> None:
    session.execute(
        update(InboxItem)
        .where(InboxItem.id == item_id)
        .values(state="quarantined", stage=stage, reason=reason[:2000], finished_at=utcnow())
    )


def requeue_inbox(session: Session, item_id: int, *, reason: str) -> None:
    session.execute(
        update(InboxItem)
        .where(InboxItem.id == item_id)
        .values(state="queued", reason=reason[:2000])
    )


def retry_inbox(session: Session, item_id: int) -> bool:
    """`postdesk inbox retry`: a quarantined row goes back to the queue with fresh attempts."""
    result = session.execute(
        update(InboxItem)
        .where(InboxItem.id == item_id, InboxItem.state == "quarantined")
        .values(state="queued", attempts=0, stage=None, reason=None, finished_at=None)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


def list_inbox(session: Session, state: str | None = None, limit: int = 200) -> list[InboxItem]:
    query = select(InboxItem).order_by(InboxItem.id.desc()).limit(limit)
    if state:
        query = query.where(InboxItem.state == state)
    return list(session.scalars(query).all())


def queue_depths(session: Session) -> tuple[dict[str, int], dict[str, int]]:
    """Rows per state in the inbox and in the outbox, for `postdesk status`."""
    depths: list[dict[str, int]] = []
    for model in (InboxItem, OutboxItem):
        rows = session.execute(select(model.state, func.count()).group_by(model.state)).all()
        depths.append({state: count for state, count in rows})
    return depths[0], depths[1]


# --- outbox -------------------------------------------------------------------------------


def add_outbox_item(session: Session, item: OutboxItem) -> OutboxItem:
    session.add(item)
    return item


def claim_outbox(session: Session, now: datetime, lease: timedelta, limit: int) -> list[OutboxItem]:
    """Due rows (queued and due, or `sending` whose lease ran out after a crash) → `sending`."""
    stale = now - lease
    query = (
        select(OutboxItem.id, OutboxItem.attempts)
        .where(
            ((OutboxItem.state == "queued") & (OutboxItem.next_attempt_at <= now))
            | ((OutboxItem.state == "sending") & (OutboxItem.claimed_at < stale))
        )
        .order_by(OutboxItem.next_attempt_at, OutboxItem.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    claimed: list[OutboxItem] = []
    for row in session.execute(query).all():
        result = session.execute(
            update(OutboxItem)
            .where(OutboxItem.id == row.id, OutboxItem.attempts == row.attempts)
            .values(state="sending", attempts=OutboxItem.attempts + 1, claimed_at=now)
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            item = session.get(OutboxItem, row.id, populate_existing=True)
            if item is not None:
                claimed.append(item)
    return claimed


def mark_outbox(
    session: Session,
    item_id: int,
    *,
    state: str,
    error: str | None = None,
    next_attempt_at: datetime | None = None,
) -> None:
    values: dict[str, object] = {"state": state, "last_error": error}
    if state == "sent":
        values["sent_at"] = utcnow()
    if next_attempt_at is not None:
        values["next_attempt_at"] = next_attempt_at
    session.execute(update(OutboxItem).where(OutboxItem.id == item_id).values(**values))


def list_outbox(session: Session, state: str | None = None, limit: int = 200) -> list[OutboxItem]:
    query = select(OutboxItem).order_by(OutboxItem.id.desc()).limit(limit)
    if state:
        query = query.where(OutboxItem.state == state)
    return list(session.scalars(query).all())
