"""The inbox and outbox as durable queues: add (idempotent by key), claim, finish, quarantine,
retry.

A claim is one UPDATE … RETURNING whose WHERE clause picks the oldest due rows and re-checks
that they are still due, so it is safe on SQLite (one writer at a time) and on PostgreSQL with
several instances; PostgreSQL additionally picks candidates with FOR UPDATE SKIP LOCKED so
instances do not queue behind each other, and skips a row while an earlier row of its
conversation (a shared key in inbox_conversation) is still queued or processing, so a reply
never overtakes its original on another instance. (SQLite serves one instance, whose one worker
takes the rows in inbox order already.) The statements run for every mail, so they are built
once at import.

An inbox claim records the instance (`claimed_by`) and a lease (`lease_until`) its worker
renews; finishing, quarantining, requeueing and deferring a row are conditional on the claim
being still the caller's (LeaseLost otherwise), and recovery takes only rows of the caller, of
instances that are gone, or whose lease ran out (docs/operations.md).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import (
    ColumnElement,
    Delete,
    Insert,
    Table,
    Update,
    bindparam,
    delete,
    exists,
    func,
    select,
    update,
)
from sqlalchemy.orm import Session, defer

from storage.direct import Direct, execute
from storage.models import InboxConversation, InboxItem, OutboxItem, utcnow
from storage.states import INBOX_STATES as INBOX_STATES  # re-exported for callers of spool
from storage.states import INBOX_WAITING
from storage.states import OUTBOX_STATES as OUTBOX_STATES


@dataclass(frozen=True, slots=True)
class NewInboxItem:
    source: str
    source_key: str
    raw: bytes
    envelope_from: str = ""
    envelope_to: tuple[str, ...] = ()
    conversation: tuple[str, ...] = ()
    """Conversation keys (gateway.mail.conversation.keys), stored beside the row; the intake
    computes them for PostgreSQL only (gateway.intake.conversation)."""


def message_hash(raw: bytes) -> str:
    """A short, stable id of the raw bytes for logs (never the content itself)."""
    return hashlib.sha256(raw).hexdigest()[:32]


def insert_unless_present(dialect: str, table: Table) -> Insert:
    """INSERT that skips a row whose unique key is already stored: `ON CONFLICT DO NOTHING`,
    the same SQL on SQLite and PostgreSQL (one statement instead of a SELECT, then an INSERT).
    The dialect module is imported here, for the one in use: importing both costs start-up."""
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table).on_conflict_do_nothing()
    if dialect == "sqlite":
        from sqlalchemy.dialects import sqlite

        return sqlite.insert(table).on_conflict_do_nothing()
    raise NotImplementedError(f"no insert-unless-present for {dialect}")


_INBOX = cast(Table, InboxItem.__table__)
_KEYS = cast(Table, InboxConversation.__table__)


@functools.cache
def _add_inbox(dialect: str) -> Insert:
    return insert_unless_present(dialect, _INBOX).returning(
        _INBOX.c.id, _INBOX.c.source, _INBOX.c.source_key
    )


_INBOX_BY_KEY = select(_INBOX.c.id).where(
    _INBOX.c.source == bindparam("source"), _INBOX.c.source_key == bindparam("source_key")
)


def add_inbox_items(session: Session, items: Sequence[NewInboxItem]) -> list[int]:
    """Insert items in the caller's transaction, all in one INSERT; an item whose
    (source, source_key) is already stored (or comes twice) returns the existing id."""
    if not items:
        return []
    rows = [
        {
            "source": item.source,
            "source_key": item.source_key,
            "raw": item.raw,
            "size": len(item.raw),
            "envelope_from": item.envelope_from,
            "envelope_to": list(item.envelope_to),
            "message_hash": message_hash(item.raw),
        }
        for item in items
    ]
    statement = _add_inbox(session.get_bind().dialect.name)
    inserted = {(r.source, r.source_key): r.id for r in session.execute(statement, rows)}
    _add_keys(session, items, dict(inserted))
    ids: list[int] = []
    for item in items:
        key = (item.source, item.source_key)
        if key not in inserted:  # stored before (a re-fetch, a retried commit)
            inserted[key] = session.execute(
                _INBOX_BY_KEY, {"source": item.source, "source_key": item.source_key}
            ).scalar_one()
        ids.append(inserted[key])
    return ids


def _add_keys(
    session: Session, items: Sequence[NewInboxItem], inserted: dict[tuple[str, str], int]
) -> None:
    """The conversation keys of the rows just `inserted` (a row stored before has its own; an
    item given twice adds its keys once)."""
    rows: list[dict[str, object]] = []
    for item in items:
        inbox_id = inserted.pop((item.source, item.source_key), None)
        if inbox_id is not None:
            rows += [{"key": key, "inbox_id": inbox_id} for key in dict.fromkeys(item.conversation)]
    if rows:
        session.execute(_add_conversation(session.get_bind().dialect.name), rows)


@functools.cache
def _add_conversation(dialect: str) -> Insert:
    return insert_unless_present(dialect, _KEYS)


def _in_order(candidate: Table) -> ColumnElement[bool]:
    """No earlier inbox row that shares a conversation key with `candidate` is waiting (queued
    or processing): done and quarantined rows let their conversation go on, so a mail that
    failed never stalls the replies behind it."""
    mine, theirs = _KEYS.alias("mine"), _KEYS.alias("theirs")
    earlier = _INBOX.alias("earlier")
    return ~exists(
        select(1)
        .select_from(
            mine.join(theirs, (theirs.c.key == mine.c.key) & (theirs.c.inbox_id < mine.c.inbox_id))
            .join(earlier, earlier.c.id == theirs.c.inbox_id)
        )
        .where(mine.c.inbox_id == candidate.c.id, earlier.c.state.in_(INBOX_WAITING))
    )


def _claim_statement(skip_locked: bool) -> Update:
    """`skip_locked`: PostgreSQL, several instances: candidates another instance has locked are
    skipped, and so are rows whose conversation has an earlier row still waiting."""
    now = bindparam("now", type_=_INBOX.c.claimed_at.type)
    # queued, and not waiting out the back-off of a temporary fault
    due = (_INBOX.c.state == "queued") & (
        _INBOX.c.not_before.is_(None) | (_INBOX.c.not_before <= now)
    )
    oldest = select(_INBOX.c.id).where(due).order_by(_INBOX.c.id).limit(1)
    if skip_locked:
        oldest = oldest.where(_in_order(_INBOX)).with_for_update(skip_locked=True, of=_INBOX)
    return (
        update(_INBOX)
        .where(_INBOX.c.id == oldest.scalar_subquery(), due)
        .values(
            state="processing",
            attempts=_INBOX.c.attempts + 1,
            claimed_at=now,
            claimed_by=bindparam("worker", type_=_INBOX.c.claimed_by.type),
            lease_until=bindparam("until", type_=_INBOX.c.lease_until.type),
        )
        .returning(*_INBOX.c)
    )


# Built once: the worker claims a row for every mail.
_CLAIM = {"sqlite": Direct(_claim_statement(False)),
          "postgresql": Direct(_claim_statement(True))}
_RELEASE = (
    update(_INBOX)
    .where(
        _INBOX.c.id == bindparam("item_id"),
        _INBOX.c.state == "processing",
        _INBOX.c.claimed_by == bindparam("worker"),
    )
    .values(state="queued", attempts=_INBOX.c.attempts - 1, claimed_at=None, claimed_by=None,
            lease_until=None)
)

DEFAULT_LEASE = timedelta(seconds=60)


class LeaseLost(Exception):
    """The inbox row is no longer `processing` under this instance's claim: its lease ran out
    (or its instance looked gone) and another instance took it over. Whatever was done for it
    in the transaction must be rolled back, so no second ticket, article or acknowledgement is
    made of one mail."""

    def __init__(self, item_id: int) -> None:
        super().__init__(f"inbox row {item_id}: claim lost (lease expired, row taken over)")
        self.item_id = item_id


@dataclass(frozen=True, slots=True)
class Claim:
    id: int
    attempts: int  # including this one
    item: InboxItem  # the row as claimed: a plain record, not tracked by any session


def claim_inbox(
    session: Session, worker: str, lease: timedelta = DEFAULT_LEASE
) -> Claim | None:
    """Take the oldest queued row and mark it processing under `worker` (the instance id) with
    a lease of `lease`, in one UPDATE … RETURNING that also hands back the whole row, raw mail
    included (PostgreSQL picks the row with SKIP LOCKED, so several instances never wait on
    each other)."""
    statement = _CLAIM.get(session.get_bind().dialect.name, _CLAIM["sqlite"])
    now = utcnow()
    row = execute(session.connection(), statement,
                  {"now": now, "worker": worker, "until": now + lease}).mappings().first()
    if row is None:
        return None
    return Claim(row["id"], row["attempts"], InboxItem(**row))


def release_inbox(session: Session, claim: Claim, worker: str) -> bool:
    """Give back a row claimed but never worked on (the worker stops): queued again, and the
    attempt it was charged is taken back. False if it is no longer ours to give back."""
    result = session.execute(_RELEASE, {"item_id": claim.id, "worker": worker})
    return result.rowcount == 1  # type: ignore[attr-defined]


def still_claimed(session: Session, claim: Claim, worker: str) -> bool:
    """True if the row is still `processing` under this claim of `worker`: a failure recorded
    late (the database failed meanwhile) must not touch a row recovered and claimed again."""
    row = session.execute(
        select(_INBOX.c.state, _INBOX.c.claimed_by, _INBOX.c.attempts).where(
            _INBOX.c.id == claim.id
        )
    ).first()
    return row is not None and tuple(row) == ("processing", worker, claim.attempts)


def _lapsed(now: datetime) -> ColumnElement[bool]:
    """The lease ran out (a row claimed before leases existed has none)."""
    return _INBOX.c.lease_until.is_(None) | (_INBOX.c.lease_until < now)


def claimers(session: Session, me: str, now: datetime) -> list[str]:
    """The other instances that hold `processing` rows under a lease still running: the
    caller asks which of them are gone (storage.instances)."""
    rows = session.execute(
        select(_INBOX.c.claimed_by)
        .where(_INBOX.c.state == "processing", _INBOX.c.claimed_by.is_not(None),
               _INBOX.c.claimed_by != me, ~_lapsed(now))
        .distinct()
    ).scalars()
    return [claimer for claimer in rows if claimer is not None]


@dataclass(frozen=True, slots=True)
class Recovered:
    """One row taken back: from whom, why (`own`, `expired`, `gone`) and its new state."""

    id: int
    claimed_by: str | None
    lease_until: datetime | None
    why: str
    state: str


def recover_inbox(
    session: Session,
    max_attempts: int,
    *,
    me: str | None = None,
    gone: Sequence[str] = (),
    now: datetime | None = None,
) -> list[Recovered]:
    """Rows left `processing` go back to the queue, or to quarantine once they have used up
    their attempts — only rows that are no live instance's: claimed by `me` (this instance's
    worker died, or a stable instance.id restarted), claimed by an instance that is `gone`, or
    whose lease ran out. A row of a live instance under a running lease is never touched. On
    PostgreSQL the rows are locked as they are chosen and the lease is checked again under
    the lock, so a renewal that commits meanwhile wins."""
    now = now or utcnow()
    who = _lapsed(now)
    if me is not None:
        who = who | (_INBOX.c.claimed_by == me)
    if gone:
        who = who | _INBOX.c.claimed_by.in_(list(gone))
    picked = (
        select(_INBOX.c.id, _INBOX.c.claimed_by, _INBOX.c.lease_until, _INBOX.c.attempts)
        .where(_INBOX.c.state == "processing", who)
        .order_by(_INBOX.c.id)
    )
    if session.get_bind().dialect.name == "postgresql":
        picked = picked.with_for_update(skip_locked=True)
    recovered: list[Recovered] = []
    for row in session.execute(picked).all():
        if row.claimed_by is not None and row.claimed_by == me:
            why = "own"
        elif row.claimed_by is not None and row.claimed_by in gone:
            why = "gone"
        else:
            why = "expired"
        values: dict[str, object]
        if row.attempts >= max_attempts:
            values = {"state": "quarantined", "stage": "worker",
                      "reason": f"processing was interrupted {max_attempts} times (crash or kill)",
                      "finished_at": now}
        else:
            values = {"state": "queued"}
        session.execute(
            update(_INBOX).where(_INBOX.c.id == row.id, _INBOX.c.state == "processing")
            .values(lease_until=None, **values)
        )
        recovered.append(Recovered(row.id, row.claimed_by, row.lease_until, why,
                                   str(values["state"])))
    return recovered


_RENEW = (
    update(_INBOX)
    .where(_INBOX.c.state == "processing", _INBOX.c.claimed_by == bindparam("worker"))
    .values(lease_until=bindparam("until", type_=_INBOX.c.lease_until.type))
)


_FORGET_KEYS: Delete = delete(_KEYS).where(_KEYS.c.inbox_id == bindparam("item_id"))


def renew_leases(session: Session, worker: str, until: datetime) -> int:
    """Every row `worker` holds `processing` keeps its claim until `until`. On PostgreSQL rows
    locked right now are skipped: the worker's own batch is finishing them (waiting for them
    could deadlock with it), or another instance is taking over a row whose lease ran out."""
    statement = _RENEW
    if session.get_bind().dialect.name == "postgresql":
        mine = (
            select(_INBOX.c.id)
            .where(_INBOX.c.state == "processing", _INBOX.c.claimed_by == bindparam("worker"))
            .with_for_update(skip_locked=True)
        )
        statement = _RENEW.where(_INBOX.c.id.in_(mine.scalar_subquery()))
    result = session.execute(statement, {"worker": worker, "until": until})
    return int(result.rowcount)  # type: ignore[attr-defined]


def _mine(statement: Update) -> Update:
    """Only while the row is still `processing` under this worker's claim."""
    return statement.where(
        _INBOX.c.id == bindparam("item_id"),
        _INBOX.c.state == "processing",
        _INBOX.c.claimed_by == bindparam("worker"),
    )


