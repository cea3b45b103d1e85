"""The timed jobs, each a small idempotent function of the parts it needs (`JobParts`: the App
gives them), safe to run at any moment."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from gateway import logs
from gateway.config import Settings
from gateway.outgoing import outbox
from gateway.outgoing.letters import Letters
from gateway.outgoing.senders import Sender
from gateway.pipeline.worker import Worker
from storage.blobs import Blobs
from storage.engine import Database
from storage.tickets import TicketStore

if TYPE_CHECKING:
    from gateway.intake.poller import MailboxPoller


class JobParts(Protocol):
    """What the jobs use of the app (gateway.app.App is one); the jobs never import it."""

    @property
    def settings(self) -> Settings: ...
    @property
    def db(self) -> Database: ...
    @property
    def sender(self) -> Sender: ...
    @property
    def worker(self) -> Worker: ...
    @property
    def stop_event(self) -> threading.Event: ...
    @property
    def blobs(self) -> Blobs: ...


DIGEST_LOG_DAYS = 7  # a morning digest's claim is kept this long (it matters on its day)
OUTBOX_RUN = 100  # rows per `deliver_due` call, each run logged


def deliver_outbox(app: JobParts) -> None:
    """Send due outbox rows until none is left, in runs of OUTBOX_RUN rows: a burst of
    acknowledgements leaves at the transport's pace, not OUTBOX_RUN per scheduler interval.
    Failures are classified and recorded by `outbox.deliver_due`."""
    while not app.stop_event.is_set():
        report = outbox.deliver_due(app.db, app.sender, app.settings, limit=OUTBOX_RUN)
        handled = report.sent + report.retried + report.failed
        if handled:
            logs.event(
                "outbox.delivered", sent=report.sent, retried=report.retried, failed=report.failed
            )
        if handled < OUTBOX_RUN:
            return


def purge_originals(app: JobParts) -> None:
    """Delete stored originals older than `redaction.raw_retention_days`, and rate-limit log
    rows older than every cap's window (`limits.window_seconds`, the acknowledgements' hour).
    Idempotent: a second run finds nothing left to change."""
    from datetime import timedelta

    from storage.models import utcnow
    from storage.retention import purge_digest_log, purge_rate_log
    from storage.retention import purge_originals as purge

    now = utcnow()
    cutoff = now - timedelta(days=app.settings.redaction.raw_retention_days)
    window = max(app.settings.limits.window_seconds, 3600)
    with app.db.session() as session:
        purged = purge(session, cutoff)
        forgotten = purge_rate_log(session, now - timedelta(seconds=window))
        forgotten += purge_digest_log(session, now - timedelta(days=DIGEST_LOG_DAYS))
    if purged or forgotten:
        logs.event("retention.purged", originals=purged, rate_log=forgotten)


def poll_mailbox(
    app: JobParts, *, poller: MailboxPoller, wake: Callable[[], None], job: str | None = None
) -> None:
    """One poll of an Exchange/Graph mailbox; its health goes where `postdesk status` reads it
    (the database row of `job`, for every instance, and a file under data_dir/health), and the
    worker is woken when mail was stored."""
    from gateway.intake import health

    report = poller.poll_once()
    if not report.skipped:
        health.write(app.settings.data_dir, poller.health)
        if job is not None:
            from storage import cluster

            with app.db.session() as session:
                cluster.record_detail(session, job, health.as_json(poller.health))
    if report.stored:
        logs.event("mailbox.stored", source=poller.client.source, stored=report.stored,
                   moved=report.moved)
        wake()


def recover_inbox(app: JobParts) -> None:
    """Mail whose instance is gone, or whose lease ran out, goes back to the queue; never this
    instance's own rows (its worker is running)."""
    app.worker.recover(own=False)


def guarded(job_name: str, app: JobParts, job: Callable[[JobParts], None]) -> None:
    """Run a job so that an exception is logged (class only) and the scheduler keeps going."""
    try:
        job(app)
    except Exception as exc:
        logs.event("job.failed", logging.ERROR, job=job_name, error=type(exc).__name__)


def _letters(app: JobParts) -> Callable[[TicketStore], Letters]:
    """The mail service of one job transaction: the templates in force, the agents' proof key."""
    return lambda store: Letters(app.settings, app.worker.renderer, store,
                                 proof_key=app.worker.proof_key,
                                 status_key=app.worker.status_key)


def sla_reminders(app: JobParts) -> None:
    """SLA reminders and escalations that are due (gateway.lifecycle.reminders); the outbox
    is woken when mail was queued."""
    from gateway.lifecycle import reminders
    from storage.models import utcnow

    report = reminders.run(app.db, app.settings, app.worker.lifecycle, _letters(app),
                           now=utcnow())
    if report.mails:
        app.worker.mail_queued.set()


def auto_close(app: JobParts) -> None:
    """Pending tickets reminded and resolved, resolved ones closed (gateway.lifecycle.autoclose)."""
    from gateway.lifecycle import autoclose
    from storage.models import utcnow

    report = autoclose.run(app.db, app.worker.lifecycle, _letters(app), now=utcnow())
    if report.reminded or report.resolved:
        app.worker.mail_queued.set()


def delete_expired(app: JobParts) -> None:
    """Delete the tickets whose deletion period (the queue policies' `retention`) is over,
    each with its statistics row and deletion record (gateway.lifecycle.retention)."""
    from gateway.lifecycle.policy import load_policies
    from gateway.lifecycle.retention import run
    from storage.models import utcnow

    run(app.db, app.blobs, load_policies(app.settings), utcnow())


def digests(app: JobParts) -> None:
    """Today's morning digests, if due and not yet sent (gateway.lifecycle.digest)."""
    from gateway.lifecycle import digest
    from storage.models import utcnow

    report = digest.run(app.db, app.settings, app.worker.lifecycle.calendars, _letters(app),
                        now=utcnow())
    if report.sent:
        app.worker.mail_queued.set()
