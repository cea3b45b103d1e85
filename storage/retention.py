"""Retention of original mails: the raw bytes of processed mails are deleted once they are
older than the retention period; tickets keep only the redacted text. And of the rate-limit log,
whose rows (recipient addresses) matter only within the limits' window, and of the morning
digests' claims, which matter only on their day."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import LargeBinary, delete, func, literal, update
from sqlalchemy.orm import Session

from storage.models import AutoReplyLog, DigestSend, InboxItem, OutboxItem


def purge_originals(session: Session, received_before: datetime) -> int:
    """Forget the raw mail of every processed (done) inbox row received before the cut-off, and
    of every outbox row sent before it; the number of rows changed. Quarantined rows keep theirs
    until an admin retried or removed them: nothing is lost. Idempotent: each condition skips
    rows an earlier run emptied, so a second run changes (and rewrites) nothing."""
    result = session.execute(
        update(InboxItem)
        .where(
            InboxItem.state == "done",
            InboxItem.received_at < received_before,
            InboxItem.raw.is_not(None),
        )
        .values(raw=None)
    )
    sent = session.execute(  # delivered mail may quote the original (relayed agent replies)
        update(OutboxItem)
        .where(
            OutboxItem.state == "sent",
            OutboxItem.sent_at < received_before,
            func.length(OutboxItem.raw) > 0,  # emptied by an earlier run: leave it alone
        )
        # written as is, not sealed: a sealed b"" is not empty, and the condition above
        # would take the row again on every run
        .values(raw=literal(b"", LargeBinary()))
    )
    return int(result.rowcount) + int(sent.rowcount)  # type: ignore[attr-defined]


def purge_rate_log(session: Session, logged_before: datetime) -> int:
    """Forget automatic mails logged before the cut-off: no cap counts that far back."""
    result = session.execute(delete(AutoReplyLog).where(AutoReplyLog.created_at < logged_before))
    return int(result.rowcount)  # type: ignore[attr-defined]


def purge_digest_log(session: Session, created_before: datetime) -> int:
    """Forget which agent got a morning digest on which day before the cut-off: the claim
    matters only on its day (gateway.lifecycle.digest), and the rows name staff addresses."""
    result = session.execute(delete(DigestSend).where(DigestSend.created_at < created_before))
    return int(result.rowcount)  # type: ignore[attr-defined]


class OriginalGone(Exception):
    """The article exists but its original mail was purged (or it never had one)."""


def original_mail(session: Session, ref: str, position: int) -> bytes | None:
    """The stored original of the ticket's `position`-th article (1-based, as listed by
    `tickets show`); None if there is no such article, OriginalGone if it has no original."""
    from sqlalchemy import select

    from storage.models import Article, Ticket, article_order

    article = (
        session.scalars(
            select(Article)
            .join(Ticket, Article.ticket_id == Ticket.id)
            .where(Ticket.ref == ref.upper())
            .order_by(*article_order())
            .offset(position - 1)
            .limit(1)
        ).first()
        if position >= 1
        else None
    )
    if article is None:
        return None
    item = session.get(InboxItem, article.inbox_id) if article.inbox_id is not None else None
    if item is None or item.raw is None:
        raise OriginalGone(f"article {position} of {ref.upper()} has no stored original")
    return item.raw
