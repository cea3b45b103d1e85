"""Group commit for inbox rows, so a busy SMTP listener pays one fsync per batch, not per mail.

SQLite with `synchronous=FULL` syncs the WAL on every commit; one commit per mail caps intake at
the disk's fsync rate. Here one writer thread takes every item that is waiting, inserts them all
in ONE transaction, and only then resolves each caller's future with its inbox id: a caller
still learns about success only after its own row is durable, so SMTP can answer 250 safely.

A failed batch is retried item by item (the unique `(source, source_key)` makes a retry of an
already-committed item harmless), so one poisoned item fails alone instead of taking its batch
mates down with it every time.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

from gateway import logs
from gateway.errors import IntakeError
from gateway.intake.conversation import keyed
from storage.engine import Database
from storage.spool import NewInboxItem, add_inbox_items, message_hash

MAX_BATCH = 256
"""Upper bound of items per transaction; keeps one transaction's size and latency sane."""


@dataclass(slots=True)
class _Pending:
    item: NewInboxItem
    future: Future[int]


class InboxWriter:
    """One thread that commits queued inbox items in batches; `submit` is thread-safe."""

    def __init__(
        self,
        db: Database,
        on_stored: Callable[[], None] | None = None,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self._db = db
        self._on_stored = on_stored
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._lock = threading.Lock()
        self.batches = 0
        """Transactions committed so far (for tests and benchmarks)."""
        self.stored = 0
        """Items committed so far."""

    def start(self) -> None:
        """Start the writer thread; items submitted before this wait in the queue."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="inbox-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Commit everything already submitted, then end the thread; later submits fail."""
        with self._lock:
            self._closed = True
            self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def submit(self, item: NewInboxItem) -> Future[int]:
        """Queue one item; the future gets its inbox id once committed, or an IntakeError.

        A caller that cancels the future before the writer picks the item up withdraws it."""
        future: Future[int] = Future()
        with self._lock:
            if self._closed:
                future.set_exception(IntakeError("the inbox writer is stopped"))
                return future
            self._queue.put(_Pending(item, future))
        return future

    # --- writer thread ---------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            batch, stop = self._take()
            if batch:
                self._commit(batch)
            if stop:
                return

    def _take(self) -> tuple[list[_Pending], bool]:
        """Block for one item, then take whatever else is already waiting (up to max_batch)."""
        batch: list[_Pending] = []
        entry = self._queue.get()
        while True:
            if entry is None:
                return batch, True
            # False means the caller gave up (cancelled) before we started: drop its item.
            if entry.future.set_running_or_notify_cancel():
                batch.append(entry)
            if len(batch) >= self._max_batch:
                return batch, False
            try:
                entry = self._queue.get_nowait()
            except queue.Empty:
                return batch, False

    def _commit(self, batch: list[_Pending]) -> None:
        try:
            ids = self._insert([p.item for p in batch])
        except Exception as exc:
            if len(batch) == 1:
                self._fail(batch[0], exc)
            else:
                logs.event(
                    "inbox.batch_failed", logging.WARNING, size=len(batch), error=type(exc).__name__
                )
                for pending in batch:  # find the poisoned one; the others go through
                    self._commit([pending])
            return
        for pending, inbox_id in zip(batch, ids, strict=True):
            pending.future.set_result(inbox_id)
        self._notify()

    def _insert(self, items: list[NewInboxItem]) -> list[int]:
        with self._db.session(urgent=True) as session:  # a client waits for its 250
            ids = add_inbox_items(session, keyed(self._db, items))
        self.batches += 1
        self.stored += len(items)
        return ids

    def _fail(self, pending: _Pending, exc: Exception) -> None:
        logs.event(
            "inbox.store_failed",
            logging.ERROR,
            error=type(exc).__name__,
            hash=message_hash(pending.item.raw),
        )
        error = IntakeError(f"inbox commit failed ({type(exc).__name__})")
        error.__cause__ = exc
        pending.future.set_exception(error)

    def _notify(self) -> None:
        if self._on_stored is None:
            return
        try:
            self._on_stored()
        except Exception as exc:  # a broken hook must not undo or fail a durable commit
            logs.event("inbox.on_stored_failed", logging.ERROR, error=type(exc).__name__)
