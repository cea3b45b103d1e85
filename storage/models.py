"""SQLAlchemy 2 models. Times are stored in UTC; the same schema runs on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    ColumnElement,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    func,
    select,
)
from sqlalchemy.orm import (
    DeclarativeBase,
    InstrumentedAttribute,
    Mapped,
    mapped_column,
    relationship,
)

from storage.sealing import SealedBytes


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC, returns aware UTC: SQLite keeps no zone, and comparisons must agree."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime,
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class Counter(Base):
    """Named counters (ticket numbers); incremented with one atomic UPDATE … RETURNING."""

    __tablename__ = "counters"
    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class Ticket(Base):
    __tablename__ = "tickets"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[int] = mapped_column(BigInteger, unique=True)
    ref: Mapped[str] = mapped_column(String(40), unique=True)
    subject: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="new", index=True)
    queue: Mapped[str | None] = mapped_column(String(100), index=True)
    owner: Mapped[str | None] = mapped_column(String(320), index=True)
    priority: Mapped[str] = mapped_column(String(16), default="normal")
    requester: Mapped[str] = mapped_column(String(320), index=True)
    language: Mapped[str] = mapped_column(String(8), default="de")
    tags: Mapped[list[Any]] = mapped_column(default=list)
    conversation: Mapped[str | None] = mapped_column(String(64), index=True)
    # keyed hash of a person → placeholder number, so [NAME-1] stays one person in this ticket
    pseudonyms: Mapped[dict[str, Any]] = mapped_column(default=dict)
    linked_ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column()
    # when the ticket became `closed` (no reopen after it); deletion periods count from it
    closed_at: Mapped[datetime | None] = mapped_column(index=True)
    # SLA clocks (gateway.lifecycle.clocks; migration 0009): a running clock's due moment, None
    # when it does not run (stopped, paused, or the queue's policy has none for the priority)
    first_response_due_at: Mapped[datetime | None] = mapped_column(index=True)
    update_due_at: Mapped[datetime | None] = mapped_column(index=True)
    solution_due_at: Mapped[datetime | None] = mapped_column(index=True)
    first_responded_at: Mapped[datetime | None] = mapped_column()  # first relayed agent reply
    update_started_at: Mapped[datetime | None] = mapped_column()  # last requester follow-up
    solution_paused_at: Mapped[datetime | None] = mapped_column()  # pending/resolved since
    solution_paused_minutes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    sla_basis: Mapped[str | None] = mapped_column(String(120))  # "queue/priority" of the dues
    # clock → "met" | "missed": copied into the anonymous statistics row on deletion
    sla_outcome: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    status_changed_at: Mapped[datetime | None] = mapped_column()  # auto-close counts from it

    articles: Mapped[list[Article]] = relationship(
        back_populates="ticket", order_by=lambda: article_order(), cascade="all, delete-orphan"
    )
    participants: Mapped[list[Participant]] = relationship(cascade="all, delete-orphan")


class Participant(Base):
    """Who may write on a ticket as a party to it (and receives its mail)."""

    __tablename__ = "participants"
    __table_args__ = (UniqueConstraint("ticket_id", "email"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(320), index=True)
    role: Mapped[str] = mapped_column(String(16))  # requester | cc | agent


class Article(Base):
    __tablename__ = "articles"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # requester | agent | note | system
    direction: Mapped[str] = mapped_column(String(3))  # in | out
    from_addr: Mapped[str] = mapped_column(String(320), default="")
    to_addrs: Mapped[list[Any]] = mapped_column(default=list)
    cc_addrs: Mapped[list[Any]] = mapped_column(default=list)
    subject: Mapped[str] = mapped_column(Text, default="")
    body: Mapped[str] = mapped_column(Text, default="")
    message_id: Mapped[str | None] = mapped_column(String(998), index=True)
    inbox_id: Mapped[int | None] = mapped_column(ForeignKey("inbox.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    ticket: Mapped[Ticket] = relationship(back_populates="articles")
    attachments: Mapped[list[Attachment]] = relationship(
        order_by="Attachment.id", cascade="all, delete-orphan"
    )


class Attachment(Base):
    __tablename__ = "attachments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    article_id: Mapped[int] = mapped_column(
        ForeignKey("articles.id", ondelete="CASCADE"), index=True
    )
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))  # of the content (tickets show --json)
    # Where the sealed bytes are (storage.blobs: an HMAC of the content); None for attachments
    # stored before 0007, found under their sha256.
    blob: Mapped[str | None] = mapped_column(String(64), default=None)
    # The text extracted from the file and redacted like the body (gateway.mail.attachtext):
    # text_state "extracted" (text holds it), "unreadable" (a text format that could not be
    # read: encrypted, broken, over the caps), "none" (no text format: images, …).
    text: Mapped[str | None] = mapped_column(Text, default=None)
    text_state: Mapped[str] = mapped_column(String(16), default="none", server_default="none")

    @property
    def address(self) -> str:
        """Where its bytes are in the blob store."""
        return self.blob or self.sha256


class Event(Base):
    """Audit trail: what changed on a ticket, when, and by whom."""

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int | None] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(320))  # "system", "cli", an agent address
    kind: Mapped[str] = mapped_column(String(50))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class MessageRef(Base):
    """Every Message-ID seen or sent for a ticket, so replies thread by In-Reply-To/References."""

    __tablename__ = "message_refs"
    __table_args__ = (UniqueConstraint("ticket_id", "message_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    message_id: Mapped[str] = mapped_column(String(998), index=True)
    direction: Mapped[str] = mapped_column(String(3))  # in | out


class InboxItem(Base):
    """A received mail, byte-exact, committed before the sender is told it was accepted."""

    __tablename__ = "inbox"
    __table_args__ = (
        UniqueConstraint("source", "source_key"),
        Index("ix_inbox_state_id", "state", "id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(20))  # smtp | import | exchange | graph
    source_key: Mapped[str] = mapped_column(String(255))
    raw: Mapped[bytes | None] = mapped_column(SealedBytes)  # encrypted when a key is configured
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    envelope_from: Mapped[str] = mapped_column(String(998), default="")
    envelope_to: Mapped[list[Any]] = mapped_column(default=list)
    message_hash: Mapped[str] = mapped_column(String(64), default="")
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    state: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_at: Mapped[datetime | None] = mapped_column()
    claimed_by: Mapped[str | None] = mapped_column(String(100))  # the instance id (instance.id)
    # The claim's lease: renewed by its instance while it works; another instance takes the
    # row over only after it (or once the claiming instance is gone: storage.instances).
    lease_until: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    stage: Mapped[str | None] = mapped_column(String(30))
    reason: Mapped[str | None] = mapped_column(Text)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"),
                                                  index=True)
    # A temporary fault (a full disk): not claimed again before `not_before`; `retries` counts
    # such faults (they use up no attempt) and sets the back-off.
    not_before: Mapped[datetime | None] = mapped_column()
    retries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class InboxConversation(Base):
    """The conversation keys of an inbox row (hashes of its Message-ID, In-Reply-To/References,
    ticket tag, Outlook conversation; gateway.mail.conversation), written with the row. A row
    is not claimed while an earlier row that shares a key is still queued or processing, so a
    reply never overtakes its original on another instance (PostgreSQL; storage.spool). A
    finished row's keys are deleted: only waiting rows and quarantined ones (which may be
    retried) keep theirs."""

    __tablename__ = "inbox_conversation"
    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    inbox_id: Mapped[int] = mapped_column(
        ForeignKey("inbox.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class InboundMessage(Base):
    """One row per inbound Message-ID stored as an article, inserted in the worker's transaction
    (INSERT … ON CONFLICT DO NOTHING): a second copy of a mail, processed at the same time by
    another instance, waits for the first copy's transaction and then finds its row, so it is
    finished as a duplicate; a check-then-insert could let both through."""

    __tablename__ = "inbound_messages"
    message_id: Mapped[str] = mapped_column(String(998), primary_key=True)
    inbox_id: Mapped[int | None] = mapped_column(ForeignKey("inbox.id", ondelete="SET NULL"))


class OutboxItem(Base):
    """A rendered outgoing mail; its Message-ID is fixed at render time, so a re-send after a
    crash is recognisably the same mail."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_state_due", "state", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"),
                                                  index=True)
    kind: Mapped[str] = mapped_column(String(40))  # template name, e.g. requester-received
    message_id: Mapped[str] = mapped_column(String(998), unique=True)
    envelope_from: Mapped[str] = mapped_column(String(320))
    envelope_to: Mapped[list[Any]] = mapped_column(default=list)
    raw: Mapped[bytes] = mapped_column(SealedBytes)  # may hold relayed text: encrypted too
    state: Mapped[str] = mapped_column(String(16), default="queued")  # see spool.OUTBOX_STATES
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column()
    claimed_by: Mapped[str | None] = mapped_column(String(100))  # the instance sending it
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column()


