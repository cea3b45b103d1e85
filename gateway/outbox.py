"""Deliver due OUTBOX rows: claim one row per transaction, send outside any transaction, record
the outcome in a new one. Temporary failures back off exponentially, permanent ones (and
temporary ones that used up their attempts) end in `failed` with an event on the ticket.

A crash between send and record leaves the row in `sending`; once its lease runs out it is
claimed again and re-sent with the stored bytes, so the same Message-ID (at-least-once delivery;
receivers and our own maildir sender de-duplicate by Message-ID).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway import logs
from gateway.config import OutgoingSettings, Settings
from gateway.errors import DeliveryError, PermanentDeliveryError
from gateway.senders import Sender
from storage import spool
from storage.engine import Database
from storage.models import utcnow
from storage.tickets import TicketStore

MIN_LEASE_SECONDS = 300.0


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
    """Send up to `limit` due rows, one at a time; returns what happened to them."""
    clock: Callable[[], datetime] = (lambda: now) if now is not None else utcnow
    report = DeliveryReport()
    for _ in range(limit):
        item = _claim(db, settings, clock())
        if item is None:
            break
        _deliver_one(db, sender, settings, item, clock, report)
    return report


def _claim(db: Database, settings: Settings, now: datetime) -> _Claimed | None:
    with db.session() as session:
        rows = spool.claim_outbox(session, now, lease(settings.outgoing), limit=1)
        if not rows:
            return None
        row = rows[0]
        return _Claimed(row.id, row.ticket_id, row.kind, row.message_id, row.envelope_from,
                        list(row.envelope_to or []), bytes(row.raw), row.attempts)


def _deliver_one(db: Database, sender: Sender, settings: Settings, item: _Claimed,
                 clock: Callable[[], datetime], report: DeliveryReport) -> None:
    out = settings.outgoing
    if item.attempts > out.max_attempts:  # interrupted again and again (a crash loop)
        _fail(db, item, clock(), "interrupted", None, "delivery interrupted too often")
        report.failed += 1
        return
    try:
        sender.send(item.envelope_from, item.envelope_to, item.raw, item.message_id)
    except PermanentDeliveryError as exc:
        _fail(db, item, clock(), type(exc).__name__, _code(exc), str(exc))
        report.failed += 1
    except Exception as exc:  # temporary, or a bug in a transport: retry, never lose the row
        if not isinstance(exc, DeliveryError):
            logs.event("outbox.unexpected-error", outbox=item.id, error=type(exc).__name__)
        error = str(exc) if isinstance(exc, DeliveryError) else type(exc).__name__
        if item.attempts >= out.max_attempts:
            _fail(db, item, clock(), type(exc).__name__, _code(exc), error)
            report.failed += 1
        else:
            _retry(db, item, clock() + backoff(out, item.attempts), error, _code(exc))
            report.retried += 1
    else:
        with db.session() as session:
            spool.mark_outbox(session, item.id, state="sent")
        logs.event("outbox.sent", outbox=item.id, ticket_id=item.ticket_id,
                   attempt=item.attempts, kind=item.kind)
        report.sent += 1


def _retry(db: Database, item: _Claimed, when: datetime, error: str, code: int | None) -> None:
    with db.session() as session:
        spool.mark_outbox(session, item.id, state="queued", error=error[:500],
                          next_attempt_at=when)
    logs.event("outbox.retry", outbox=item.id, ticket_id=item.ticket_id, attempt=item.attempts,
               code=code, next=when.isoformat(timespec="seconds"))


def _fail(db: Database, item: _Claimed, now: datetime, error_class: str, code: int | None,
          error: str) -> None:
    with db.session() as session:
        spool.mark_outbox(session, item.id, state="failed", error=error[:500])
        store = TicketStore(session)
        ticket = store.by_id(item.ticket_id) if item.ticket_id is not None else None
        # The event says what failed and why, never to whom: no addresses on the ticket trail.
        store.add_event(ticket, actor="system", kind="delivery-failed", now=now,
                        outbox_id=item.id, mail=item.kind, error=error_class, code=code,
                        attempts=item.attempts)
    logs.event("outbox.failed", outbox=item.id, ticket_id=item.ticket_id,
               attempt=item.attempts, error=error_class, code=code)


def _code(exc: BaseException) -> int | None:
    code = getattr(exc, "smtp_code", None)
    return code if isinstance(code, int) else None

