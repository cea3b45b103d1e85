"""Run the PREPARE stages (parse, body variants, the search for personal data) ahead of the
write transaction — inline, or in a process of its own.

They need nothing but the raw mail, and they are about half of a mail's CPU time. In
`postdesk serve` they run in a child process of the worker, a few mails ahead of it, so the
two use both cores while the worker still writes tickets one mail at a time in inbox order:
per-ticket order is the worker's order, whatever the child does. `drain`, `import`, the tests
and `worker.mode: thread` prepare inline, in the order mails are taken.

A mail that kills or hangs the child cannot take the worker with it: the worker gets a
`PrepareFailed` for that mail (counted as a failed attempt, quarantined after the last),
and the child is replaced.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import multiprocessing
import os
import queue
import signal
import time
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.context import SpawnProcess
from typing import TYPE_CHECKING, Any, NoReturn, Protocol, cast

from gateway import logs, pipeline
from gateway.config import Settings
from gateway.errors import Stop
from gateway.pipeline.context import Context, Decision, MailAnalysis, ParsedMail
from gateway.redaction import Redactor
from storage.models import InboxItem, utcnow

if TYPE_CHECKING:
    from gateway.agentcommands import CommandBlock
    from gateway.render import Renderer
    from storage.blobs import BlobStore
    from storage.tickets import TicketStore


class PrepareFailed(Exception):
    """The prepare process died or ran out of time on this mail."""


@dataclass(slots=True)
class Prepared:
    """What PREPARE made of one inbox row: handed to the worker's transaction (and, from the
    child process, pickled on the way)."""

    inbox_id: int
    mail: ParsedMail | None = None
    texts: dict[str, str] = field(default_factory=dict)
    commands: CommandBlock | None = None
    analysis: MailAnalysis | None = None
    decisions: list[Decision] = field(default_factory=list)
    stage: str = ""
    stop_reason: str | None = None  # a stage ended the run on purpose (Stop)
    error: str | None = None  # "Type: message" of an unexpected failure: quarantine

    def into(self, ctx: Context) -> None:
        """Continue the pipeline from here: copy the results into the worker's context."""
        ctx.mail = self.mail
        ctx.texts = self.texts
        ctx.commands = self.commands
        ctx.analysis = self.analysis
        ctx.decisions.extend(self.decisions)
        ctx.stage = self.stage
        ctx.stop_reason = self.stop_reason


class _Unavailable:
    """Stands in for the database, blobs and templates while preparing: PREPARE works on the
    raw mail alone, which is what lets it run anywhere, ahead of the transaction."""

    def __init__(self, what: str) -> None:
        self._what = what

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"PREPARE stages cannot use the {self._what} ({name})")


_NO_STORE = cast("TicketStore", _Unavailable("database"))
_NO_BLOBS = cast("BlobStore", _Unavailable("blob store"))
_NO_RENDERER = cast("Renderer", _Unavailable("templates"))


@functools.cache
def _redactor(entities: tuple[str, ...], model: str | None) -> Redactor:
    return Redactor(entities=entities, spacy_model=model)


def shared_redactor(settings: Settings) -> Redactor | None:
    """One Presidio engine per process and configuration (building one takes ~1 s, ~70 MiB);
    None when redaction is switched off."""
    if not settings.redaction.enabled:
        return None
    return _redactor(tuple(settings.redaction.all_entities()), settings.redaction.spacy_model)


def prepare_item(
    item: InboxItem, settings: Settings, observe: pipeline.Observer | None = None
) -> Prepared:
    """Run PREPARE over one inbox row. Never raises for a bad mail: the outcome says which
    stage stopped or failed, and why. `observe` is told each stage's run time."""
    ctx = Context(
        inbox=item,
        settings=settings,
        store=_NO_STORE,
        blobs=_NO_BLOBS,
        renderer=_NO_RENDERER,
        now=utcnow(),
        redactor=shared_redactor(settings),
    )
    error = None
    try:
        pipeline.run(ctx, pipeline.PREPARE, observe)
    except Stop as stop:
        ctx.stop_reason = stop.reason
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
    return Prepared(
        inbox_id=item.id,
        mail=ctx.mail,
        texts=ctx.texts,
        commands=ctx.commands,
        analysis=ctx.analysis,
        decisions=ctx.decisions,
        stage=ctx.stage,
        stop_reason=ctx.stop_reason,
        error=error,
    )


class Preparer(Protocol):
    """Prepares submitted inbox rows; `take` hands them back prepared, oldest first."""

    ahead: int  # how many rows the worker should claim ahead for it

    def submit(self, item: InboxItem) -> None: ...
    def take(self) -> Prepared: ...
    def take_ready(self) -> Prepared | None: ...
    def discard(self) -> None: ...
    def close(self) -> None: ...


class InlinePreparer:
    """Prepares each mail in the calling process when the worker takes it."""

    ahead = 1  # rows the worker claims ahead: saves a commit per mail, nothing runs early

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._items: deque[InboxItem] = deque()
        self.observe: pipeline.Observer | None = None  # the worker's metrics, if measured

    def submit(self, item: InboxItem) -> None:
        self._items.append(item)

    def take(self) -> Prepared:
        """The oldest submitted mail, prepared."""
        return prepare_item(self._items.popleft(), self.settings, self.observe)

    def take_ready(self) -> Prepared | None:
        """Nothing is ever prepared before it is asked for."""
        return None

    def discard(self) -> None:
        """Forget every submitted mail (the worker gave their rows back)."""
        self._items.clear()

    def close(self) -> None:
        self.discard()


