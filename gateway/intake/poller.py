"""The durable mailbox poll that EWS and Graph intake share: find new items, fetch their MIME,
commit them to the inbox, and only after that commit move them to the processed folder (or mark
them read). A crash before the commit leaves the items in the folder for the next poll; a crash
between commit and move makes the next poll fetch them again, find their key already stored
(unique source + source_key, see `gateway.mailboxes.common.source_key`) and only move them.

Failures never lose mail and never hammer the server: a refused login or a missing permission
waits `auth_backoff_seconds` (a person must act, and retries could lock the account), an
unreachable or overloaded server backs off exponentially up to `backoff_max_seconds` or as long
as its Retry-After asks. `health` says what happened in one line for `postdesk status`.
The same mail arriving by SMTP as well is not our concern here: the guard stage drops the
second copy by Message-ID.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from gateway import logs
from gateway.config import MailboxSettings
from gateway.errors import MailboxAuthError, MailboxError, MailboxRequestError, MailboxUnavailable
from gateway.intake.conversation import keyed
from gateway.mailboxes.common import ItemRef, MailboxClient, source_key
from storage.engine import Database
from storage.models import InboxItem
from storage.spool import NewInboxItem, add_inbox_items, message_hash

MAX_ROUNDS = 20  # pages per poll; each round re-queries from the start (moves shift pages)


@dataclass
class PollReport:
    """What one poll did. `skipped`: still backing off, the server was not contacted."""

    fetched: int = 0
    stored: int = 0
    moved: int = 0
    errors: int = 0
    skipped: bool = False


@dataclass
class PollHealth:
    """The poller's state for `postdesk status` and logs; `diagnosis` is one line, no PII."""

    source: str
    state: str = "unknown"  # unknown | ok | auth | unavailable | error (config or items)
    diagnosis: str = "not polled yet"
    last_poll_at: datetime | None = None
    last_success_at: datetime | None = None
    failures: int = 0
    retry_at: datetime | None = None

    def line(self) -> str:
        parts = [f"{self.source}: {self.state}", self.diagnosis]
        if self.last_success_at is not None:
            parts.append(f"last success {self.last_success_at:%Y-%m-%d %H:%M:%S} UTC")
        if self.retry_at is not None and self.state != "ok":
            parts.append(f"next try {self.retry_at:%Y-%m-%d %H:%M:%S} UTC")
        return " — ".join(parts)


@dataclass
class _Round:
    fetched: list[tuple[ItemRef, bytes]] = field(default_factory=list)
    stop: MailboxError | None = None


class _StoreFailed(Exception):
    """The inbox commit failed; carries a reason without mail content."""