def _settle(session: Session, statement: Direct, params: dict[str, object]) -> None:
    """Run a conditional UPDATE of one claimed row; LeaseLost if it is no longer ours."""
    if execute(session.connection(), statement, params).rowcount != 1:
        raise LeaseLost(int(params["item_id"]))  # type: ignore[call-overload]


_FINISH = Direct(
    _mine(update(_INBOX)).values(
        state="done",
        ticket_id=bindparam("ticket_id", type_=_INBOX.c.ticket_id.type),
        stage=bindparam("stage", type_=_INBOX.c.stage.type),
        reason=bindparam("reason", type_=_INBOX.c.reason.type),
        finished_at=bindparam("now", type_=_INBOX.c.finished_at.type),
        lease_until=None,
    )
)
_QUARANTINE = Direct(
    _mine(update(_INBOX)).values(
        state="quarantined",
        stage=bindparam("stage", type_=_INBOX.c.stage.type),
        reason=bindparam("reason", type_=_INBOX.c.reason.type),
        finished_at=bindparam("now", type_=_INBOX.c.finished_at.type),
        lease_until=None,
    )
)
_REQUEUE = Direct(
    _mine(update(_INBOX)).values(
        state="queued", reason=bindparam("reason", type_=_INBOX.c.reason.type), lease_until=None
    )
)
_DEFER = Direct(
    _mine(update(_INBOX)).values(
        state="queued",
        attempts=_INBOX.c.attempts - 1,
        retries=_INBOX.c.retries + 1,
        not_before=bindparam("not_before", type_=_INBOX.c.not_before.type),
        reason=bindparam("reason", type_=_INBOX.c.reason.type),
        claimed_at=None,
        claimed_by=None,
        lease_until=None,
    )
)

