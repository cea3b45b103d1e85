"""Turn inbox rows into tickets: claim rows in inbox order, have them prepared
(gateway.pipeline.prepare), run each mail's STAGES in a savepoint of a write transaction (several
prepared mails may share one), and end every row `done` or `quarantined` with the failing stage and
reason, so no mail is ever lost silently.

Every claim is this instance's lease (`instance.id`, `worker.lease_seconds`), renewed by a thread
while the worker runs, and every way a row ends (done, quarantined, requeued, deferred) is
conditional on the claim still being ours: if another instance took the row over after the
lease ran out, the mail's savepoint is rolled back (spool.LeaseLost) and nothing of it is
written twice. A crash mid-way leaves the row `processing`; it is taken up again when its
lease runs out, or at once by a restart of the same instance id or once the lock of the
instance that claimed it is free (storage.instances), and quarantined once it has used up its
attempts. A temporary fault of the
environment (a full disk: gateway.pipeline.faults) puts the row back to wait with back-off, using up
no attempt; if the database fails while a failure is recorded, the worker tries again shortly and
keeps the row until it can record it."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from gateway import logs, pipeline
from gateway.config import Settings, default_instance_id
from gateway.errors import PrepareFailed, Stop
from gateway.lifecycle.clocks import Lifecycle
from gateway.outgoing.letters import ActiveTemplates, Letters, Renderer, letterhead
from gateway.pipeline import faults
from gateway.pipeline.context import Context, IncomingMail, PreparedMail, Services
from gateway.pipeline.counters import Counters, CountersForChild
from gateway.pipeline.lifeline import die_with_parent
from gateway.pipeline.prepare import InlinePreparer, Preparer, ProcessPreparer
from gateway.reloading import State
from gateway.routing.active import ActiveRuleset
from gateway.routing.ruleset import Ruleset
from gateway.secrets import Keys
from storage import spool
from storage.blobs import Blobs
from storage.engine import Database
from storage.models import InboxItem, utcnow
from storage.tickets import TicketStore

Checked = tuple[State[Ruleset], State[Renderer]]
"""The rules and templates in force, with the fingerprints of their files."""


@dataclass(frozen=True, slots=True)
class Outcome:
    inbox_id: int
    # done | quarantined | requeued | unsettled (recorded once the database is back) | lost
    # (the claim was taken over by another instance: nothing of it was written)
    state: str
    ticket_id: int | None = None


BATCH_SECONDS = 0.008
"""A write transaction goes on with the next mail, if that one is prepared already, while it has
been open less than this and the SMTP intake is not waiting for the SQLite write lock. Several
mails then share one commit (one fsync, one claim round) when the queue is busy, and the intake
never waits longer than for one mail."""
BATCH_MAILS = 8  # and at most this many mails per transaction
RELOAD_SECONDS = 0.5
"""How often the worker looks for edited rules and templates (a stat call per file, < 1 ms)."""
SETTLE_WAITS = (0.05, 0.2, 0.5, 1.0)
"""Waits between tries to record a failed mail when the database fails too (about 2 s in all);
after that the worker remembers the failure and records it before it claims the next row, so
the row does not stay `processing` until its lease (worker.lease_seconds) runs out."""
DATABASE_ERRORS = (OperationalError, InterfaceError)
"""The database itself failed (locked, connection lost): worth another attempt."""


@dataclass(frozen=True, slots=True)
class _Failure:
    """A mail that failed, to be recorded: quarantined, requeued (`transient`, while it has
    attempts left) or, for a temporary fault of the environment (`fault`), put back to wait."""

    claim: spool.Claim
    stage: str
    reason: str
    transient: bool
    fault: str | None = None


@dataclass(frozen=True, slots=True)
class _Result:
    """One mail's outcome in a batch, logged once the batch is committed."""

    outcome: Outcome
    item: InboxItem
    stage: str
    reason: str | None = None  # why it stopped, or why it was quarantined
    ref: str | None = None
    redactions: dict[str, int] = field(default_factory=dict)  # entity -> count (metrics)

    def log(self) -> None:
        if self.outcome.state == "lost":
            logs.event("worker.lease_lost", logging.WARNING, inbox_id=self.outcome.inbox_id,
                       stage=self.stage)
        elif self.outcome.state == "done":
            logs.event("worker.done", inbox_id=self.outcome.inbox_id,
                       hash=self.item.message_hash, ticket=self.ref, stop=self.reason)
        else:
            _log_failure(self.outcome, self.stage, self.reason or "")


