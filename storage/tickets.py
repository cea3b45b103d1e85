"""Ticket queries and writes used by the pipeline and the CLI, behind one small class so that
no pipeline stage touches SQLAlchemy sessions directly.

The worker runs these for every mail, so the hot ones are cheap: statements are built once at
import (building a SQLAlchemy statement costs more than running it on SQLite), rows nobody
reads back in the same transaction (articles, attachments, events, participants, Message-ID
refs, outbox rows) are written with Core INSERTs instead of ORM objects and flushes, and
"insert unless present" is one `INSERT … ON CONFLICT DO NOTHING` (SQLite and PostgreSQL) instead
of a SELECT followed by an INSERT. Only the ticket itself is an ORM object, because stages
change it (status, queue, owner) and the session writes those changes at commit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Insert, Table, bindparam, func, insert, inspect, select, update
from sqlalchemy.orm import Session, make_transient_to_detached, selectinload

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
from storage.spool import insert_unless_present

TICKET_COUNTER = "ticket"

_ARTICLES = cast(Table, Article.__table__)
_ATTACHMENTS = cast(Table, Attachment.__table__)
_AUTO_REPLIES = cast(Table, AutoReplyLog.__table__)
_EVENTS = cast(Table, Event.__table__)
_MESSAGE_REFS = cast(Table, MessageRef.__table__)
_OUTBOX = cast(Table, OutboxItem.__table__)
_PARTICIPANTS = cast(Table, Participant.__table__)

_COUNTERS = cast(Table, Counter.__table__)
_TICKETS = cast(Table, Ticket.__table__)

_NEXT_NUMBER = (
    update(_COUNTERS)
    .where(_COUNTERS.c.name == bindparam("counter"))
    .values(value=_COUNTERS.c.value + 1)
    .returning(_COUNTERS.c.value)
)
_ADD_TICKET = insert(_TICKETS).returning(*_TICKETS.c)
# column name → mapped attribute name, to turn an inserted row into a Ticket
_TICKET_ATTRIBUTES = {
    attribute.columns[0].name: attribute.key for attribute in inspect(Ticket).column_attrs
}
_BY_REF = select(Ticket).where(Ticket.ref == bindparam("ref"))
_BY_CONVERSATION = (
    select(Ticket)
    .where(Ticket.conversation == bindparam("conversation"))
    .order_by(Ticket.id.desc())
    .limit(1)
)
_TICKET_OF_MESSAGE_IDS = (
    select(_MESSAGE_REFS.c.ticket_id)
    .where(_MESSAGE_REFS.c.message_id.in_(bindparam("ids", expanding=True)))
    .order_by(_MESSAGE_REFS.c.ticket_id.desc())
    .limit(1)
)
_INBOUND_ARTICLE = (
    select(_ARTICLES.c.id)
    .where(_ARTICLES.c.message_id == bindparam("message_id"), _ARTICLES.c.direction == "in")
    .limit(1)
)
_SENT_MESSAGE_ID = (
    select(_MESSAGE_REFS.c.id)
    .where(_MESSAGE_REFS.c.message_id == bindparam("message_id"),
           _MESSAGE_REFS.c.direction == "out")
    .limit(1)
)
_MESSAGE_IDS_OF = (
    select(_MESSAGE_REFS.c.message_id)
    .where(_MESSAGE_REFS.c.ticket_id == bindparam("ticket_id"))
    .order_by(_MESSAGE_REFS.c.id)
)
_PARTICIPANTS_OF = select(_PARTICIPANTS.c.email, _PARTICIPANTS.c.role).where(
    _PARTICIPANTS.c.ticket_id == bindparam("ticket_id")
)
_AUTO_REPLIES_SINCE = (
    select(func.count())
    .select_from(_AUTO_REPLIES)
    .where(
        _AUTO_REPLIES.c.recipient == bindparam("recipient"),
        _AUTO_REPLIES.c.created_at >= bindparam("since"),
    )
)
_ADD_ARTICLE = insert(_ARTICLES).returning(_ARTICLES.c.id)
_ADD_ATTACHMENT = insert(_ATTACHMENTS)
_ADD_EVENT = insert(_EVENTS)
_ADD_OUTBOX = insert(_OUTBOX).returning(_OUTBOX.c.id)
_ADD_AUTO_REPLY = insert(_AUTO_REPLIES)


_ADD_IF_NEW: dict[tuple[str, str], Insert] = {
    (dialect, table.name): insert_unless_present(dialect, table)
    for dialect in ("sqlite", "postgresql")
    for table in (_PARTICIPANTS, _MESSAGE_REFS)
}


class TicketStore:
    """The pipeline's and CLI's view of tickets inside one transaction (one Session)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._dialect: str | None = None

    def _add_if_new(self, table: Table, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        if self._dialect is None:
            self._dialect = self.session.get_bind().dialect.name
        self.session.execute(_ADD_IF_NEW[(self._dialect, table.name)], rows)

    # --- numbering -----------------------------------------------------------------------

    def next_ticket_number(self) -> int:
        """Atomically take the next number from the counter row (safe under concurrency:
        the UPDATE locks the row on PostgreSQL; SQLite has one writer)."""
        value = self.session.execute(
            _NEXT_NUMBER, {"counter": TICKET_COUNTER}
        ).scalar_one_or_none()
        if value is None:  # first ticket ever, or a database created without the seed row
            self.session.add(Counter(name=TICKET_COUNTER, value=1))
            self.session.flush()
            return 1
        return int(value)

    # --- lookups -------------------------------------------------------------------------

    def by_ref(self, ref: str) -> Ticket | None:
        return self.session.execute(_BY_REF, {"ref": ref.upper()}).scalar()

    def by_id(self, ticket_id: int) -> Ticket | None:
        return self.session.get(Ticket, ticket_id)

    def by_message_ids(self, message_ids: Sequence[str]) -> Ticket | None:
        """The newest ticket that has seen or sent any of these Message-IDs."""
        if not message_ids:
            return None
        ticket_id = self.session.execute(
            _TICKET_OF_MESSAGE_IDS, {"ids": list(message_ids)}
        ).scalar()
        return None if ticket_id is None else self.session.get(Ticket, ticket_id)

    def by_conversation(self, conversation: str) -> Ticket | None:
        return self.session.execute(_BY_CONVERSATION, {"conversation": conversation}).scalar()

    def has_inbound_message(self, message_id: str) -> bool:
        """True if a received article already carries this Message-ID (duplicate delivery)."""
        found = self.session.execute(_INBOUND_ARTICLE, {"message_id": message_id}).first()
        return found is not None

    def sent_message_id(self, message_id: str) -> bool:
        """True if we sent a mail with this Message-ID (it came back: a loop)."""
        found = self.session.execute(_SENT_MESSAGE_ID, {"message_id": message_id}).first()
        return found is not None

    def message_ids(self, ticket: Ticket) -> list[str]:
        """Every Message-ID seen or sent on the ticket, oldest first."""
        return list(self.session.execute(_MESSAGE_IDS_OF, {"ticket_id": ticket.id}).scalars())

    def participants(self, ticket: Ticket) -> dict[str, str]:
        """address → role for everyone who is a party to the ticket."""
        rows = self.session.execute(_PARTICIPANTS_OF, {"ticket_id": ticket.id}).all()
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
        owner: str | None = None,
        priority: str = "normal",
        tags: Sequence[str] = (),
    ) -> Ticket:
        """Insert a new ticket with the next number. It comes back attached to the session
        (changes to it are saved at commit) without the unit-of-work flush an added object
        would cost: one INSERT … RETURNING."""
        number = self.next_ticket_number()
        row = self.session.execute(
            _ADD_TICKET,
            {
                "number": number,
                "ref": f"{prefix}-{number}",
                "subject": subject,
                "status": "new",
                "requester": requester,
                "language": language,
                "conversation": conversation,
                "linked_ticket_id": linked.id if linked else None,
                "queue": queue,
                "owner": owner,
                "priority": priority,
                "tags": list(tags),
                "created_at": now,
                "updated_at": now,
            },
        ).one()
        ticket = Ticket(**{_TICKET_ATTRIBUTES[name]: value for name, value in row._mapping.items()})
        make_transient_to_detached(ticket)  # as if loaded: the session knows it is stored
        self.session.add(ticket)
        return ticket

    def add_participant(self, ticket: Ticket, email: str, role: str) -> None:
        """Make `email` a party to the ticket; an existing participant keeps their role."""
        row = {"ticket_id": ticket.id, "email": email.lower(), "role": role}
        self._add_if_new(_PARTICIPANTS, [row])

    def add_article(self, ticket: Ticket, **fields: Any) -> Article:
        """Insert an article; returns it as a plain record with its id (not tracked by the
        session: later changes to it are not saved)."""
        article_id = self.session.execute(
            _ADD_ARTICLE, {"ticket_id": ticket.id, **fields}
        ).scalar_one()
        return Article(id=article_id, ticket_id=ticket.id, **fields)

    def add_attachment(
        self, article: Article, *, filename: str, content_type: str, size: int, sha256: str
    ) -> None:
        self.session.execute(
            _ADD_ATTACHMENT,
            {
                "article_id": article.id,
                "filename": filename,
                "content_type": content_type,
                "size": size,
                "sha256": sha256,
            },
        )

    def add_message_refs(self, ticket: Ticket, message_ids: Iterable[str], direction: str) -> None:
        """Index Message-IDs under the ticket; ids it already has are left as they are."""
        rows = [
            {"ticket_id": ticket.id, "message_id": message_id, "direction": direction}
            for message_id in dict.fromkeys(m for m in message_ids if m)
        ]
        self._add_if_new(_MESSAGE_REFS, rows)

    def add_event(
        self, ticket: Ticket | None, *, actor: str, kind: str, now: datetime, **detail: Any
    ) -> None:
        self.session.execute(
            _ADD_EVENT,
            {
                "ticket_id": ticket.id if ticket else None,
                "actor": actor,
                "kind": kind,
                "detail": detail,
                "created_at": now,
            },
        )

    def set_status(self, ticket: Ticket, status: str, *, actor: str, now: datetime) -> None:
        if ticket.status == status:
            return
        self.add_event(ticket, actor=actor, kind="status", now=now, old=ticket.status, new=status)
        ticket.status = status
        ticket.updated_at = now
        ticket.resolved_at = now if status in ("resolved", "closed") else None

    def add_outbox(
        self,
        *,
        ticket: Ticket | None,
        kind: str,
        message_id: str,
        envelope_from: str,
        envelope_to: list[str],
        raw: bytes,
        now: datetime,
    ) -> int:
        """Queue a rendered mail for delivery now; returns the outbox row's id."""
        return int(
            self.session.execute(
                _ADD_OUTBOX,
                {
                    "ticket_id": ticket.id if ticket else None,
                    "kind": kind,
                    "message_id": message_id,
                    "envelope_from": envelope_from,
                    "envelope_to": envelope_to,
                    "raw": raw,
                    "state": "queued",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                },
            ).scalar_one()
        )

    # --- automatic-reply rate limit ------------------------------------------------------

    def auto_replies_since(self, recipient: str, since: datetime) -> int:
        count = self.session.execute(
            _AUTO_REPLIES_SINCE, {"recipient": recipient.lower(), "since": since}
        ).scalar()
        return int(count or 0)

    def log_auto_reply(self, recipient: str, now: datetime) -> None:
        self.session.execute(_ADD_AUTO_REPLY, {"recipient": recipient.lower(), "created_at": now})

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
