"""Outgoing mail leaves as soon as the worker committed it: a thread of `serve` drains the
outbox whenever the worker says it queued mail (`wake`), and at least every
`outgoing.interval_seconds` (mail queued by the CLI, retries that came due). Polling alone held
each acknowledgement back by up to that interval: at 2 s, a third of a 600-mail burst's time
(bench/e2e.py). A wake-up waits GATHER_SECONDS for more commits before it drains: draining
after every commit cost two SQLite transactions (claim, record) per mail, whose write lock the
intake and the worker wait for. The relay connection is closed once a whole interval passed
without mail."""

from __future__ import annotations

import threading

from gateway.jobs import tasks as jobs
from gateway.jobs.tasks import JobParts
from gateway.outgoing.senders import Closable
from gateway.pipeline.worker import Signal

GATHER_SECONDS = 0.25
"""How long a wake-up waits for more of the worker's commits before the outbox is drained."""


class OutboxLoop:
    """Deliver due outbox rows on `wake` or every interval, until `stop()`."""

    def __init__(self, app: JobParts, wake: Signal) -> None:
        self.app = app
        self.wake = wake
        self._thread = threading.Thread(target=self._run, name="outbox", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Let the delivery under way finish (the app's stop_event ends the drain early)."""
        self.wake.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        app, wake = self.app, self.wake
        interval = app.settings.outgoing.interval_seconds
        try:
            while not app.stop_event.is_set():
                wake.clear()  # before draining: mail queued meanwhile wakes the next round
                jobs.guarded("outbox", app, jobs.deliver_outbox)
                if wake.wait(interval):
                    app.stop_event.wait(GATHER_SECONDS)
                elif isinstance(app.sender, Closable):
                    app.sender.close()  # idle for a whole interval
        finally:
            if isinstance(app.sender, Closable):
                app.sender.close()