class ClusterFact(Base):
    """A value every instance on this database must agree on, stored by the first one: the
    fingerprint of the server secret (never the secret)."""

    __tablename__ = "cluster_facts"
    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AutoReplyLog(Base):
    """One row per automatic reply sent, to cap automatic replies per sender and hour."""

    __tablename__ = "auto_replies"
    __table_args__ = (Index("ix_auto_replies_recipient_at", "recipient", "created_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    recipient: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


def article_order() -> tuple[ColumnElement[Any], InstrumentedAttribute[int]]:
    """A ticket's articles in arrival order: a mail's article by when its inbox row arrived,
    any other (a note, an agent's reply written here) by when it was made; the article id
    breaks ties. Article ids alone follow processing, and several instances may process the
    mails of one ticket in another order than they arrived."""
    arrived = (
        select(InboxItem.received_at).where(InboxItem.id == Article.inbox_id).scalar_subquery()
    )
    return func.coalesce(arrived, Article.created_at), Article.id


class ClusterLease(Base):
    """A named lease held by one instance until `expires_at` (the leader of the timed jobs:
    `jobs`); the holder renews it, another instance takes it once it has expired."""

    __tablename__ = "cluster_leases"
    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(100))
    expires_at: Mapped[datetime | None] = mapped_column()
    acquired_at: Mapped[datetime | None] = mapped_column()


class ClusterInstance(Base):
    """One running `serve` (a heartbeat row): written every few seconds, so `status` and
    `/healthz` see every instance on the database, not only the one they run beside."""

    __tablename__ = "cluster_instances"
    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column()
    last_seen: Mapped[datetime] = mapped_column()


class JobRun(Base):
    """The last run of a leader-only timed job, whoever ran it: a new leader keeps the period
    (a job runs once per period across all instances), and `status` shows it. `detail` holds
    a short, content-free report (a mailbox poll's health)."""

    __tablename__ = "job_runs"
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    last_run_at: Mapped[datetime] = mapped_column()
    instance: Mapped[str] = mapped_column(String(100))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Blob(Base):
    """Attachment bytes (sealed) by address when `blobs.store: database`
    (storage.blobs.DatabaseBlobStore): every instance reads what any instance stored. The key
    column keeps its old name: it holds the address (an HMAC of the content; the sha256 for
    blobs stored before 0007)."""

    __tablename__ = "blobs"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SlaNotice(Base):
    """A reminder or escalation sent for one run of a clock (its due moment), written in the
    transaction that queues the mail: the unique key makes a second sender (a restart, another
    instance) find it taken and send nothing."""

    __tablename__ = "sla_notices"
    __table_args__ = (UniqueConstraint("ticket_id", "clock", "kind", "due_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"),
                                           index=True)
    clock: Mapped[str] = mapped_column(String(20))  # first_response|update|solution|pending
    kind: Mapped[str] = mapped_column(String(20))  # reminder | escalation
    due_at: Mapped[datetime] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TicketStatistic(Base):
    """A ticket's figures for reports (issue 17): one row per ticket, kept current while it
    lives (gateway.lifecycle.tally) and left behind when it is deleted, so a report reads one
    source and says the same before and after a deletion. Nothing leads back to a person: no
    ref, subject or address; `ticket_id` links the live ticket only and is cleared on deletion
    (`deleted_at` set then). Durations are business minutes on the queue's calendar."""

    __tablename__ = "ticket_statistics"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int | None] = mapped_column(Integer, index=True, unique=True)  # None: deleted
    queue: Mapped[str | None] = mapped_column(String(100))
    priority: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))  # now, or at deletion
    channel: Mapped[str | None] = mapped_column(String(16))  # inbox.source of the first mail
    tags: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(index=True)
    first_response_at: Mapped[datetime | None] = mapped_column()
    resolved_at: Mapped[datetime | None] = mapped_column()
    closed_at: Mapped[datetime | None] = mapped_column()
    first_response_minutes: Mapped[int | None] = mapped_column(Integer)  # business minutes
    resolution_minutes: Mapped[int | None] = mapped_column(Integer)  # created → resolved
    reopens: Mapped[int] = mapped_column(Integer, default=0)
    articles: Mapped[int] = mapped_column(Integer, default=0)  # counted at deletion
    sla_outcome: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {clock: met|missed}
    deleted_at: Mapped[datetime | None] = mapped_column()