STARTUP_SECONDS = 300  # loading Presidio takes 1-3 s; this only catches a child stuck at start
_READY = 0  # the "sequence" of the child's message that it has started (mails count from 1)


class ProcessPreparer:
    """Prepares in a child process, up to `ahead` mails before the worker needs them."""

    ahead = 4

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.timeout = settings.worker.prepare_timeout_seconds
        self._context = multiprocessing.get_context("spawn")
        self._pending: deque[tuple[int, InboxItem]] = deque()  # (sequence, item), oldest first
        self._sequence = 0
        self._process: SpawnProcess | None = None
        self._tasks: Any = None
        self._results: Any = None
        self._started_at = 0.0
        self._ready_at: float | None = None  # when the child said it has loaded Presidio

    def _start(self) -> None:
        self._started_at, self._ready_at = time.monotonic(), None
        self._tasks = self._context.Queue()
        self._results = self._context.Queue()
        self._process = self._context.Process(
            target=_prepare_forever,
            args=(self.settings, self._tasks, self._results, os.getpid()),
            name="postdesk-prepare",
            daemon=True,
        )
        self._process.start()

    def submit(self, item: InboxItem) -> None:
        if self._process is None:
            self._start()
        self._sequence += 1
        self._pending.append((self._sequence, item))
        self._send(self._sequence, item)

    def _send(self, sequence: int, item: InboxItem) -> None:
        self._tasks.put((sequence, item.id, item.source, item.raw))

    def take(self) -> Prepared:
        """The oldest submitted mail, prepared; PrepareFailed if the child died or hung on it
        (the child is then replaced and the mails behind it are handed to the new one). The
        time limit counts from when the child is ready: its start-up (loading Presidio) is
        not the mail's fault."""
        began = time.monotonic()
        while True:
            prepared = self._receive(timeout=min(1.0, self.timeout))
            if prepared is not None:
                return prepared
            assert self._process is not None
            if not self._process.is_alive():
                self._fail_head(f"the prepare process died on this mail (exit code "
                                f"{self._process.exitcode})")
            if self._ready_at is None:
                if time.monotonic() - self._started_at > STARTUP_SECONDS:
                    self._fail_head(f"the prepare process did not start within "
                                    f"{STARTUP_SECONDS} s")
            elif time.monotonic() > max(began, self._ready_at) + self.timeout:
                self._fail_head(f"preparing this mail took longer than {self.timeout:g} s")

    def take_ready(self) -> Prepared | None:
        """The oldest submitted mail if it is prepared already, else None (without waiting)."""
        return self._receive(timeout=None)

    def _receive(self, timeout: float | None) -> Prepared | None:
        """The head's result if it arrives within `timeout` (None: only if already there)."""
        sequence = self._pending[0][0]
        while True:
            try:
                if timeout is None:
                    got, prepared = self._results.get_nowait()
                else:
                    got, prepared = self._results.get(timeout=timeout)
            except queue.Empty:
                return None
            if got == _READY:
                self._ready_at = time.monotonic()
            elif got == sequence:
                self._pending.popleft()
                return cast(Prepared, prepared)
            # else older than `sequence`: a mail given back by `discard`, its result is stale

    def _fail_head(self, reason: str) -> NoReturn:
        """Give up on the head mail: replace the child, hand it the mails behind."""
        self._pending.popleft()
        self._restart()
        raise PrepareFailed(reason)

    def discard(self) -> None:
        """Forget every submitted mail; results still coming for them are skipped."""
        self._pending.clear()

    def _restart(self) -> None:
        old = self._process
        self._stop_child()
        self._start()
        logs.event("prepare.restarted", logging.WARNING,
                   exitcode=old.exitcode if old is not None else None)
        for sequence, item in self._pending:  # the mails behind the failed one, in order
            self._send(sequence, item)

    def _stop_child(self) -> None:
        process = self._process
        if process is None:
            return
        if process.is_alive():
            with contextlib.suppress(Exception):
                self._tasks.put(None)
            process.join(timeout=2)
            if process.is_alive():
                process.kill()
                process.join(timeout=5)
        for channel in (self._tasks, self._results):
            channel.cancel_join_thread()  # never block on a dead child's pipe
            channel.close()

    def close(self) -> None:
        self.discard()
        self._stop_child()
        self._process = None


def _prepare_forever(settings: Settings, tasks: Any, results: Any, parent_pid: int) -> None:
    """The prepare process: take (sequence, id, source, raw) tasks, put (sequence, Prepared)
    results, in order, until told to stop or the worker is gone."""
    logs.setup(settings.log_level)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to serve, which stops us
    from gateway import metrics

    measured = metrics.for_child_process(settings)  # stage times, counted across processes
    observe = measured.observe_stage if measured is not None else None
    shared_redactor(settings)  # built now, not on the first mail
    results.put((_READY, None))
    while os.getppid() == parent_pid:
        try:
            task = tasks.get(timeout=1.0)
        except queue.Empty:
            continue
        if task is None:
            break
        sequence, inbox_id, source, raw = task
        item = InboxItem(id=inbox_id, source=source, raw=raw)
        results.put((sequence, prepare_item(item, settings, observe)))
