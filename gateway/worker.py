"""Turn inbox rows into tickets: claim a row, run the pipeline in one transaction, and end the
row `done` or `quarantined` with the failing stage and reason, so no mail is ever lost silently.

A crash mid-way leaves the row `processing`; it is taken up again at the next start (or when its
lease runs out), and quarantined once it has used up its attempts.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.exc import OperationalError

from gateway import logs, pipeline
from gateway.config import Settings
from gateway.errors import Stop
from gateway.pipeline.context import Context
from gateway.render import Renderer
from storage import spool
from storage.blobs import BlobStore
from storage.engine import Database
from storage.models import InboxItem, utcnow
from storage.tickets import TicketStore


@dataclass(frozen=True, slots=True)
class Outcome:
    inbox_id: int
    state: str  # done | quarantined | requeued
    ticket_id: int | None = None


class Worker:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        renderer: Renderer,
        blobs: BlobStore,
        name: str | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.renderer = renderer
        self.blobs = blobs
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.wake = threading.Event()

    def recover(self) -> None:
        """Put rows a crash left mid-way back in the queue (or quarantine them)."""
        with self.db.session() as session:
            requeued, quarantined = spool.recover_inbox(session, self.settings.worker.max_attempts)
        if requeued or quarantined:
            logs.event("worker.recovered", requeued=requeued, quarantined=quarantined)

    def process_one(self) -> Outcome | None:
        """Claim and process one inbox row; None when the queue is empty."""
        lease = timedelta(seconds=self.settings.worker.lease_seconds)
        with self.db.session() as session:
            item = spool.claim_inbox(session, self.name, lease)
            if item is None:
                return None
            if item.attempts > self.settings.worker.max_attempts:
                spool.quarantine_inbox(
                    session,
                    item.id,
                    stage="worker",
                    reason="too many attempts (crash or kill while processing)",
                )
                return Outcome(item.id, "quarantined")
            item_id, attempts = item.id, item.attempts
        return self._process(item_id, attempts)

    def _process(self, item_id: int, attempts: int) -> Outcome:
        ctx: Context | None = None
        try:
            with self.db.session() as session:
                item = session.get(InboxItem, item_id)
                assert item is not None
                ctx = Context(
                    inbox=item,
                    settings=self.settings,
                    store=TicketStore(session),
                    blobs=self.blobs,
                    renderer=self.renderer,
                    now=utcnow(),
                )
                try:
                    pipeline.run(ctx)
                except Stop as stop:
                    ctx.stop_reason = stop.reason
                ticket_id = ctx.ticket.id if ctx.ticket is not None else None
                spool.finish_inbox(
                    session,
                    item_id,
                    ticket_id=ticket_id,
                    stage=ctx.stage if ctx.stop_reason else None,
                    reason=ctx.stop_reason,
                )
            logs.event(
                "worker.done",
                inbox_id=item_id,
                hash=item.message_hash,
                ticket=ctx.ticket.ref if ctx.ticket else None,
                stop=ctx.stop_reason,
            )
            return Outcome(item_id, "done", ticket_id)
        except OperationalError as exc:
            # The database itself failed (locked, connection lost): worth another attempt.
            return self._failed(
                item_id,
                attempts,
                ctx.stage if ctx else "worker",
                f"database error: {type(exc.orig).__name__}",
                transient=True,
            )
        except Exception as exc:
            return self._failed(
                item_id,
                attempts,
                ctx.stage if ctx else "worker",
                f"{type(exc).__name__}: {exc}",
                transient=False,
            )

    def _failed(
        self, item_id: int, attempts: int, stage: str, reason: str, transient: bool
    ) -> Outcome:
        retry = transient and attempts < self.settings.worker.max_attempts
        with self.db.session() as session:
            if retry:
                spool.requeue_inbox(session, item_id, reason=reason)
            else:
                spool.quarantine_inbox(session, item_id, stage=stage, reason=reason)
        # The reason may quote mail content, so only its class goes to the log.
        logs.event(
            "worker.requeued" if retry else "worker.quarantined",
            logging.WARNING,
            inbox_id=item_id,
            stage=stage,
            error=reason.split(":", 1)[0],
        )
        return Outcome(item_id, "requeued" if retry else "quarantined")

    def drain(self, limit: int | None = None) -> list[Outcome]:
        """Process rows until the queue is empty (or `limit` rows); used by tests and `import`."""
        outcomes: list[Outcome] = []
        while limit is None or len(outcomes) < limit:
            outcome = self.process_one()
            if outcome is None:
                break
            outcomes.append(outcome)
        return outcomes

    def run_forever(self, stop: threading.Event) -> None:
        """Process until `stop` is set; sleep until woken by new mail or the poll interval."""
        while not stop.is_set():
            try:
                if self.process_one() is not None:
                    continue
            except Exception as exc:
                logs.event("worker.error", logging.ERROR, error=type(exc).__name__)
                stop.wait(1.0)
            self.wake.wait(self.settings.worker.interval_seconds)
            self.wake.clear()
