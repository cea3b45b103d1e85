"""Deliver due OUTBOX rows: claim a batch in one transaction, send each outside any transaction,
record the outcomes together in one more. Temporary failures back off exponentially, permanent
ones (and temporary ones that used up their attempts) end in `failed` with an event on the
ticket.

A crash between a send and the record of its outcome leaves the row in `sending`; once its
lease runs out it is claimed again and re-sent with the stored bytes, so the same Message-ID
(at-least-once delivery; receivers and our own maildir sender de-duplicate by Message-ID). A
recorded success is final, and recorded only once it is durable: a sender that defers that
(the maildir fsyncs its folder once per batch, not per mail) is flushed first. Outcomes are
recorded at least every FLUSH_SECONDS, which also renews the lease of the batch's rows not sent
yet, so a slow relay never lets a claimed row look abandoned while it waits its turn.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway import logs
from gateway.config import OutgoingSettings, Settings
from gateway.errors import DeliveryError, PermanentDeliveryError
from gateway.outgoing.senders import Flushable, Sender
from storage import spool
from storage.engine import Database
from storage.models import OutboxItem, utcnow
from storage.tickets import TicketStore

MIN_LEASE_SECONDS = 300.0
BATCH = 25
"""Rows claimed per transaction (two transactions per batch instead of two per mail)."""
FLUSH_SECONDS = 1.0
"""Longest time sent mail waits for its success to be recorded."""


@dataclass
class DeliveryReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0


@dataclass(frozen=True, slots=True)
class _Claimed:
    """What we need from a claimed row after its transaction closed."""

    id: int
    ticket_id: int | None
    kind: str
    message_id: str
    envelope_from: str
    envelope_to: list[str]
    raw: bytes
    attempts: int

    @classmethod
    def of(cls, row: OutboxItem) -> _Claimed:
        return cls(row.id, row.ticket_id, row.kind, row.message_id, row.envelope_from,
                   list(row.envelope_to or []), bytes(row.raw), row.attempts)


@dataclass(frozen=True, slots=True)
class _Outcome:
    """One attempt's result, to be recorded: `state` sent, queued (retry at `retry_at`) or
    failed."""

    item: _Claimed
    state: str
    error: str | None = None
    error_class: str | None = None
    code: int | None = None
    retry_at: datetime | None = None


def lease(settings: OutgoingSettings) -> timedelta:
    """How long a `sending` row is left alone before it counts as abandoned by a crash: well
    beyond one SMTP conversation (several timeouts in a row)."""
    return timedelta(seconds=max(MIN_LEASE_SECONDS, settings.timeout_seconds * 10))


def backoff(settings: OutgoingSettings, attempts: int) -> timedelta:
    """`backoff_seconds * 2**(attempts-1)`, capped at `backoff_max_seconds`."""
    exponent = min(max(attempts - 1, 0), 30)
    return timedelta(seconds=min(settings.backoff_seconds * 2**exponent,
                                 settings.backoff_max_seconds))


def deliver_due(db: Database, sender: Sender, settings: Settings, now: datetime | None = None,
                limit: int = 100) -> DeliveryReport:
    """Send up to `limit` due rows, in batches; returns what happened to them."""
    clock: Callable[[], datetime] = (lambda: now) if now is not None else utcnow
    report = DeliveryReport()
    handled = 0
    while handled < limit:
        wanted = min(BATCH, limit - handled)
        batch = _claim(db, settings, clock(), wanted)
        if batch:
            _deliver_batch(db, sender, settings, batch, clock, report)
            handled += len(batch)
        if len(batch) < wanted:  # nothing more is due
            break
    return report


def _claim(db: Database, settings: Settings, now: datetime, limit: int) -> list[_Claimed]:
    with db.session() as session:
        rows = spool.claim_outbox(session, now, lease(settings.outgoing), limit=limit,
                                  claimer=settings.instance.id)
        return [_Claimed.of(row) for row in rows]


def _deliver_batch(db: Database, sender: Sender, settings: Settings, batch: list[_Claimed],
                   clock: Callable[[], datetime], report: DeliveryReport) -> None:
    out = settings.outgoing
    outcomes: list[_Outcome] = []
    last_record = time.monotonic()
    for index, item in enumerate(batch):
        outcomes.append(_attempt(sender, out, item, clock))
        if time.monotonic() - last_record >= FLUSH_SECONDS:
            _record(db, _flushed(sender, out, outcomes, clock), batch[index + 1:], clock(), report)
            outcomes = []
            last_record = time.monotonic()
    _record(db, _flushed(sender, out, outcomes, clock), [], clock(), report)


def _attempt(sender: Sender, out: OutgoingSettings, item: _Claimed,
             clock: Callable[[], datetime]) -> _Outcome:
    """Send one claimed row (no database access) and classify what happened."""
    if item.attempts > out.max_attempts:  # interrupted again and again (a crash loop)
        return _Outcome(item, "failed", "delivery interrupted too often", "interrupted")
    try:
        sender.send(item.envelope_from, item.envelope_to, item.raw, item.message_id)
    except PermanentDeliveryError as exc:
        return _Outcome(item, "failed", str(exc), type(exc).__name__, _code(exc))
    except Exception as exc:  # temporary, or a bug in a transport: retry, never lose the row
        return _temporary(item, out, exc, clock)
    return _Outcome(item, "sent")


def _temporary(item: _Claimed, out: OutgoingSettings, exc: Exception,
               clock: Callable[[], datetime]) -> _Outcome:
    """Retry later with back-off, or fail once the attempts are used up."""
    if not isinstance(exc, DeliveryError):
        logs.event("outbox.unexpected-error", outbox=item.id, error=type(exc).__name__)
    error = str(exc) if isinstance(exc, DeliveryError) else type(exc).__name__
    if item.attempts >= out.max_attempts:
        return _Outcome(item, "failed", error, type(exc).__name__, _code(exc))
    return _Outcome(item, "queued", error, type(exc).__name__, _code(exc),
                    retry_at=clock() + backoff(out, item.attempts))


def _flushed(sender: Sender, out: OutgoingSettings, outcomes: list[_Outcome],
             clock: Callable[[], datetime]) -> list[_Outcome]:
    """The outcomes to record: a sender that makes its sends durable in `flush()` (the maildir
    syncs its folder once per batch) is flushed first; if that fails, its successes are
    retried (the re-send finds the written copy), never recorded as sent."""
    if not isinstance(sender, Flushable) or all(o.state != "sent" for o in outcomes):
        return outcomes
    try:
        sender.flush()
    except Exception as exc:
        return [_temporary(o.item, out, exc, clock) if o.state == "sent" else o
                for o in outcomes]
    return outcomes


def _record(db: Database, outcomes: list[_Outcome], pending: Sequence[_Claimed], now: datetime,
            report: DeliveryReport) -> None:
    """Store the outcomes in one transaction (and renew the lease of `pending` rows), then log
    them and count them in `report`."""
    if not outcomes and not pending:
        return
    with db.session() as session:
        spool.mark_outbox_sent(session, [o.item.id for o in outcomes if o.state == "sent"], now)
        for outcome in outcomes:
            if outcome.state == "queued":
                spool.mark_outbox(session, outcome.item.id, state="queued",
                                  error=(outcome.error or "")[:500],
                                  next_attempt_at=outcome.retry_at)
            elif outcome.state == "failed":
                _fail(TicketStore(session), outcome, now)
        spool.renew_outbox_claims(session, [item.id for item in pending], now)
    for outcome in outcomes:
        _log(outcome, report)


def _fail(store: TicketStore, outcome: _Outcome, now: datetime) -> None:
    item = outcome.item
    spool.mark_outbox(store.session, item.id, state="failed", error=(outcome.error or "")[:500])
    ticket = store.by_id(item.ticket_id) if item.ticket_id is not None else None
    # The event says what failed and why, never to whom: no addresses on the ticket trail.
    store.add_event(ticket, actor="system", kind="delivery-failed", now=now,
                    outbox_id=item.id, mail=item.kind, error=outcome.error_class,
                    code=outcome.code, attempts=item.attempts)


def _log(outcome: _Outcome, report: DeliveryReport) -> None:
    item = outcome.item
    if outcome.state == "sent":
        logs.event("outbox.sent", outbox=item.id, ticket_id=item.ticket_id,
                   attempt=item.attempts, kind=item.kind)
        report.sent += 1
    elif outcome.state == "queued":
        assert outcome.retry_at is not None
        logs.event("outbox.retry", outbox=item.id, ticket_id=item.ticket_id,
                   attempt=item.attempts, code=outcome.code,
                   next=outcome.retry_at.isoformat(timespec="seconds"))
        report.retried += 1
    else:
        logs.event("outbox.failed", outbox=item.id, ticket_id=item.ticket_id,
                   attempt=item.attempts, error=outcome.error_class, code=outcome.code)
        report.failed += 1


def _code(exc: BaseException) -> int | None:
    code = getattr(exc, "smtp_code", None)
    return code if isinstance(code, int) else None
