"""One leader among the instances on a database, for the timed jobs that must run once per
period (retention, mailbox polls, later reminders, escalations and digests).

Every instance beats its heartbeat row and tries to hold the `jobs` lease every third of
`jobs.leader_lease_seconds`; whoever holds it leads and renews it. A leader that is killed
stops renewing: its lease expires and the next instance to try takes it, so the jobs move
within about 1 1/3 leases (40 s at the default 30 s). A graceful stop gives the lease up at
once. The leader trusts its lease only until the time it renewed it plus the lease (by its own
monotonic clock, counted from before the renewal), so it stops leading before anyone else can
start, also when the database cannot be reached."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from gateway import logs
from gateway.config import JobSettings
from storage import cluster
from storage.engine import Database
from storage.models import utcnow

SILENT_FORGOTTEN = timedelta(days=1)  # heartbeat rows of instances gone this long are removed


def instance_name() -> str:
    """This process's name among the instances: host and process id (as the worker's)."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Leadership:
    """Heartbeat and the jobs lease of one instance; `is_leader()` is what leader-only jobs ask.
    `on_gain` runs (in the beating thread) each time this instance becomes the leader."""

    def __init__(
        self,
        db: Database,
        settings: JobSettings,
        me: str | None = None,
        on_gain: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.settings = settings
        self.me = me or instance_name()
        self.on_gain = on_gain
        self._clock = clock
        self._host = socket.gethostname()
        self._started_at = utcnow()
        self._deadline = 0.0  # by `clock`: lead until then
        self._leading = False
        self._failing = False
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def is_leader(self) -> bool:
        return self._clock() < self._deadline

    def beat(self) -> bool:
        """One heartbeat and one try at the lease (renewal while we hold it); True if we lead."""
        lease_seconds = self.settings.leader_lease_seconds
        began = self._clock()
        try:
            with self.db.session() as session:
                cluster.heartbeat(session, self.me, self._host, os.getpid(), self._started_at)
                lease = cluster.hold_lease(session, cluster.JOBS_LEASE, self.me, lease_seconds)
                if lease.holder == self.me:
                    cluster.forget_silent(session, SILENT_FORGOTTEN)
        except Exception as exc:  # the database is away: lead no longer than the lease runs
            if not self._failing:
                logs.event("leader.beat-failed", logging.WARNING, error=type(exc).__name__)
            self._failing = True
            return self._settle(self.is_leader())
        self._failing = False
        leading = lease.holder == self.me
        # a little less than the lease: the row's expiry counts from a moment after `began`
        self._deadline = began + lease_seconds * 0.95 if leading else 0.0
        return self._settle(leading)

    def _settle(self, leading: bool) -> bool:
        if leading and not self._leading:
            self._leading = True
            logs.event("leader.gained", instance=self.me)
            if self.on_gain is not None:
                try:
                    self.on_gain()
                except Exception as exc:
                    logs.event("leader.on-gain-failed", logging.ERROR, error=type(exc).__name__)
        elif not leading and self._leading:
            self._leading = False
            logs.event("leader.lost", logging.WARNING, instance=self.me)
        return leading

    def start(self) -> None:
        """Beat once now (so the jobs know their leader before the scheduler starts), then
        every `jobs.renew_seconds` in a thread."""
        self.beat()
        self._thread = threading.Thread(target=self._run, name="leader", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.settings.renew_seconds):
            self.beat()

    def stop(self) -> None:
        """Stop beating, give the lease up and remove our heartbeat row (a graceful stop)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._deadline = 0.0
        if self._leading:
            self._leading = False
            logs.event("leader.released", instance=self.me)
        try:
            with self.db.session() as session:
                cluster.release_lease(session, cluster.JOBS_LEASE, self.me)
                cluster.forget_instance(session, self.me)
        except Exception as exc:  # the lease then expires on its own
            logs.event("leader.release-failed", logging.WARNING, error=type(exc).__name__)
