"""APScheduler setup: fixed job ids, replace_existing, coalesce and one instance per job, so a
slow run never piles up behind itself."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING

from apscheduler.schedulers.background import BackgroundScheduler

from gateway.jobs import tasks as jobs
from gateway.jobs.tasks import JobParts

if TYPE_CHECKING:
    from gateway.intake.poller import MailboxPoller


def build_scheduler(app: JobParts, wake: Callable[[], None]) -> BackgroundScheduler:
    """The timed jobs of `serve`; `wake` tells the worker that a mailbox poll stored mail. (The
    outbox has a thread of its own, woken by the worker: gateway.jobs.outboxloop.)"""
    scheduler = BackgroundScheduler(timezone="UTC")
    defaults = {"replace_existing": True, "coalesce": True, "max_instances": 1}
    scheduler.add_job(
        jobs.guarded,
        "interval",
        minutes=60,
        id="retention",
        args=("retention", app, jobs.purge_originals),
        next_run_time=datetime.now(UTC),
        **defaults,
    )
    scheduler.add_job(
        jobs.guarded,
        "interval",
        seconds=60,
        id="inbox-lease",
        args=("inbox-lease", app, jobs.recover_inbox),
        **defaults,
    )
    for poller in mailbox_pollers(app):
        source = poller.client.source
        scheduler.add_job(
            jobs.guarded,
            "interval",
            seconds=poller.settings.poll_seconds,
            id=f"poll-{source}",
            args=(f"poll-{source}", app, partial(jobs.poll_mailbox, poller=poller, wake=wake)),
            next_run_time=datetime.now(UTC),
            **defaults,
        )
    return scheduler


def mailbox_pollers(app: JobParts) -> list[MailboxPoller]:
    """One poller per configured mailbox intake (EWS, Graph); both may run beside SMTP."""
    pollers: list[MailboxPoller] = []
    if app.settings.exchange is not None:
        from gateway.intake.exchange import EwsPoller

        pollers.append(EwsPoller(app.settings, app.db))
    if app.settings.graph is not None:
        from gateway.intake.graph import GraphPoller

        pollers.append(GraphPoller(app.settings, app.db))
    return pollers