class MailboxPoller:
    """Polls one mailbox folder through a `MailboxClient`; call `poll_once()` on a timer."""

    def __init__(
        self,
        settings: MailboxSettings,
        db: Database,
        client: MailboxClient,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_rounds: int = MAX_ROUNDS,
    ) -> None:
        self.settings = settings
        self.db = db
        self.client = client
        self.health = PollHealth(source=client.source)
        self._clock = clock
        self._max_rounds = max_rounds
        self._not_before = float("-inf")

    def poll_once(self) -> PollReport:
        """One poll; never raises for server or database trouble (see `health`)."""
        if self._clock() < self._not_before:
            return PollReport(skipped=True)
        report = PollReport()
        self.health.last_poll_at = datetime.now(UTC)
        try:
            self._rounds(report)
        except MailboxError as exc:
            self._failed(exc, report)
        except _StoreFailed as exc:
            self._failed(MailboxUnavailable(f"could not store mail in the inbox ({exc})"), report)
        except Exception as exc:  # a bug must not stop polling: record it, back off, go on
            logs.event("mailbox.poll_crashed", logging.ERROR, source=self.client.source,
                       error=type(exc).__name__)
            self._failed(MailboxUnavailable(f"unexpected error ({type(exc).__name__})"), report)
        else:
            self._succeeded(report)
        return report

    # --- one poll ---------------------------------------------------------------------------

    def _rounds(self, report: PollReport) -> None:
        """Take pages from the start until nothing new is left: never page with an offset,
        because every item we move or mark read shifts the items behind it."""
        batch = self.settings.batch_size
        seen: set[str] = set()
        for _ in range(self._max_rounds):
            found = self.client.find_new(batch)
            refs = [ref for ref in found if ref.id not in seen]
            if not refs:
                return
            seen.update(ref.id for ref in refs)
            self._round(refs, report)
            if len(found) < batch:
                return

    def _round(self, refs: Sequence[ItemRef], report: PollReport) -> None:
        taken = self._fetch(refs, report)
        report.fetched += len(taken.fetched)
        if taken.fetched:
            report.stored += self._commit(taken.fetched)
            stop = self._finish(taken.fetched, report)
            taken.stop = taken.stop or stop
        if taken.stop is not None:
            raise taken.stop

    def _fetch(self, refs: Sequence[ItemRef], report: PollReport) -> _Round:
        """Fetch MIME until the server fails as a whole; what was fetched is still stored."""
        taken = _Round()
        for ref in refs:
            try:
                raw = self.client.fetch_mime(ref)
            except MailboxRequestError as exc:  # this item only; it stays in the folder
                report.errors += 1
                logs.event("mailbox.fetch_failed", logging.WARNING, source=self.client.source,
                           reason=str(exc))
                continue
            except MailboxError as exc:
                taken.stop = exc
                break
            taken.fetched.append((ref, raw))
        return taken

    def _commit(self, fetched: Sequence[tuple[ItemRef, bytes]]) -> int:
        """Store the batch in one transaction; returns how many rows are new."""
        mailbox = self.client.mailbox
        items = [
            NewInboxItem(source=self.client.source, source_key=source_key(mailbox, raw), raw=raw,
                         envelope_from="", envelope_to=(mailbox,))
            for _, raw in fetched
        ]
        try:
            with self.db.session() as session:
                query = select(InboxItem.source_key).where(
                    InboxItem.source == self.client.source,
                    InboxItem.source_key.in_({item.source_key for item in items}),
                )
                present = set(session.scalars(query))
                add_inbox_items(session, keyed(self.db, items))
        except SQLAlchemyError as exc:  # str(exc) would carry the parameters: mail bytes
            raise _StoreFailed(type(exc).__name__) from None
        new = {item.source_key for item in items} - present
        for item in items:
            logs.event("mailbox.stored" if item.source_key in new else "mailbox.already_stored",
                       source=item.source, hash=message_hash(item.raw), size=len(item.raw))
        return len(new)

    def _finish(self, fetched: Sequence[tuple[ItemRef, bytes]],
                report: PollReport) -> MailboxError | None:
        """Move (or mark read) what is now safely stored; a failure leaves it for next time."""
        for ref, _ in fetched:
            try:
                self.client.finish(ref)
            except MailboxRequestError as exc:
                report.errors += 1
                logs.event("mailbox.finish_failed", logging.WARNING, source=self.client.source,
                           reason=str(exc))
                continue
            except MailboxError as exc:
                return exc
            report.moved += 1
        return None

    # --- health and back-off ------------------------------------------------------------------

    def _succeeded(self, report: PollReport) -> None:
        now = datetime.now(UTC)
        self.health.last_success_at = now
        self.health.failures = 0
        self.health.retry_at = None
        self._not_before = float("-inf")
        if report.errors:
            self.health.state = "error"
            self.health.diagnosis = f"{report.errors} item(s) could not be taken in; see the log"
        else:
            self.health.state = "ok"
            self.health.diagnosis = f"stored {report.stored}, moved {report.moved}"
        if report.fetched or report.errors:
            logs.event("mailbox.polled", source=self.client.source, fetched=report.fetched,
                       stored=report.stored, moved=report.moved, errors=report.errors)

    def _failed(self, exc: MailboxError, report: PollReport) -> None:
        report.errors += 1
        self.health.failures += 1
        delay = self._delay(exc)
        self._not_before = self._clock() + delay
        self.health.retry_at = datetime.now(UTC) + timedelta(seconds=delay)
        self.health.state = ("auth" if isinstance(exc, MailboxAuthError) else
                             "error" if isinstance(exc, MailboxRequestError) else "unavailable")
        self.health.diagnosis = str(exc)
        logs.event("mailbox.poll_failed", logging.WARNING, source=self.client.source,
                   state=self.health.state, reason=str(exc), failures=self.health.failures,
                   retry_in=round(delay, 1), stored=report.stored, moved=report.moved)

    def _delay(self, exc: MailboxError) -> float:
        """How long to leave the server alone after this failure: long when a person must act
        (login, permission, missing folder), else Retry-After or exponential."""
        if isinstance(exc, MailboxAuthError | MailboxRequestError):
            return self.settings.auth_backoff_seconds
        if isinstance(exc, MailboxUnavailable) and exc.retry_after is not None:
            return max(exc.retry_after, 0.0)
        exponent = min(self.health.failures - 1, 30)
        return min(self.settings.poll_seconds * 2**exponent, self.settings.backoff_max_seconds)
