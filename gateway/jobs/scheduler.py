"""APScheduler setup: fixed job ids, replace_existing, coalesce and one instance per job, so a
slow run never piles up behind itself.

The jobs are declared in `timed_jobs` (a TimedJob each). A job that must run once per period
among all instances on the database says `leader_only=True`: every instance schedules it, but
it runs only on the leader (gateway.jobs.leader) and only if no instance ran it within the
period (storage.cluster.start_run), so a new leader keeps the period of the old one. Jobs that
every instance may run side by side (outbox delivery: its rows are claimed) say False."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING

from apscheduler.schedulers.background import BackgroundScheduler

from gateway import logs
from gateway.jobs import tasks as jobs
from gateway.jobs.tasks import JobParts
from storage import cluster

if TYPE_CHECKING:
    from gateway.intake.poller import MailboxPoller
    from gateway.jobs.leader import Leadership

TOLERANCE = 0.1  # of a period: a leader-only run this much early still counts as due (jitter)


@dataclass(frozen=True, slots=True)
class TimedJob:
    name: str  # the scheduler's job id; for a leader-only job also its row in job_runs
    seconds: float  # the period
    run: Callable[[JobParts], None]
    leader_only: bool
    start_now: bool = False  # first run at start (else after one period)


def timed_jobs(app: JobParts, wake: Callable[[], None]) -> list[TimedJob]:
    """Every timed job of `serve`; `wake` tells the worker that a mailbox poll stored mail.
    (The outbox, on every instance, has a thread of its own that the worker wakes:
    gateway.jobs.outboxloop.)"""
    declared = [
        TimedJob("retention", app.settings.jobs.retention_interval_seconds,
                 jobs.purge_originals, leader_only=True, start_now=True),
        TimedJob("inbox-lease", 60, jobs.recover_inbox, leader_only=False),
        TimedJob("sla", app.settings.jobs.sla_interval_seconds, jobs.sla_reminders,
                 leader_only=True),
        TimedJob("auto-close", app.settings.jobs.sla_interval_seconds, jobs.auto_close,
                 leader_only=True),
        TimedJob("deletion", app.settings.jobs.deletion_interval_seconds,
                 jobs.delete_expired, leader_only=True),
    ]
    if app.settings.digests is not None and app.settings.digests.enabled:
        declared.append(TimedJob("digest", app.settings.digests.check_seconds, jobs.digests,
                                 leader_only=True, start_now=True))
    for poller in mailbox_pollers(app):
        source = poller.client.source
        declared.append(TimedJob(
            f"poll-{source}", poller.settings.poll_seconds,
            partial(jobs.poll_mailbox, poller=poller, wake=wake, job=f"poll-{source}"),
            leader_only=True, start_now=True,
        ))
    return declared


def build_scheduler(
    app: JobParts, wake: Callable[[], None], leadership: Leadership
) -> BackgroundScheduler:
    """The scheduler of `serve` with every timed job; leader-only jobs ask `leadership`, which
    reschedules them (`keep_period`) when this instance becomes the leader."""
    scheduler = BackgroundScheduler(timezone="UTC")
    defaults = {"replace_existing": True, "coalesce": True, "max_instances": 1}
    declared = timed_jobs(app, wake)
    leader_jobs = [job.name for job in declared if job.leader_only]
    leadership.on_gain = partial(keep_period, scheduler, app, leader_jobs)
    for job in declared:
        first = {"next_run_time": datetime.now(UTC)} if job.start_now else {}
        runner = (
            partial(run_leader_job, job, app, leadership) if job.leader_only
            else partial(jobs.guarded, job.name, app, job.run)
        )
        scheduler.add_job(runner, "interval", seconds=job.seconds, id=job.name,
                          **first, **defaults)
    return scheduler


def run_leader_job(job: TimedJob, app: JobParts, leadership: Leadership) -> None:
    """Run a leader-only job if this instance leads and the job is due across all instances."""
    if not leadership.is_leader():
        return
    try:
        with app.db.session() as session:
            due = cluster.start_run(session, job.name, leadership.me, job.seconds,
                                    tolerance=job.seconds * TOLERANCE)
    except Exception as exc:  # the database is away: the next period tries again
        logs.event("job.failed", logging.ERROR, job=job.name, error=type(exc).__name__)
        return
    if due:  # one line per run: which instance ran which timed job, and when
        logs.event("job.run", job=job.name, instance=leadership.me)
        jobs.guarded(job.name, app, job.run)


def keep_period(scheduler: BackgroundScheduler, app: JobParts, leader_jobs: list[str]) -> None:
    """A new leader's leader-only jobs next run when their period, counted from the last run by
    any instance, is over (now if it is): the jobs keep their rhythm across a failover."""
    with app.db.reading() as session:
        last = {run.name: run.last_run_at for run in cluster.job_runs(session)}
    now = datetime.now(UTC)
    for name in leader_jobs:
        job = scheduler.get_job(name)
        if job is None:
            continue
        seconds = job.trigger.interval.total_seconds()
        ran = last.get(name)
        due = now if ran is None else max(now, ran + timedelta(seconds=seconds))
        job.modify(next_run_time=due)


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