def _log_failure(outcome: Outcome, stage: str, reason: str) -> None:
    # The reason may quote mail content, so only its class goes to the log.
    logs.event(
        "worker.requeued" if outcome.state == "requeued" else "worker.quarantined",
        logging.WARNING,
        inbox_id=outcome.inbox_id,
        stage=stage,
        error=reason.split(":", 1)[0],
    )


class Worker:
    """Its parts (database, blobs, keys, the rules and templates in force) are built by the
    app and passed in: building a Worker opens nothing and sets nothing process-wide."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        blobs: Blobs,
        keys: Keys,
        rules: ActiveRuleset,
        templates: ActiveTemplates,
        name: str | None = None,
        preparer: Preparer | None = None,
        lifecycle: Lifecycle | None = None,
    ) -> None:
        self.settings = settings
        # queue policies and calendars for the SLA clocks (a broken policy file stops the start)
        self.lifecycle = lifecycle if lifecycle is not None else Lifecycle.load(settings)
        self.db = db
        self.blobs = blobs
        # the instance id: claims are made, renewed and settled under it
        self.name = name or settings.instance.id or default_instance_id()
        self.lease = timedelta(seconds=settings.worker.lease_seconds)
        # Whether an instance id is running (storage.instances.InstanceLock.running, set by
        # serve once it holds its own lock); without one every other instance counts as
        # running, and its rows come back only when their lease runs out.
        self.running: Callable[[str], bool] = lambda _instance: True
        self._alive: Callable[[], bool] = lambda: True  # False: claim nothing more
        self.wake = threading.Event()
        # Set after each commit that may have queued mail: serve's outbox sends it at once.
        self.mail_queued: Signal = threading.Event()
        self.preparer: Preparer = preparer or InlinePreparer(settings)
        # Rows claimed (committed) and handed to the preparer, oldest first.
        self._ahead: deque[spool.Claim] = deque()
        # Failures not yet recorded because the database failed too, oldest first.
        self._unsettled: list[_Failure] = []
        # Both checked at start (a broken set raises), reloaded when their files change.
        self.rules = rules
        self.templates = templates
        self.pseudonym_key = keys.pseudonym
        self.proof_key = keys.proof
        self.status_key = keys.status_link  # requesters' status-page links
        self.previous_keys = (keys.previous_pseudonym, keys.previous_proof)
        self.letterhead = letterhead(settings)
        self.metrics: Counters | None = None

    def measure(self, metrics: Counters | None) -> None:
        """Count stage times and outcomes into `metrics` (None: stop measuring)."""
        self.metrics = metrics
        if isinstance(self.preparer, InlinePreparer):
            self.preparer.observe = metrics.observe_stage if metrics is not None else None

    def checked(self) -> Checked:
        """The rules and templates in force, to start another worker process with."""
        return self.rules.state(), self.templates.state()

    @property
    def renderer(self) -> Renderer:
        """The templates in force."""
        return self.templates.value

    def look_for_edits(self) -> None:
        """Look for edited rules and templates if the last look is RELOAD_SECONDS old (put a
        good change in force, log a broken one once): the idle loop calls this, so an edit is
        taken up and logged at once, not only when the next mail comes."""
        self.rules.current()
        self.templates.current()

    def recover(self, own: bool = True, own_outbox: bool = False) -> list[spool.Recovered]:
        """Put rows a crash left mid-way back in the queue, or quarantine them once they have
        used up their attempts: rows whose lease ran out, rows of instances that are gone
        (`self.running`), and with `own` this instance's own rows (at start-up, and when its
        worker process died; never while its worker runs). A row of a running instance under
        a running lease is never taken. Outbox rows that gone instances (and, with
        `own_outbox`, this instance's previous run: at start-up only) left `sending` are due
        again at once."""
        now = utcnow()
        with self.db.reading() as session:
            others = set(spool.claimers(session, self.name, now))
            others.update(spool.outbox_claimers(session, self.name))
        gone = sorted(claimer for claimer in others if not self.running(claimer))
        with self.db.session() as session:
            recovered = spool.recover_inbox(
                session, self.settings.worker.max_attempts,
                me=self.name if own else None, gone=gone, now=now,
            )
            resent = spool.recover_outbox(session, [*gone, *([self.name] if own_outbox else [])])
        if resent:
            logs.event("outbox.taken_over", rows=resent, by=self.name)
        for row in recovered:  # ids and instance ids only
            logs.event("worker.taken_over", inbox_id=row.id, claimed_by=row.claimed_by,
                       lease_until=row.lease_until.isoformat() if row.lease_until else None,
                       why=row.why, state=row.state, by=self.name)
        if recovered:
            logs.event("worker.recovered",
                       requeued=sum(r.state == "queued" for r in recovered),
                       quarantined=sum(r.state == "quarantined" for r in recovered))
        return recovered

    def renew_leases(self) -> int:
        """Extend the lease of every row this instance holds `processing` (the renewer thread
        calls this every quarter of worker.lease_seconds)."""
        with self.db.session() as session:
            return spool.renew_leases(session, self.name, utcnow() + self.lease)

    @contextlib.contextmanager
    def _leases_kept(self) -> Iterator[None]:
        """Renew the leases from a thread of their own while the block runs: a mail that takes
        long (up to worker.prepare_timeout_seconds in the prepare process) never starves the
        renewal of the rows claimed."""
        done = threading.Event()
        period = max(0.2, self.settings.worker.lease_seconds / 4)

        def keep() -> None:
            while not done.wait(period):
                try:
                    self.renew_leases()
                except Exception as exc:  # the database is away: the next round tries again
                    logs.event("worker.lease_renewal_failed", logging.WARNING,
                               error=type(exc).__name__)

        renewer = threading.Thread(target=keep, name="lease-renewer", daemon=True)
        renewer.start()
        try:
            yield
        finally:
            done.set()
            renewer.join()

    def process_some(self, limit: int | None = None) -> list[Outcome]:
        """Process the oldest claimed row and, in the same transaction, the rows behind it that
        are prepared already (see BATCH_SECONDS); [] when the queue is empty. At most `limit`
        rows are processed, and no row beyond them is claimed.

        The transaction also claims the next rows, up to as many as the preparer works ahead,
        so a busy queue costs no commit of its own for claiming, and the prepare process works
        on the next mails while these are written. A row's attempt is counted (committed)
        before its processing starts."""
        ahead = self.preparer.ahead if limit is None else min(self.preparer.ahead, limit - 1)
        if self._unsettled:
            self._settle_unsettled()  # raises while the database still fails
        if not self._ahead:
            with self.db.session() as session:
                claims = self._claim(session, max(ahead, 1))
            self._hand_over(claims)
            if not self._ahead:
                return []
        claim = self._ahead.popleft()
        try:
            # Parsing and the search for personal data need only the raw bytes, which came
            # with the claim: done before taking the (SQLite) write lock, so the intake is not
            # kept waiting — in serve by the prepare process, while earlier mails are written.
            prepared = self.preparer.take()
        except PrepareFailed as failed:  # RuleOverrun: stage route, quarantined at once
            return [self._failed(_Failure(claim, failed.stage, str(failed),
                                          transient=failed.transient))]
        return self._process_batch(claim, prepared, limit)

    def _claim(self, session: Session, count: int) -> list[spool.Claim]:
        claims: list[spool.Claim] = []
        if not self._alive():  # orphaned (serve is gone): claim nothing more
            return claims
        while len(claims) < count:
            claim = spool.claim_inbox(session, self.name, self.lease)
            if claim is None:
                break
            claims.append(claim)
        return claims

    def _hand_over(self, claims: list[spool.Claim]) -> None:
        """Committed claims go to the preparer, in inbox order. If handing over fails (the
        preparer is gone), every claim goes back to the queue before the error goes on: none
        is left `processing` until its lease runs out."""
        try:
            for claim in claims:
                self._ahead.append(claim)
                # the row's data, not the ORM object; the rules are evaluated in PREPARE
                self.preparer.submit(IncomingMail.of(claim.item), self.rules.current())
        except Exception:
            self.release()
            raise

    def release(self) -> None:
        """Give back the rows claimed ahead (the worker stops before working on them)."""
        claims, self._ahead = list(self._ahead), deque()
        self.preparer.discard()
        if self._unsettled:
            try:
                self._settle_unsettled()
            except DATABASE_ERRORS as exc:  # left `processing`: the next start takes them up
                logs.event("worker.unsettled", logging.WARNING, rows=len(self._unsettled),
                           error=type(exc).__name__)
        if claims:
            with self.db.session() as session:
                for claim in claims:
                    spool.release_inbox(session, claim, self.name)

    def _process_batch(
        self, claim: spool.Claim, prepared: PreparedMail, limit: int | None
    ) -> list[Outcome]:
        most = BATCH_MAILS if limit is None else min(BATCH_MAILS, limit)
        batch = [claim]
        results: list[_Result] = []
        next_claims: list[spool.Claim] = []
        try:
            with self.db.session() as session:
                began = time.monotonic()
                while True:
                    results.append(self._run(session, batch[-1], prepared))
                    if (
                        len(batch) >= most
                        or not self._ahead
                        or time.monotonic() - began >= BATCH_SECONDS
                        or self.db.write_lock.awaited()  # the intake waits: commit now
                    ):
                        break
                    ready = self.preparer.take_ready()
                    if ready is None:
                        break
                    batch.append(self._ahead.popleft())
                    prepared = ready
                room = self.preparer.ahead
                if limit is not None:  # claim no row beyond the limit
                    room = min(room, limit - len(batch))
                next_claims = self._claim(session, max(0, room - len(self._ahead)))
        except DATABASE_ERRORS as exc:
            # The database itself failed (locked, connection lost): worth another attempt,
            # for every mail of the transaction; SQLite's "disk is full" is a temporary fault.
            stage = results[-1].stage if results else "worker"
            fault = faults.temporary(exc)
            reason = f"database error: {type(exc.orig).__name__}"
            return [self._failed(_Failure(c, stage, reason, transient=True, fault=fault))
                    for c in batch]
        except Exception as exc:
            # Outside a mail's savepoint (a bug, a rule set that fails to load): nothing of the
            # transaction was committed; the rows go back (counted: a lasting bug quarantines
            # them) instead of staying `processing` until their lease runs out.
            stage = results[-1].stage if results else "worker"
            reason = f"{type(exc).__name__} outside a mail's stages"
            return [self._failed(_Failure(c, stage, reason, transient=True)) for c in batch]
        self.mail_queued.set()
        self._hand_over(next_claims)  # only once committed
        for result in results:
            result.log()
            self._count(result.outcome.state, result.stage, result.redactions)
        return [result.outcome for result in results]

    def _count(self, outcome: str, stage: str, redactions: dict[str, int] | None = None) -> None:
        if self.metrics is not None:
            self.metrics.finished(outcome, stage, redactions or {})

    def _run(self, session: Session, claim: spool.Claim, prepared: PreparedMail) -> _Result:
        """One mail's STAGES inside the batch's transaction, in a savepoint of its own: a mail
        that fails is rolled back alone and quarantined with the stage and reason."""
        item = claim.item
        if prepared.fault is not None:  # e.g. EMFILE while preparing: the mail waits
            failure = _Failure(claim, prepared.stage, faults.reason(prepared.fault), True,
                               prepared.fault)
            try:
                outcome = self._record(session, failure)
            except spool.LeaseLost:
                return _Result(Outcome(claim.id, "lost"), item, prepared.stage)
            return _Result(outcome, item, prepared.stage, failure.reason)
        if prepared.error is not None:
            try:
                spool.quarantine_inbox(session, claim.id, worker=self.name, stage=prepared.stage,
                                       reason=prepared.error)
            except spool.LeaseLost:  # nothing was written
                return _Result(Outcome(claim.id, "lost"), item, prepared.stage)
            return _Result(Outcome(claim.id, "quarantined"), item, prepared.stage, prepared.error)
        store = TicketStore(session)
        in_force = self.rules.current()
        services = Services(
            settings=self.settings,
            store=store,
            blobs=self.blobs.bound(session),  # a database store writes in this transaction
            letters=Letters(self.settings, self.templates.current(), store,
                            proof_key=self.proof_key, head=self.letterhead,
                            status_key=self.status_key),
            # the rules that made PREPARE's decision, else those in force
            ruleset=prepared.ruleset if prepared.ruleset is not None else in_force,
            pseudonym_key=self.pseudonym_key,
            proof_key=self.proof_key,
            previous_pseudonym_keys=self.previous_keys[0],
            previous_proof_keys=self.previous_keys[1],
            lifecycle=self.lifecycle,
        )
        ctx = Context(services=services, inbox=item, prepared=prepared, now=utcnow(),
                      decisions=list(prepared.decisions), stage=prepared.stage,
                      stop_reason=prepared.stop_reason)
        savepoint = session.begin_nested()
        try:
            if ctx.stop_reason is None:
                try:
                    observe = self.metrics.observe_stage if self.metrics is not None else None
                    pipeline.run(ctx, pipeline.STAGES, observe)
                except Stop as stop:
                    ctx.stop_reason = stop.reason
            ticket_id = ctx.ticket.id if ctx.ticket is not None else None
            spool.finish_inbox(
                session,
                claim.id,
                worker=self.name,
                ticket_id=ticket_id,
                stage=ctx.stage if ctx.stop_reason else None,
                reason=ctx.stop_reason,
            )
            savepoint.commit()
        except DATABASE_ERRORS:
            raise
        except spool.LeaseLost:
            # Another instance took the row over after our lease ran out: it makes the
            # ticket, article and acknowledgement; ours are rolled back with the savepoint.
            savepoint.rollback()
            return _Result(Outcome(claim.id, "lost"), item, ctx.stage)
        except Exception as exc:
            savepoint.rollback()
            fault = faults.temporary(exc)
            if fault is not None:  # a full disk, …: the mail waits, its attempt not counted
                failure = _Failure(claim, ctx.stage, faults.reason(fault), True, fault)
                outcome = self._record(session, failure)
                return _Result(outcome, item, ctx.stage, failure.reason)
            reason = f"{type(exc).__name__}: {exc}"
            try:
                spool.quarantine_inbox(session, claim.id, worker=self.name, stage=ctx.stage,
                                       reason=reason)
            except spool.LeaseLost:
                return _Result(Outcome(claim.id, "lost"), item, ctx.stage)
            return _Result(Outcome(claim.id, "quarantined"), item, ctx.stage, reason)
        ref = ctx.ticket.ref if ctx.ticket is not None else None
        return _Result(Outcome(claim.id, "done", ticket_id), item, ctx.stage, ctx.stop_reason, ref,
                       dict(ctx.redactions or {}))

    def _failed(self, failure: _Failure) -> Outcome:
        """Record `failure` in a transaction of its own. The database may be failing as well:
        try again after SETTLE_WAITS, then remember it (recorded before the next claim); the
        other mails of the batch are then remembered at once, not waited for each."""
        waits = (*SETTLE_WAITS, None) if not self._unsettled else (None,)
        for wait in waits:
            try:
                outcome = self._settle(failure)
                break
            except DATABASE_ERRORS as exc:
                if wait is None:
                    self._unsettled.append(failure)
                    logs.event("worker.unsettled", logging.WARNING, inbox_id=failure.claim.id,
                               stage=failure.stage, error=type(exc).__name__)
                    return Outcome(failure.claim.id, "unsettled")
                time.sleep(wait)
        return outcome

    def _settle_unsettled(self) -> None:
        """Record the failures the database refused earlier; raises while it still does."""
        while self._unsettled:
            self._settle(self._unsettled[0])
            self._unsettled.pop(0)

    def _settle(self, failure: _Failure) -> Outcome:
        with self.db.session() as session:
            if not spool.still_claimed(session, failure.claim, self.name):
                # meanwhile recovered after its lease (another instance): not ours to record
                return Outcome(failure.claim.id, "requeued")
            try:
                outcome = self._record(session, failure)
            except spool.LeaseLost:  # taken over between the check and the record
                return Outcome(failure.claim.id, "lost")
        _log_failure(outcome, failure.stage, failure.reason)
        self._count(outcome.state, failure.stage)
        return outcome

    def _record(self, session: Session, failure: _Failure) -> Outcome:
        claim, stage, worker = failure.claim, failure.stage, self.settings.worker
        if failure.fault is not None:
            retries = claim.item.retries or 0
            if not faults.window_used(worker, retries):
                not_before = utcnow() + faults.backoff(worker, retries)
                spool.defer_inbox(session, claim.id, worker=self.name,
                                  reason=faults.reason(failure.fault), not_before=not_before)
                return Outcome(claim.id, "requeued")
            reason = f"{failure.fault}: temporary fault outlasted worker.retry_window_seconds"
            spool.quarantine_inbox(session, claim.id, worker=self.name, stage=stage,
                                   reason=reason)
            return Outcome(claim.id, "quarantined")
        if failure.transient and claim.attempts < worker.max_attempts:
            spool.requeue_inbox(session, claim.id, worker=self.name, reason=failure.reason)
            return Outcome(claim.id, "requeued")
        spool.quarantine_inbox(session, claim.id, worker=self.name, stage=stage,
                               reason=failure.reason)
        return Outcome(claim.id, "quarantined")

    def drain(self, limit: int | None = None) -> list[Outcome]:
        """Process rows until the queue is empty (or `limit` rows); used by tests and `import`."""
        outcomes: list[Outcome] = []
        try:
            with self._leases_kept():
                while limit is None or len(outcomes) < limit:
                    done = self.process_some(None if limit is None else limit - len(outcomes))
                    if not done:
                        break
                    outcomes += done
        finally:
            self.release()
        return outcomes

    def run_forever(
        self, stop: Signal, wake: Signal | None = None, alive: Callable[[], bool] = lambda: True
    ) -> None:
        """Process until `stop` is set (or `alive()` turns false); between rounds sleep until
        `wake` is set by the intake or the poll interval passes; while idle, look for edited
        rules and templates every RELOAD_SECONDS."""
        wake = wake or self.wake
        self._alive = alive  # checked before every claim, so also between the mails of a burst
        try:
            with self._leases_kept():
                while not stop.is_set() and alive():
                    wake.clear()  # before draining: a mail stored meanwhile wakes the next round
                    try:
                        while not stop.is_set() and alive() and self.process_some():
                            pass
                    except Exception as exc:  # the loop must survive a database outage
                        logs.event("worker.error", logging.ERROR, error=type(exc).__name__)
                        stop.wait(1.0)
                    self._idle(stop, wake)
        finally:
            self.release()  # stopping with a row claimed ahead: it goes back to the queue

    def _idle(self, stop: Signal, wake: Signal) -> None:
        """Wait for `wake` or the poll interval, looking for edited files meanwhile."""
        deadline = time.monotonic() + self.settings.worker.interval_seconds
        while not stop.is_set():
            self.look_for_edits()
            left = deadline - time.monotonic()
            if left <= 0 or wake.wait(min(left, RELOAD_SECONDS)):
                return

    def close(self) -> None:
        """Stop the preparer (the database belongs to whoever opened it)."""
        self.preparer.close()


WorkerBuilder = Callable[[Settings, Preparer, Checked | None], Worker]
"""Builds a worker with its parts (database, blobs, keys, rules, templates) in the worker
process: gateway.app.build_worker."""


class Signal(Protocol):
    """A threading.Event or a multiprocessing Event."""

    def is_set(self) -> bool: ...
    def set(self) -> None: ...
    def clear(self) -> None: ...
    def wait(self, timeout: float | None = None) -> bool: ...


LOW_NICENESS = 5


def _yield_to_intake(priority: str) -> None:
    """Lower the CPU priority of the worker (and so of its prepare process, which inherits it),
    so that the SMTP intake, whose senders wait for their 250, goes first when both want the CPU
    (measurements: docs/performance.md)."""
    if priority == "normal":
        return
    # not POSIX, or not allowed: run at normal priority
    with contextlib.suppress(AttributeError, OSError):
        if priority == "idle" and hasattr(os, "SCHED_IDLE"):
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        else:
            os.nice(LOW_NICENESS)


def run_worker_process(
    settings: Settings,
    stop: Signal,
    wake: Signal,
    parent_pid: int,
    build: WorkerBuilder,
    counters: CountersForChild,
    start: Checked | None = None,
    ready: Signal | None = None,
    prepare_pid: Any = None,
    mail_queued: Signal | None = None,
) -> None:
    """Entry point of the worker process that `postdesk serve` starts: the pipeline gets a core
    of its own instead of sharing one interpreter (and its GIL) with the SMTP intake. It ends
    when told to, or when its parent is gone (after a kill -9 of serve, so a restarted serve
    never runs beside an orphaned worker). It starts with the rules and templates serve
    checked (`start`) and follows edits from there; `ready` is set once it takes mail
    (`/healthz`); `prepare_pid` (shared) is told the pid of its prepare process. On Linux the
    kernel kills it with serve; the `getppid` poll is the fallback elsewhere. `build` makes the
    worker and its parts in this process (gateway.app.build_worker), `counters` the metrics
    (gateway.metrics.for_child_process): both module-level functions, handed over by name.
    `mail_queued` is set after each commit, for serve's outbox."""
    die_with_parent(parent_pid)
    logs.setup(settings.log_level)
    measured = counters(settings)  # before any other metric of this process
    _yield_to_intake(settings.worker.cpu_priority)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to serve, which stops us
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    # The prepare process starts with the first mail (1-3 s to load Presidio): an idle service
    # never pays its memory.
    preparer = ProcessPreparer(settings, announce=prepare_pid, counters=counters)
    worker = build(settings, preparer, start)
    worker.measure(measured)
    if mail_queued is not None:
        worker.mail_queued = mail_queued
    logs.event("worker.started", pid=os.getpid(), rules=worker.rules.value.version,
               templates=worker.templates.value.version)
    if ready is not None:
        ready.set()
    try:
        worker.run_forever(stop, wake, alive=lambda: os.getppid() == parent_pid)
    finally:
        worker.close()
        worker.db.dispose()  # opened by `build` for this process
