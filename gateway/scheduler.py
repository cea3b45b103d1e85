"""APScheduler setup: fixed job ids, replace_existing, coalesce and one instance per job, so a
slow run never piles up behind itself."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from apscheduler.schedulers.background import BackgroundScheduler

from gateway import jobs

if TYPE_CHECKING:
    from gateway.app import App


def build_scheduler(app: App) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(timezone="UTC")
    defaults = {"replace_existing": True, "coalesce": True, "max_instances": 1}
    scheduler.add_job(
        jobs.guarded,
        "interval",
        seconds=app.settings.outgoing.interval_seconds,
        id="outbox",
        args=("outbox", app, jobs.deliver_outbox),
        **defaults,
    )
    scheduler.add_job(
        jobs.guarded,
        "interval",
        minutes=60,
        id="retention",
        args=("retention", app, jobs.purge_originals),
        next_run_time=datetime.now(UTC),
        **defaults,
    )
    return scheduler
