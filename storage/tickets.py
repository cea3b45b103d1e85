"""Ticket queries and writes used by the pipeline and the CLI, behind one small class so that
no pipeline stage touches SQLAlchemy sessions directly. The worker runs these for every mail, so
the hot ones are cheap: statements built once, Core INSERTs on the session's connection for
rows nobody reads back, only the ticket an ORM object (why, measured: docs/performance.md)."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Table,
    bindparam,
    exists,
    func,
    insert,
    inspect,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session, make_transient_to_detached, selectinload

from storage import counters
from storage.direct import Direct
from storage.models import (
    Article,
    Attachment,
    Event,
    InboundMessage,
    InboxItem,
    MessageRef,
    Participant,
    Ticket,
    article_order,
)
from storage.spool import insert_unless_present
from storage.statements import HeldRows, Statements

TICKET_COUNTER = "ticket"

_ARTICLES = cast(Table, Article.__table__)
_ATTACHMENTS = cast(Table, Attachment.__table__)
_EVENTS = cast(Table, Event.__table__)
_MESSAGE_REFS = cast(Table, MessageRef.__table__)
_PARTICIPANTS = cast(Table, Participant.__table__)

_TICKETS = cast(Table, Ticket.__table__)
DUE_COLUMNS = (Ticket.first_response_due_at, Ticket.update_due_at, Ticket.solution_due_at)
_INBOUND = cast(Table, InboundMessage.__table__)

_ADD_TICKET = Direct(insert(_TICKETS).returning(*_TICKETS.c))
_TOUCH_TICKET = Direct(
    update(_TICKETS)
    .where(_TICKETS.c.id == bindparam("ticket_id"))
    .values(updated_at=bindparam("now", type_=_TICKETS.c.updated_at.type))
)
_TICKET_MAPPER = inspect(Ticket)
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
# the ticket itself in the same statement (a lookup by id after it was one more round trip)
_BY_MESSAGE_IDS = select(Ticket).where(Ticket.id == _TICKET_OF_MESSAGE_IDS.scalar_subquery())
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
# both of the guard's questions about a Message-ID in one round trip (each an index lookup)
_MESSAGE_ID_SEEN = select(
    exists(_INBOUND_ARTICLE).label("received"), exists(_SENT_MESSAGE_ID).label("sent")
)
_MESSAGE_IDS_OF = (
    select(_MESSAGE_REFS.c.message_id)
    .where(_MESSAGE_REFS.c.ticket_id == bindparam("ticket_id"))
    .order_by(_MESSAGE_REFS.c.id)
)
_PARTICIPANTS_OF = select(_PARTICIPANTS.c.email, _PARTICIPANTS.c.role).where(
    _PARTICIPANTS.c.ticket_id == bindparam("ticket_id")
)
_ROUTED_DETAIL = (
    select(_EVENTS.c.detail)
    .where(_EVENTS.c.ticket_id == bindparam("ticket_id"), _EVENTS.c.kind == "routed")
    .order_by(_EVENTS.c.id.desc())
    .limit(1)
)
_ADD_ARTICLE = Direct(insert(_ARTICLES).returning(_ARTICLES.c.id))
_SET_ARTICLE_KIND = Direct(
    update(_ARTICLES)
    .where(_ARTICLES.c.id == bindparam("article_id"))
    .values(kind=bindparam("new_kind"))
)
_ADD_ATTACHMENT = Direct(insert(_ATTACHMENTS))
_ADD_EVENT = Direct(insert(_EVENTS))


@functools.cache
def _take_message_id(dialect: str) -> Direct:
    return Direct(insert_unless_present(dialect, _INBOUND).returning(_INBOUND.c.message_id))


class TicketStore(Statements):
    """The pipeline's and CLI's view of tickets inside one transaction (one Session): tickets,
    their articles, participants, Message-IDs and events. Outbox rows are storage.outbox's,
    the automatic-reply log storage.autoreplies'."""

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        self._refs = HeldRows(lambda rows: self._add_if_new(_MESSAGE_REFS, rows))

    def deferred(self) -> AbstractContextManager[None]:
        """Hold the Message-ID refs written in the block and write them with one statement
        when it ends (storage.statements.HeldRows)."""
        return self._refs.deferred()


    # --- numbering -----------------------------------------------------------------------

    def next_ticket_number(self) -> int:
        """The next number, safe under concurrency (storage.counters.ticket_number): SQLite
        takes the counter row (one writer, consecutive), PostgreSQL a sequence (no lock held
        across the worker's batch; a rolled-back mail leaves a gap)."""
        return counters.ticket_number(self.session, TICKET_COUNTER)

    # --- lookups -------------------------------------------------------------------------

    def by_ref(self, ref: str) -> Ticket | None:
        return self.session.execute(_BY_REF, {"ref": ref.upper()}).scalar()

    def by_id(self, ticket_id: int) -> Ticket | None:
        return self.session.get(Ticket, ticket_id)

    def by_message_ids(self, message_ids: Sequence[str]) -> Ticket | None:
        """The newest ticket that has seen or sent any of these Message-IDs."""
        if not message_ids:
            return None
        self._refs.flush()
        return self.session.execute(_BY_MESSAGE_IDS, {"ids": list(message_ids)}).scalar()

    def by_conversation(self, conversation: str) -> Ticket | None:
        return self.session.execute(_BY_CONVERSATION, {"conversation": conversation}).scalar()

    def message_id_seen(self, message_id: str) -> tuple[bool, bool]:
        """(a received article carries this Message-ID, we sent a mail with it): the guard's
        duplicate and loop checks in one round trip."""
        self._refs.flush()
        received, sent = self._run(_MESSAGE_ID_SEEN, {"message_id": message_id}).one()
        return bool(received), bool(sent)

    def take_message_id(self, message_id: str, inbox_id: int) -> bool:
        """Record an inbound Message-ID for this transaction's mail: False if another mail
        with it is stored. Atomic across instances (a unique key, INSERT … ON CONFLICT DO
        NOTHING): while another transaction holds the same key, PostgreSQL waits for it and
        answers False once it commits (True if it rolls back)."""
        dialect = self.session.get_bind().dialect.name
        taken = self._run(
            _take_message_id(dialect), {"message_id": message_id, "inbox_id": inbox_id}
        ).first()
        return taken is not None

    def message_ids(self, ticket: Ticket) -> list[str]:
        """Every Message-ID seen or sent on the ticket, oldest first."""
        self._refs.flush()
        return list(self._run(_MESSAGE_IDS_OF, {"ticket_id": ticket.id}).scalars())

    def participants(self, ticket: Ticket) -> dict[str, str]:
        """address → role for everyone who is a party to the ticket."""
        rows = self._run(_PARTICIPANTS_OF, {"ticket_id": ticket.id}).all()
        return {email: role for email, role in rows}

    def team(self, ticket: Ticket) -> str | None:
        """The team the routing rules gave the ticket (its `routed` event), or None: no team
        rule matched, or the ticket was routed before events recorded the team."""
        detail = self._run(_ROUTED_DETAIL, {"ticket_id": ticket.id}).scalar()
        team = detail.get("team") if isinstance(detail, dict) else None
        return team if isinstance(team, str) else None

    def numbered_articles(self, ticket: Ticket) -> list[NumberedArticle]:
        """The ticket's articles in the order `tickets show` numbers them (from 1): what an
        agent's `#original N` counts."""
        rows = self.session.execute(
            select(Article.id, Article.kind, Article.direction, Article.inbox_id)
            .where(Article.ticket_id == ticket.id)
            .order_by(*article_order())
        )
        return [NumberedArticle(number, *row) for number, row in enumerate(rows, start=1)]

    def original_raw(self, inbox_id: int) -> bytes | None:
        """The stored original mail of an inbox row, decrypted; None once retention purged
        it. Raises storage.sealing.SealError when the key cannot open it."""
        return self.session.scalar(select(InboxItem.raw).where(InboxItem.id == inbox_id))

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
        pseudonyms: dict[str, Any] | None = None,
        clocks: dict[str, Any] | None = None,
    ) -> Ticket:
        """Insert a new ticket with the next number. It comes back attached to the session
        (changes to it are saved at commit) without the unit-of-work flush an added object
        would cost: one INSERT … RETURNING. Values known before the insert (routing,
        pseudonyms) belong in it: set afterwards they cost an UPDATE at commit."""
        number = self.next_ticket_number()
        row = self._run(
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
                "pseudonyms": dict(pseudonyms or {}),
                "created_at": now,
                "updated_at": now,
                **(clocks or {}),  # SLA due moments (gateway.lifecycle.clocks.initial)
            },
        ).mappings().one()
        ticket = Ticket(**{_TICKET_ATTRIBUTES[name]: value for name, value in row.items()})
        make_transient_to_detached(ticket)  # as if loaded: the session knows it is stored
        # The worker runs each mail of a batch in a savepoint. One rolled back after its INSERT
        # leaves that ticket in the session, under the id (SQLite) this one may now reuse.
        key = _TICKET_MAPPER.identity_key_from_primary_key((ticket.id,))
        stale = self.session.identity_map.get(key)
        if stale is not None:
            self.session.expunge(stale)
        self.session.add(ticket)
        return ticket

    def add_participant(self, ticket: Ticket, email: str, role: str) -> None:
        """Make `email` a party to the ticket; an existing participant keeps their role."""
        self.add_participants(ticket, [(email, role)])

    def add_participants(self, ticket: Ticket, parties: Iterable[tuple[str, str]]) -> None:
        """`add_participant` for several (email, role) pairs, in order, in one statement."""
        rows = [
            {"ticket_id": ticket.id, "email": email.lower(), "role": role}
            for email, role in parties
        ]
        self._add_if_new(_PARTICIPANTS, rows)

    def add_article(self, ticket: Ticket, **fields: Any) -> Article:
        """Insert an article; returns it as a plain record with its id (not tracked by the
        session: later changes to it are not saved)."""
        article_id = self.insert_article(ticket, **fields)
        return Article(id=article_id, ticket_id=ticket.id, **fields)

    def insert_article(self, ticket: Ticket, **fields: Any) -> int:
        """`add_article` for callers that need only the new article's id: building the record
        costs about half as much again as the INSERT."""
        return int(self._run(_ADD_ARTICLE, {"ticket_id": ticket.id, **fields}).scalar_one())

    def set_article_kind(self, article: Article, kind: str) -> None:
        """Change what a stored article counts as: an agent's reply that a cap kept from the
        requester is a note (see gateway.outgoing.limits)."""
        self._run(_SET_ARTICLE_KIND, {"article_id": article.id, "new_kind": kind})
        article.kind = kind

    def add_attachment(
        self, article: Article, *, filename: str, content_type: str, size: int, sha256: str,
        blob: str | None = None, text: str | None = None, text_state: str = "none",
    ) -> None:
        self._run(
            _ADD_ATTACHMENT,
            {
                "article_id": article.id,
                "filename": filename,
                "content_type": content_type,
                "size": size,
                "sha256": sha256,
                "blob": blob,
                "text": text,
                "text_state": text_state,
            },
        )

    def add_message_refs(self, ticket: Ticket, message_ids: Iterable[str], direction: str) -> None:
        """Index Message-IDs under the ticket; ids it already has are left as they are."""
        rows = [
            {"ticket_id": ticket.id, "message_id": message_id, "direction": direction}
            for message_id in dict.fromkeys(m for m in message_ids if m)
        ]
        self._refs.add(rows)

    def add_event(
        self, ticket: Ticket | None, *, actor: str, kind: str, now: datetime, **detail: Any
    ) -> None:
        self.add_events([event_row(ticket, actor=actor, kind=kind, now=now, **detail)])

    def add_events(self, rows: Sequence[dict[str, Any]]) -> None:
        """Several audit events (made with `event_row`), in order, in one statement."""
        if rows:
            self._run(_ADD_EVENT, list(rows))

    def touch(self, ticket: Ticket, now: datetime) -> None:
        """Set `ticket.updated_at` (a mail was added to it). Most often that is the ticket's
        only change in the transaction: then one UPDATE now, not through the session, whose
        flush at commit costs several times that statement. A ticket with other changes gets
        it through the session, in the one UPDATE that writes them all."""
        if ticket.updated_at == now:
            return
        if inspect(ticket).modified:
            ticket.updated_at = now
            return
        self._run(_TOUCH_TICKET, {"ticket_id": ticket.id, "now": now})
        # Stored: nothing left to flush. Expired, not set: read again, it comes from the
        # database, right even after a savepoint rollback took the UPDATE back.
        self.session.expire(ticket, ["updated_at"])

    def set_status(self, ticket: Ticket, status: str, *, actor: str, now: datetime) -> None:
        if ticket.status == status:
            return
        old = ticket.status
        self.add_event(ticket, actor=actor, kind="status", now=now, old=old, new=status)
        ticket.status = status
        ticket.updated_at = now
        ticket.status_changed_at = now  # auto-close counts days in a status from here
        if status not in ("resolved", "closed"):
            ticket.resolved_at = None
        elif ticket.resolved_at is None or old not in ("resolved", "closed"):
            ticket.resolved_at = now  # closing a resolved ticket keeps when it was resolved
        ticket.closed_at = now if status == "closed" else None

    # --- listing for the CLI -------------------------------------------------------------

    def list_tickets(self, filters: TicketFilter, *, limit: int | None = None) -> list[Ticket]:
        """Matching tickets, newest first; at most `limit` (None: all)."""
        query = select(Ticket).where(*filters.conditions()).order_by(Ticket.id.desc())
        if limit is not None:
            query = query.limit(limit)
        return list(self.session.scalars(query).all())

    def count_tickets(self, filters: TicketFilter) -> int:
        query = select(func.count()).select_from(Ticket).where(*filters.conditions())
        return int(self.session.execute(query).scalar_one())

    def refs(self, ticket_ids: Iterable[int | None]) -> dict[int, str]:
        """Ticket id → ref, for lists of rows that point at tickets (the outbox)."""
        wanted = {i for i in ticket_ids if i is not None}
        if not wanted:
            return {}
        rows = self.session.execute(select(Ticket.id, Ticket.ref).where(Ticket.id.in_(wanted)))
        return {ticket_id: ref for ticket_id, ref in rows}

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


