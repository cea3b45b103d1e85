"""The timed jobs, each a small idempotent function of the App, safe to run at any moment."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from gateway import logs, outbox

if TYPE_CHECKING:
    from gateway.app import App


def deliver_outbox(app: App) -> None:
    """Send due outbox rows; failures are classified and recorded by `outbox.deliver_due`."""
    report = outbox.deliver_due(app.db, app.sender, app.settings)
    if report.sent or report.retried or report.failed:
        logs.event(
            "outbox.delivered", sent=report.sent, retried=report.retried, failed=report.failed
        )


def purge_originals(app: App) -> None:
    """Delete stored originals older than `redaction.raw_retention_days`."""
    from datetime import timedelta

    from storage.models import utcnow
    from storage.retention import purge_originals as purge

    cutoff = utcnow() - timedelta(days=app.settings.redaction.raw_retention_days)
    with app.db.session() as session:
        purged = purge(session, cutoff)
    if purged:
        logs.event("retention.purged", originals=purged)


def guarded(job_name: str, app: App, job: Callable[[App], None]) -> None:
    """Run a job so that an exception is logged (class only) and the scheduler keeps going."""
    try:
        job(app)
    except Exception as exc:
        logs.event("job.failed", logging.ERROR, job=job_name, error=type(exc).__name__)