class DeletionRecord(Base):
    """The proof that a ticket was deleted and why: its ref, queue, the policy rule (`cause`
    "period": the deletion period; "erasure": a request under Art. 17) and how many rows of
    each kind went. No content, no address."""

    __tablename__ = "deletion_records"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_ref: Mapped[str] = mapped_column(String(40))
    queue: Mapped[str | None] = mapped_column(String(100))
    cause: Mapped[str] = mapped_column(String(16))  # period | erasure | pseudonymised
    rule: Mapped[str] = mapped_column(String(100))  # the queue policy's name or "defaults"
    trigger: Mapped[str] = mapped_column(String(20))  # closed | last_activity | request
    period: Mapped[str] = mapped_column(String(40))  # "6 months"; "" for a request
    actor: Mapped[str] = mapped_column(String(320))
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    deleted_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class ErasureRequest(Base):
    """An erasure request (Art. 17) as answered: a keyed hash of the address (so a repeated
    request can be recognised, while the table names nobody), the reason, counts, who ran it."""

    __tablename__ = "erasure_requests"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_hash: Mapped[str] = mapped_column(String(64), index=True)
    reason: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(320))
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)


class DigestSend(Base):
    """A morning digest taken for one person and one local day (gateway.lifecycle.digest),
    written in the transaction that queues the mail: the unique key makes a restart or a
    second instance find the day taken and send nothing."""

    __tablename__ = "digest_sends"
    __table_args__ = (UniqueConstraint("recipient", "day"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    recipient: Mapped[str] = mapped_column(String(320))  # an agent's configured address
    day: Mapped[str] = mapped_column(String(10))  # the local business day, YYYY-MM-DD
    tickets: Mapped[int] = mapped_column(Integer, default=0)  # listed; 0: nothing was sent
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