@dataclass(frozen=True, slots=True)
class NumberedArticle:
    """An article by its number on the ticket, with what finding its original needs."""

    number: int
    id: int
    kind: str
    direction: str
    inbox_id: int | None


@dataclass(frozen=True, slots=True)
class TicketFilter:
    """What `tickets list` narrows by; values are already checked (see gateway.cli.view).

    `search` is a case-insensitive substring of the subject, of any stored (redacted) article
    body or of an attachment's extracted (redacted) text: LIKE on SQLite, ILIKE-equivalent on
    PostgreSQL. A substring finds German compounds (`drucker` in `Druckerausfall`), which a
    word index (FTS5, tsvector) would not; a desk's ticket volume scans in well under a
    second. SQLite folds only ASCII letters' case."""

    status: str | None = None
    queue: str | None = None
    owner: str | None = None
    unassigned: bool = False
    search: str | None = None
    due_before: datetime | None = None  # a running SLA clock is due before this moment
    overdue_at: datetime | None = None  # a running SLA clock was due at this moment (--overdue)

    def conditions(self) -> list[ColumnElement[bool]]:
        where: list[ColumnElement[bool]] = []
        if self.status:
            where.append(Ticket.status == self.status)
        if self.queue:
            where.append(Ticket.queue == self.queue)
        if self.owner:
            where.append(Ticket.owner == self.owner)
        if self.unassigned:
            where.append(Ticket.owner.is_(None))
        for moment in (self.due_before, self.overdue_at):
            if moment is not None:
                where.append(or_(*(column < moment for column in DUE_COLUMNS)))
        if self.search:
            in_body = select(Article.ticket_id).where(
                Article.body.icontains(self.search, autoescape=True)
            )
            in_attachment = (
                select(Article.ticket_id)
                .join(Attachment, Attachment.article_id == Article.id)
                .where(Attachment.text.icontains(self.search, autoescape=True))
            )
            where.append(
                or_(Ticket.subject.icontains(self.search, autoescape=True), Ticket.id.in_(in_body),
                    Ticket.id.in_(in_attachment))
            )
        return where


