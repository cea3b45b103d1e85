"""Ticket queries and writes used by the pipeline and the CLI, behind one small class so that
no pipeline stage touches SQLAlchemy sessions directly."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, selectinload

from storage.models import (
    Article,
    Attachment,
    AutoReplyLog,
    Counter,
    Event,
    MessageRef,
    OutboxItem,
    Participant,
    Ticket,
)

TICKET_COUNTER = "ticket"


class TicketStore:
    """The pipeline's and CLI's view of tickets inside one transaction (one Session)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    # --- numbering -----------------------------------------------------------------------

    def next_ticket_number(self) -> int:
        """Atomically take the next number from the counter row (safe under concurrency:
        the UPDATE locks the row on PostgreSQL; SQLite has one writer)."""
        value = self.session.execute(
            update(Counter)
            .where(Counter.name == TICKET_COUNTER)
            .values(value=Counter.value + 1)
            .returning(Counter.value)
        ).scalar_one_or_none()
        if value is None:  # first ticket ever, or a database created without the seed row
            self.session.add(Counter(name=TICKET_COUNTER, value=1))
            self.session.flush()
            return 1
        return int(value)

    # --- lookups -------------------------------------------------------------------------

    def by_ref(self, ref: str) -> Ticket | None:
        return self.session.scalar(select(Ticket).where(Ticket.ref == ref.upper()))

    def by_id(self, ticket_id: int) -> Ticket | None:
        return self.session.get(Ticket, ticket_id)

    def by_message_ids(self, message_ids: Sequence[str]) -> Ticket | None:
        """The newest ticket that has seen or sent any of these Message-IDs."""
        if not message_ids:
            return None
        ticket_id = self.session.scalar(
            select(MessageRef.ticket_id)
            .where(MessageRef.message_id.in_(list(message_ids)))
            .order_by(MessageRef.ticket_id.desc())
            .limit(1)
        )
        return None if ticket_id is None else self.session.get(Ticket, ticket_id)

    def by_conversation(self, conversation: str) -> Ticket | None:
        return self.session.scalar(
            select(Ticket)
            .where(Ticket.conversation == conversation)
            .order_by(Ticket.id.desc())
            .limit(1)
        )

    def has_inbound_message(self, message_id: str) -> bool:
        """True if a received article already carries this Message-ID (duplicate delivery)."""
        return (
            self.session.scalar(
                select(Article.id)
                .where(Article.message_id == message_id, Article.direction == "in")
                .limit(1)
            )
            is not None
        )

    def participants(self, ticket: Ticket) -> dict[str, str]:
        """address → role for everyone who is a party to the ticket."""
        rows = self.session.execute(
            select(Participant.email, Participant.role).where(Participant.ticket_id == ticket.id)
        ).all()
        return {email: role for email, role in rows}

    # --- writes --------------------------------------------------------------------------

    def create_ticket(
        self,
        *,
        prefix: str,
        subject: str,
        requester: str,
        language: str,
        conversation: str | None,
        now: datetime,
        linked: Ticket | None = None,
        queue: str | None = None,
    ) -> Ticket:
        number = self.next_ticket_number()
        ticket = Ticket(
            number=number,
            ref=f"{prefix}-{number}",
            subject=subject,
            status="new",
            requester=requester,
            language=language,
            conversation=conversation,
            linked_ticket_id=linked.id if linked else None,
            queue=queue,
            priority="normal",
            tags=[],
            created_at=now,
            updated_at=now,
        )
        self.session.add(ticket)
        self.session.flush()
        return ticket

    def add_participant(self, ticket: Ticket, email: str, role: str) -> None:
        email = email.lower()
        exists = self.session.scalar(
            select(Participant.id).where(
                Participant.ticket_id == ticket.id, Participant.email == email
            )
        )
        if exists is None:
            self.session.add(Participant(ticket_id=ticket.id, email=email, role=role))

    def add_article(self, ticket: Ticket, **fields: Any) -> Article:
        article = Article(ticket_id=ticket.id, **fields)
        self.session.add(article)
        self.session.flush()
        return article

    def add_attachment(
        self, article: Article, *, filename: str, content_type: str, size: int, sha256: str
    ) -> Attachment:
        attachment = Attachment(
            article_id=article.id,
            filename=filename,
            content_type=content_type,
            size=size,
            sha256=sha256,
        )
        self.session.add(attachment)
        return attachment

    def add_message_refs(self, ticket: Ticket, message_ids: Iterable[str], direction: str) -> None:
        for message_id in dict.fromkeys(m for m in message_ids if m):
            exists = self.session.scalar(
                select(MessageRef.id).where(
                    MessageRef.ticket_id == ticket.id, MessageRef.message_id == message_id
                )
            )
            if exists is None:
                self.session.add(
                    MessageRef(ticket_id=ticket.id, message_id=message_id, direction=direction)
                )

    def add_event(
        self, ticket: Ticket | None, *, actor: str, kind: str, now: datetime, **detail: Any
    ) -> Event:
        event = Event(
            ticket_id=ticket.id if ticket else None,
            actor=actor,
            kind=kind,
            detail=detail,
            created_at=now,
        )
        self.session.add(event)
        return event

    def set_status(self, ticket: Ticket, status: str, *, actor: str, now: datetime) -> None:
        if ticket.status == status:
            return
        self.add_event(ticket, actor=actor, kind="status", now=now, old=ticket.status, new=status)
        ticket.status = status
        ticket.updated_at = now
        ticket.resolved_at = now if status in ("resolved", "closed") else None

    def add_outbox(self, item: OutboxItem) -> OutboxItem:
        self.session.add(item)
        return item

    # --- automatic-reply rate limit ------------------------------------------------------

    def auto_replies_since(self, recipient: str, since: datetime) -> int:
        return int(
            self.session.scalar(
                select(func.count())
                .select_from(AutoReplyLog)
                .where(
                    AutoReplyLog.recipient == recipient.lower(), AutoReplyLog.created_at >= since
                )
            )
            or 0
        )

    def log_auto_reply(self, recipient: str, now: datetime) -> None:
        self.session.add(AutoReplyLog(recipient=recipient.lower(), created_at=now))

    # --- listing for the CLI -------------------------------------------------------------

    def list_tickets(
        self, *, status: str | None = None, queue: str | None = None, limit: int = 500
    ) -> list[Ticket]:
        query = select(Ticket).order_by(Ticket.id.desc()).limit(limit)
        if status:
            query = query.where(Ticket.status == status)
        if queue:
            query = query.where(Ticket.queue == queue)
        return list(self.session.scalars(query).all())

    def with_articles(self, ref: str) -> Ticket | None:
        return self.session.scalar(
            select(Ticket)
            .where(Ticket.ref == ref.upper())
            .options(selectinload(Ticket.articles).selectinload(Article.attachments))
        )

    def events(self, ticket: Ticket) -> list[Event]:
        return list(
            self.session.scalars(
                select(Event).where(Event.ticket_id == ticket.id).order_by(Event.id)
            )
        )


def ticket_summary(ticket: Ticket) -> dict[str, Any]:
    """The `tickets list --json` object (DESIGN.md contract)."""
    return {
        "ref": ticket.ref,
        "subject": ticket.subject,
        "status": ticket.status,
        "queue": ticket.queue,
        "owner": ticket.owner,
        "priority": ticket.priority,
        "requester": ticket.requester,
        "created_at": ticket.created_at.isoformat(),
        "updated_at": ticket.updated_at.isoformat(),
        "tags": list(ticket.tags or []),
    }


def ticket_detail(ticket: Ticket) -> dict[str, Any]:
    """The `tickets show --json` object: the summary plus articles, oldest first."""
    data = ticket_summary(ticket)
    data["articles"] = [
        {
            "kind": a.kind,
            "direction": a.direction,
            "from": a.from_addr,
            "to": list(a.to_addrs or []),
            "subject": a.subject,
            "body": a.body,
            "message_id": a.message_id,
            "created_at": a.created_at.isoformat(),
            "attachments": [
                {
                    "filename": f.filename,
                    "content_type": f.content_type,
                    "size": f.size,
                    "sha256": f.sha256,
                }
                for f in a.attachments
            ],
        }
        for a in ticket.articles
    ]
    return data