# finish, quarantine, requeue and defer change a row only while it is `processing` under the
# caller's claim (`worker`, the instance id); otherwise they raise LeaseLost and the caller
# rolls back what it did for the row.


def finish_inbox(
    session: Session, item_id: int, *, worker: str, ticket_id: int | None, stage: str | None,
    reason: str | None,
) -> None:
    _settle(session, _FINISH, {"item_id": item_id, "worker": worker, "ticket_id": ticket_id,
                               "stage": stage, "reason": reason, "now": utcnow()})
    if session.get_bind().dialect.name != "sqlite":  # SQLite rows have no keys
        # a done row never blocks a later one: its keys would only grow the table
        session.execute(_FORGET_KEYS, {"item_id": item_id})


def quarantine_inbox(
    session: Session, item_id: int, *, worker: str, stage: str, reason: str
) -> None:
    _settle(session, _QUARANTINE, {"item_id": item_id, "worker": worker, "stage": stage,
                                   "reason": reason[:2000], "now": utcnow()})


def requeue_inbox(session: Session, item_id: int, *, worker: str, reason: str) -> None:
    _settle(session, _REQUEUE, {"item_id": item_id, "worker": worker, "reason": reason[:2000]})


def defer_inbox(
    session: Session, item_id: int, *, worker: str, reason: str, not_before: datetime
) -> None:
    """A temporary fault of the environment (a full disk): the row goes back to the queue, is
    not claimed again before `not_before`, and the attempt it was charged is taken back (the
    mail is not at fault); `retries` counts such faults and sets the next back-off."""
    _settle(session, _DEFER, {"item_id": item_id, "worker": worker, "reason": reason[:2000],
                              "not_before": not_before})