def sla_due(ticket: Ticket) -> dict[str, str | None]:
    """The running SLA clocks' due moments (None: the clock does not run) and their outcome."""
    return {
        "first_response_due_at": _iso(ticket.first_response_due_at),
        "update_due_at": _iso(ticket.update_due_at),
        "solution_due_at": _iso(ticket.solution_due_at),
        **{f"{clock}_outcome": outcome for clock, outcome in (ticket.sla_outcome or {}).items()},
    }


def next_due(ticket: Ticket) -> datetime | None:
    """The earliest due moment of the ticket's running SLA clocks."""
    dues = [d for d in (ticket.first_response_due_at, ticket.update_due_at,
                        ticket.solution_due_at) if d is not None]
    return min(dues) if dues else None


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def ticket_attachments(ticket: Ticket) -> list[Attachment]:
    """A ticket's attachments in the order `tickets show` numbers them (from 1)."""
    return [attachment for article in ticket.articles for attachment in article.attachments]


def event_row(
    ticket: Ticket | None, *, actor: str, kind: str, now: datetime, **detail: Any
) -> dict[str, Any]:
    """One audit event as `TicketStore.add_events` takes it: collect a mail's events, then
    write them together."""
    return {
        "ticket_id": ticket.id if ticket else None,
        "actor": actor,
        "kind": kind,
        "detail": detail,
        "created_at": now,
    }


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
        "sla": sla_due(ticket),
    }


def ticket_detail(ticket: Ticket, events: Sequence[Event] = ()) -> dict[str, Any]:
    """The `tickets show --json` object: the summary plus articles and the audit events, oldest
    first."""
    data = ticket_summary(ticket)
    data["events"] = [
        {
            "kind": e.kind,
            "actor": e.actor,
            "created_at": e.created_at.isoformat(),
            "detail": dict(e.detail or {}),
        }
        for e in events
    ]
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
                    "text_state": f.text_state,
                    "text": f.text,
                }
                for f in a.attachments
            ],
        }
        for a in ticket.articles
    ]
    return data
