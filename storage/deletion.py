"""Deleting a ticket's personal data for good (deletion periods and erasure requests, issue
16), in one transaction with the anonymous statistics row and the deletion record that prove
it happened.

A ticket's personal data is in: its row (subject, requester, pseudonyms), articles (addresses,
text), attachments (rows, and the sealed bytes in the blob store), participants, message refs,
events, the inbox rows of its mails (the encrypted originals, envelope, conversation keys),
the ids of its inbound mails, its outbox rows (the rendered mails) and the rate-limit log of
its parties. All of it goes; what stays is its `TicketStatistic` (kept current while it lived,
finalised here: the link to the ticket cleared, `deleted_at` set) and a
`DeletionRecord` (ref, rule, counts) plus one content-free `ticket-deleted` event without a
ticket, for the audit view.

Blob files are shared by content (storage.blobs): a blob is removed only when no attachment
row refers to it any more, and only after the commit (a crash in between leaves an orphan
file, never a row pointing at nothing). Rows of inbox mails still queued or being processed
are left to the worker.

`pseudonymise_ticket` is the other answer to an erasure request, for queues whose tickets must
be kept: the person's address is replaced, the text and attachments removed, the rest stays.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Text, cast, delete, func, or_, select, update
from sqlalchemy.orm import Session

from storage.blobs import Blobs, DatabaseBlobStore
from storage.engine import Database
from storage.models import (
    Article,
    Attachment,
    AutoReplyLog,
    DeletionRecord,
    Event,
    InboundMessage,
    InboxConversation,
    InboxItem,
    MessageRef,
    OutboxItem,
    Participant,
    Ticket,
)
from storage.statistics import finalise
from storage.tickets import event_row

LIVE_INBOX = ("queued", "processing")  # the worker's: left alone


@dataclass(frozen=True)
class Why:
    """Why a ticket goes, as the deletion record keeps it."""

    cause: str  # period | erasure | pseudonymised
    rule: str  # the queue policy's name, or "defaults"
    trigger: str  # closed | last_activity | request
    period: str  # "6 months"; "" for a request
    actor: str  # "system" (the timed job) or "cli:<user>"


@dataclass
class Deleted:
    """What one or more deletions removed: counts per kind, and the blob addresses that no row
    refers to any more (to remove after the commit: `remove_blobs`)."""

    counts: Counter[str] = field(default_factory=Counter)
    blobs: list[str] = field(default_factory=list)
    refs: list[str] = field(default_factory=list)

    def add(self, other: Deleted) -> None:
        self.counts.update(other.counts)
        self.blobs.extend(other.blobs)
        self.refs.extend(other.refs)


def ticket_counts(session: Session, ticket_id: int) -> dict[str, int]:
    """How much a deletion of the ticket would remove (for `retention plan`, without changing
    anything): articles, attachments, inbox originals, outbox mails, events."""
    articles = select(Article.id).where(Article.ticket_id == ticket_id)
    return {
        "articles": _count(session, select(func.count()).select_from(articles.subquery())),
        "attachments": _count(session, select(func.count(Attachment.id))
                              .where(Attachment.article_id.in_(articles))),
        "originals": len(_inbox_ids(session, ticket_id)),
        "outbox": _count(session, select(func.count(OutboxItem.id))
                         .where(OutboxItem.ticket_id == ticket_id)),
        "events": _count(session, select(func.count(Event.id))
                         .where(Event.ticket_id == ticket_id)),
    }


def delete_ticket(session: Session, ticket_id: int, why: Why, blobs: Blobs,
                  now: datetime) -> Deleted:
    """Delete everything of the ticket, write its statistics row, deletion record and a
    `ticket-deleted` event; the caller commits, then calls `remove_blobs`."""
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        return Deleted()
    done = Deleted(refs=[ticket.ref])
    counts = done.counts
    article_ids = list(session.scalars(select(Article.id).where(Article.ticket_id == ticket_id)))
    finalise(session, ticket, articles=len(article_ids), now=now)
    parties = _parties(session, ticket)
    done.blobs = _drop_attachments(session, article_ids, blobs, counts)
    inbox_ids = _inbox_ids(session, ticket_id)
    message_ids = _message_ids(session, ticket_id)
    counts["articles"] += _delete(session, delete(Article).where(Article.ticket_id == ticket_id))
    counts["message_refs"] += _delete(session, delete(MessageRef)
                                      .where(MessageRef.ticket_id == ticket_id))
    _drop_inbox(session, inbox_ids, message_ids, counts)
    counts["outbox"] += _delete(session, delete(OutboxItem)
                                .where(OutboxItem.ticket_id == ticket_id))
    counts["events"] += _delete(session, delete(Event).where(Event.ticket_id == ticket_id))
    counts["participants"] += _delete(session, delete(Participant)
                                      .where(Participant.ticket_id == ticket_id))
    session.execute(update(Ticket).where(Ticket.linked_ticket_id == ticket_id)
                    .values(linked_ticket_id=None))
    session.execute(update(InboxItem).where(InboxItem.ticket_id == ticket_id)
                    .values(ticket_id=None))  # a live row: the worker threads it afresh
    counts["rate_log"] += forget_rate_log(session, _unshared(session, parties, ticket_id))
    session.flush()
    counts["tickets"] += _delete(session, delete(Ticket).where(Ticket.id == ticket_id)
                                .execution_options(synchronize_session=False))
    _record(session, ticket, why, counts, now)
    return done


def pseudonymise_ticket(session: Session, ticket_id: int, address: str, placeholder: str,
                        why: Why, blobs: Blobs, now: datetime) -> Deleted:
    """Keep the ticket but nothing of the person at `address`: it becomes `placeholder`
    wherever it stood, every article's subject and text and all attachments are removed, the
    originals, outbox mails and inbound ids go, and so do events that name the address."""
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        return Deleted()
    done = Deleted(refs=[ticket.ref])
    counts = done.counts
    article_ids = list(session.scalars(select(Article.id).where(Article.ticket_id == ticket_id)))
    done.blobs = _drop_attachments(session, article_ids, blobs, counts)
    inbox_ids = _inbox_ids(session, ticket_id)
    message_ids = _message_ids(session, ticket_id)
    for article in session.scalars(select(Article).where(Article.ticket_id == ticket_id)):
        article.subject, article.body, article.inbox_id = "", "", None
        if article.direction == "in":
            article.message_id = None
        article.from_addr = _swap(article.from_addr, address, placeholder)
        article.to_addrs = [_swap(a, address, placeholder) for a in article.to_addrs or []]
        article.cc_addrs = [_swap(a, address, placeholder) for a in article.cc_addrs or []]
        counts["articles_redacted"] += 1
    counts["message_refs"] += _delete(session, delete(MessageRef).where(
        MessageRef.ticket_id == ticket_id, MessageRef.direction == "in"))
    session.flush()
    _drop_inbox(session, inbox_ids, message_ids, counts)
    counts["outbox"] += _delete(session, delete(OutboxItem)
                                .where(OutboxItem.ticket_id == ticket_id))
    events = session.scalars(select(Event).where(Event.ticket_id == ticket_id))
    naming = [e.id for e in events if _names(e.detail, address) or same(e.actor, address)]
    counts["events"] += _delete(session, delete(Event).where(Event.id.in_(naming)))
    counts["participants"] += _delete(session, delete(Participant).where(
        Participant.ticket_id == ticket_id, func.lower(Participant.email) == address.lower()))
    if same(ticket.requester, address):
        ticket.requester = placeholder
    ticket.subject, ticket.pseudonyms, ticket.conversation = "(pseudonymisiert)", {}, None
    session.flush()
    _record(session, ticket, why, counts, now)
    return done


def forget_address(session: Session, address: str, placeholder: str) -> Counter[str]:
    """Take `address` out of every place left outside its own tickets: the party lists of
    other tickets (their articles' recipient lists name `placeholder` instead, the originals
    and sent mails of those tickets that name the address are forgotten early, and mails still
    to go lose it as a recipient), the rate-limit log, finished inbox rows it sent that belong
    to no ticket, and outbox mails to it that belong to no ticket."""
    counts: Counter[str] = Counter()
    lowered = address.lower()
    party_of = list(session.scalars(select(Participant.ticket_id).where(
        func.lower(Participant.email) == lowered)))
    counts["cc_participants"] += _delete(session, delete(Participant).where(
        func.lower(Participant.email) == lowered))
    mentioned = session.scalars(select(Article).where(or_(
        func.lower(Article.from_addr) == lowered,
        func.lower(cast(Article.to_addrs, Text)).contains(lowered, autoescape=True),
        func.lower(cast(Article.cc_addrs, Text)).contains(lowered, autoescape=True))))
    for article in mentioned:  # the LIKE above finds ba@x.de too; `same` is exact
        before = (article.from_addr, list(article.to_addrs or []), list(article.cc_addrs or []))
        article.from_addr = _swap(article.from_addr, address, placeholder)
        article.to_addrs = [_swap(a, address, placeholder) for a in article.to_addrs or []]
        article.cc_addrs = [_swap(a, address, placeholder) for a in article.cc_addrs or []]
        if before != (article.from_addr, article.to_addrs, article.cc_addrs):
            counts["cc_articles"] += 1
    _forget_in_mail(session, party_of, address, counts)
    counts["rate_log"] += forget_rate_log(session, [address])
    strays = list(session.scalars(select(InboxItem.id).where(
        func.lower(InboxItem.envelope_from) == lowered, InboxItem.ticket_id.is_(None),
        InboxItem.state.not_in(LIVE_INBOX))))
    session.execute(update(Article).where(Article.inbox_id.in_(strays)).values(inbox_id=None))
    _drop_inbox(session, strays, [], counts)
    unlinked = session.scalars(select(OutboxItem).where(
        OutboxItem.ticket_id.is_(None),
        func.lower(cast(OutboxItem.envelope_to, Text)).contains(lowered, autoescape=True)))
    gone = [row.id for row in unlinked if any(same(a, address) for a in row.envelope_to or [])]
    counts["outbox"] += _delete(session, delete(OutboxItem).where(OutboxItem.id.in_(gone)))
    session.flush()
    return counts


def address_counts(session: Session, address: str) -> dict[str, int]:
    """What `forget_address` would take out at least (for a dry run): the address's rows in
    party lists and in the rate-limit log."""
    lowered = address.lower()
    return {
        "participants": _count(session, select(func.count(Participant.id)).where(
            func.lower(Participant.email) == lowered)),
        "rate_log": _count(session, select(func.count(AutoReplyLog.id)).where(
            func.lower(AutoReplyLog.recipient) == lowered)),
    }


def mentions(data: bytes | None, address: str) -> bool:
    """Whether `data` holds `address` as a whole address (not inside a longer one), any case."""
    if not data:
        return False
    pattern = rb"(?<![\w.+-])" + re.escape(address.encode()) + rb"(?![\w-])"
    return re.search(pattern, data, re.IGNORECASE) is not None


def _forget_in_mail(session: Session, ticket_ids: list[int], address: str,
                    counts: Counter[str]) -> None:
    """In the tickets the address was a party to (not its own): forget the originals and the
    sent mails that name it (as the purge of originals does, early), drop it from the
    recipients of mails still to go, and drop mails that were only for it."""
    if not ticket_ids:
        return
    of_tickets = select(Article.inbox_id).where(Article.ticket_id.in_(ticket_ids))
    originals = session.scalars(select(InboxItem).where(
        or_(InboxItem.ticket_id.in_(ticket_ids), InboxItem.id.in_(of_tickets)),
        InboxItem.raw.is_not(None), InboxItem.state.not_in(LIVE_INBOX)))
    for item in originals:
        if mentions(item.raw, address):
            item.raw = None
            counts["originals_forgotten"] += 1
    for mail in list(session.scalars(select(OutboxItem).where(
            OutboxItem.ticket_id.in_(ticket_ids)))):
        recipients = [a for a in mail.envelope_to or [] if not same(a, address)]
        if not recipients:
            session.delete(mail)
            counts["outbox"] += 1
            continue
        if len(recipients) != len(mail.envelope_to or []):
            mail.envelope_to = recipients
        if mail.state not in ("queued", "sending") and mentions(mail.raw, address):
            mail.raw = b""
            counts["outbox_forgotten"] += 1


def forget_rate_log(session: Session, addresses: Iterable[str]) -> int:
    lowered = sorted({a.lower() for a in addresses if a})
    if not lowered:
        return 0
    return _delete(session, delete(AutoReplyLog).where(
        func.lower(AutoReplyLog.recipient).in_(lowered)))


def remove_blobs(blobs: Blobs, session: Session, addresses: Sequence[str]) -> int:
    """After the commit: remove each blob that still no attachment row refers to (one may
    have been stored again in the meantime). Returns how many were removed."""
    removed = 0
    for address in dict.fromkeys(addresses):
        if not _referenced(session, address):
            blobs.remove(address)
            removed += 1
    return removed


def scrub_wal(db: Database) -> bool:
    """SQLite: copy the write-ahead log into the database file and empty it, so the deleted
    rows do not linger in old log frames (deleted cells are zeroed: `secure_delete`, see
    storage.engine). Best effort: a reader in the middle of a transaction keeps the log until
    a later checkpoint (SQLite's own). True if the log was emptied; PostgreSQL: False."""
    if not db.is_sqlite:
        return False
    import sqlite3

    connection = db.engine.raw_connection()  # outside a transaction (no BEGIN on it)
    try:
        cursor = connection.cursor()
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        row = cursor.fetchone()
        cursor.close()
    except sqlite3.OperationalError:  # busy: SQLite's own checkpoints do it later
        return False
    finally:
        connection.close()
    return row is not None and row[0] == 0


def same(a: str | None, b: str) -> bool:
    """Whether two addresses are the same mailbox: the whole address, case-insensitively."""
    return a is not None and a.strip().lower() == b.strip().lower()


def tickets_of(session: Session, address: str) -> list[Ticket]:
    """The tickets whose requester is `address` (the whole address, case-insensitively)."""
    return list(session.scalars(select(Ticket).where(
        func.lower(Ticket.requester) == address.strip().lower()).order_by(Ticket.id)))


def queues_in_use(session: Session) -> list[str | None]:
    """Every queue some ticket is in (None: tickets no rule gave a queue)."""
    return list(session.scalars(select(Ticket.queue).distinct()))


def expired(session: Session, queue: str | None, trigger: str,
            cutoff: datetime) -> list[tuple[int, str]]:
    """(id, ref) of the queue's tickets whose deletion period is over: closed before `cutoff`
    (trigger `closed`), or last changed before it (`last_activity`), oldest first."""
    in_queue = Ticket.queue.is_(None) if queue is None else Ticket.queue == queue
    when: list[ColumnElement[bool]] = (
        [Ticket.status == "closed", Ticket.closed_at.is_not(None), Ticket.closed_at < cutoff]
        if trigger == "closed" else [Ticket.updated_at < cutoff])
    rows = session.execute(select(Ticket.id, Ticket.ref).where(in_queue, *when)
                           .order_by(Ticket.id))
    return [(row.id, row.ref) for row in rows]


def deletion_records(session: Session, since: datetime | None = None) -> list[DeletionRecord]:
    """The deletion records, oldest first (from `since` on)."""
    statement = select(DeletionRecord).order_by(DeletionRecord.deleted_at, DeletionRecord.id)
    if since is not None:
        statement = statement.where(DeletionRecord.deleted_at >= since)
    return list(session.scalars(statement))


# --- parts ----------------------------------------------------------------------------------


def _count(session: Session, statement: Any) -> int:
    return int(session.scalar(statement) or 0)


def _delete(session: Session, statement: Any) -> int:
    return int(session.execute(statement).rowcount)  # type: ignore[attr-defined]


def _inbox_ids(session: Session, ticket_id: int) -> list[int]:
    """The finished inbox rows of the ticket's mails (stored as articles, or guarded on it),
    but none that an article of another ticket still refers to."""
    from_articles = select(Article.inbox_id).where(Article.ticket_id == ticket_id,
                                                   Article.inbox_id.is_not(None))
    elsewhere = select(Article.inbox_id).where(Article.ticket_id != ticket_id,
                                               Article.inbox_id.is_not(None))
    return list(session.scalars(select(InboxItem.id).where(
        or_(InboxItem.id.in_(from_articles), InboxItem.ticket_id == ticket_id),
        InboxItem.id.not_in(elsewhere), InboxItem.state.not_in(LIVE_INBOX))))


def _message_ids(session: Session, ticket_id: int) -> list[str]:
    ids = set(session.scalars(select(Article.message_id).where(
        Article.ticket_id == ticket_id, Article.message_id.is_not(None))))
    ids.update(session.scalars(select(MessageRef.message_id).where(
        MessageRef.ticket_id == ticket_id)))
    return sorted(i for i in ids if i)


def _drop_attachments(session: Session, article_ids: list[int], blobs: Blobs,
                      counts: Counter[str]) -> list[str]:
    """Delete the attachment rows; the blob addresses no row refers to any more. A database
    blob store loses its rows in this transaction; files go after the commit."""
    rows = list(session.scalars(select(Attachment).where(Attachment.article_id.in_(article_ids))))
    addresses = sorted({row.address for row in rows})
    counts["attachments"] += _delete(session, delete(Attachment)
                                     .where(Attachment.id.in_([r.id for r in rows])))
    orphans = [a for a in addresses if not _referenced(session, a)]
    bound = blobs.bound(session)
    if isinstance(bound, DatabaseBlobStore):
        for address in orphans:
            bound.remove(address)
    counts["blobs"] += len(orphans)
    return orphans


def _referenced(session: Session, address: str) -> bool:
    return session.scalar(select(func.count(Attachment.id)).where(
        func.coalesce(Attachment.blob, Attachment.sha256) == address)) != 0


def _drop_inbox(session: Session, inbox_ids: list[int], message_ids: list[str],
                counts: Counter[str]) -> None:
    """Delete inbox rows (the originals) with their conversation keys and inbound ids."""
    counts["inbound_ids"] += _delete(session, delete(InboundMessage).where(or_(
        InboundMessage.inbox_id.in_(inbox_ids), InboundMessage.message_id.in_(message_ids))))
    session.execute(delete(InboxConversation).where(InboxConversation.inbox_id.in_(inbox_ids)))
    counts["originals"] += _delete(session, delete(InboxItem).where(InboxItem.id.in_(inbox_ids)))


def _parties(session: Session, ticket: Ticket) -> set[str]:
    found = {ticket.requester.lower()}
    found.update(e.lower() for e in session.scalars(
        select(Participant.email).where(Participant.ticket_id == ticket.id)))
    return found


def _unshared(session: Session, addresses: set[str], ticket_id: int) -> list[str]:
    """Those of `addresses` that are no party to any other ticket (their rate-limit rows can
    go: nothing else of theirs is kept). Stored addresses are lower-cased at parse, so plain
    equality finds them through the indexes (lower() on the column read whole tables: most
    of a deletion's time among 100,000 tickets); a mixed-case leftover only lets a transient
    rate-limit row go early."""
    if not addresses:
        return []
    elsewhere = set(session.scalars(select(Participant.email).where(
        Participant.ticket_id != ticket_id, Participant.email.in_(addresses))))
    elsewhere.update(session.scalars(select(Ticket.requester).where(
        Ticket.id != ticket_id, Ticket.requester.in_(addresses))))
    return sorted(addresses - {address.lower() for address in elsewhere})


def _swap(value: str, address: str, placeholder: str) -> str:
    return placeholder if same(value, address) else value


def _names(detail: Any, address: str) -> bool:
    """Whether an event's detail holds the address anywhere (as a whole word of a value)."""
    if isinstance(detail, str):
        return any(same(part.strip("<>,;:\"'()"), address) for part in detail.split())
    if isinstance(detail, dict):
        return any(_names(value, address) for value in detail.values())
    if isinstance(detail, list):
        return any(_names(value, address) for value in detail)
    return False


def _record(session: Session, ticket: Ticket, why: Why, counts: Counter[str],
            now: datetime) -> None:
    kept = {kind: n for kind, n in sorted(counts.items()) if n}
    session.add(DeletionRecord(
        ticket_ref=ticket.ref, queue=ticket.queue, cause=why.cause, rule=why.rule,
        trigger=why.trigger, period=why.period, actor=why.actor, counts=kept, deleted_at=now))
    kind = "ticket-pseudonymised" if why.cause == "pseudonymised" else "ticket-deleted"
    row = event_row(None, actor=why.actor, kind=kind, now=now, ref=ticket.ref,
                    queue=ticket.queue, cause=why.cause, rule=why.rule)
    if why.cause == "pseudonymised":  # the ticket stays: the event stays on it
        row["ticket_id"] = ticket.id
    session.add(Event(**row))