def retry_inbox(session: Session, item_id: int) -> bool:
    """`postdesk inbox retry`: a quarantined row goes back to the queue with fresh attempts."""
    result = session.execute(
        update(InboxItem)
        .where(InboxItem.id == item_id, InboxItem.state == "quarantined")
        .values(state="queued", attempts=0, retries=0, not_before=None, stage=None,
                reason=None, finished_at=None)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


def list_inbox(
    session: Session, state: str | None = None, limit: int = 200, *, with_mail: bool = True
) -> list[InboxItem]:
    """Newest first. `with_mail=False` for listings that never read the mail: 200 rows stay
    cheap, and a row sealed under another secret (after a rotation) still lists."""
    query = select(InboxItem).order_by(InboxItem.id.desc()).limit(limit)
    if not with_mail:
        query = query.options(defer(InboxItem.raw, raiseload=True))
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


def waiting(session: Session, now: datetime) -> list[tuple[str, datetime]]:
    """(reason, not_before) of the queued rows that wait out the back-off of a temporary
    fault, soonest first: `postdesk status` shows them with the class of their fault."""
    rows = session.execute(
        select(InboxItem.reason, InboxItem.not_before)
        .where(InboxItem.state == "queued", InboxItem.not_before > now)
        .order_by(InboxItem.not_before)
    ).all()
    return [(reason or "", not_before) for reason, not_before in rows if not_before is not None]


def oldest_by_state(session: Session) -> tuple[dict[str, datetime], dict[str, datetime]]:
    """The time of the oldest row per state in the inbox (received) and the outbox (queued),
    for the metrics: a growing age means a stuck queue."""
    oldest: list[dict[str, datetime]] = []
    for model, column in ((InboxItem, InboxItem.received_at), (OutboxItem, OutboxItem.created_at)):
        rows = session.execute(select(model.state, func.min(column)).group_by(model.state)).all()
        oldest.append({state: at for state, at in rows if at is not None})
    return oldest[0], oldest[1]


# --- outbox -------------------------------------------------------------------------------



_OUTBOX = cast(Table, OutboxItem.__table__)


def _outbox_claim_statement(skip_locked: bool) -> Update:
    now = bindparam("now", type_=_OUTBOX.c.claimed_at.type)
    due = ((_OUTBOX.c.state == "queued") & (_OUTBOX.c.next_attempt_at <= now)) | (
        (_OUTBOX.c.state == "sending")
        & (_OUTBOX.c.claimed_at < bindparam("stale", type_=_OUTBOX.c.claimed_at.type))
    )
    candidates = (
        select(_OUTBOX.c.id)
        .where(due)
        .order_by(_OUTBOX.c.next_attempt_at, _OUTBOX.c.id)
        .limit(bindparam("limit"))
    )
    if skip_locked:
        candidates = candidates.with_for_update(skip_locked=True)
    return (
        update(_OUTBOX)
        .where(_OUTBOX.c.id.in_(candidates.scalar_subquery()), due)
        .values(state="sending", attempts=_OUTBOX.c.attempts + 1, claimed_at=now,
                claimed_by=bindparam("claimer", type_=_OUTBOX.c.claimed_by.type))
        .returning(*_OUTBOX.c)
    )


_CLAIM_OUTBOX = {
    "sqlite": _outbox_claim_statement(False),
    "postgresql": _outbox_claim_statement(True),
}


def claim_outbox(
    session: Session, now: datetime, lease: timedelta, limit: int, claimer: str | None = None
) -> list[OutboxItem]:
    """Due rows (queued and due, or `sending` whose lease ran out after a crash) → `sending`
    under `claimer` (the instance id), up to `limit` of them in one UPDATE … RETURNING
    (PostgreSQL skips rows another instance has locked). A row another instance is sending is
    left alone until its lease runs out (renewed while its batch is sent), or until that
    instance is gone (`recover_outbox`). Returned as plain records (not tracked by the
    session), oldest due first."""
    statement = _CLAIM_OUTBOX.get(session.get_bind().dialect.name, _CLAIM_OUTBOX["sqlite"])
    params = {"now": now, "stale": now - lease, "limit": limit, "claimer": claimer}
    rows = session.execute(statement, params).all()
    items = [OutboxItem(**row._mapping) for row in rows]
    items.sort(key=lambda item: (item.next_attempt_at, item.id))
    return items


def outbox_claimers(session: Session, me: str) -> list[str]:
    """The other instances that have outbox rows `sending` (the caller asks which are gone)."""
    rows = session.execute(
        select(_OUTBOX.c.claimed_by)
        .where(_OUTBOX.c.state == "sending", _OUTBOX.c.claimed_by.is_not(None),
               _OUTBOX.c.claimed_by != me)
        .distinct()
    ).scalars()
    return [claimer for claimer in rows if claimer is not None]


def recover_outbox(session: Session, claimers: Sequence[str]) -> int:
    """Rows left `sending` by instances that are gone (or by this instance's previous run)
    are due again at once, instead of when their lease runs out; their attempt stays counted
    (a crash loop still ends in `failed`)."""
    if not claimers:
        return 0
    result = session.execute(
        update(_OUTBOX)
        .where(_OUTBOX.c.state == "sending", _OUTBOX.c.claimed_by.in_(list(claimers)))
        .values(state="queued", claimed_at=None)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def mark_outbox_sent(session: Session, item_ids: Sequence[int], now: datetime) -> None:
    """Record several successful deliveries at once."""
    if item_ids:
        session.execute(
            update(_OUTBOX)
            .where(_OUTBOX.c.id.in_(list(item_ids)))
            .values(state="sent", last_error=None, sent_at=now)
        )


def renew_outbox_claims(session: Session, item_ids: Sequence[int], now: datetime) -> None:
    """Rows still `sending` in a batch stay ours: their lease starts again at `now`."""
    if item_ids:
        session.execute(
            update(_OUTBOX)
            .where(_OUTBOX.c.id.in_(list(item_ids)), _OUTBOX.c.state == "sending")
            .values(claimed_at=now)
        )


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


def list_outbox(
    session: Session, state: str | None = None, limit: int = 200, *, with_mail: bool = True
) -> list[OutboxItem]:
    """Newest first; `with_mail` as for `list_inbox`."""
    query = select(OutboxItem).order_by(OutboxItem.id.desc()).limit(limit)
    if not with_mail:
        query = query.options(defer(OutboxItem.raw, raiseload=True))
    if state:
        query = query.where(OutboxItem.state == state)
    return list(session.scalars(query).all())
