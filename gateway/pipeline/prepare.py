"""PREPARE: `prepare` turns an inbox row's data (IncomingMail) into a PreparedMail — parsed,
its body variants and #commands, the personal data found, the rules' decision — with nothing
but the settings, the redactor and the ruleset: no database, blobs or templates. The preparers
here run it ahead of the write transaction, inline or in a process of its own.

It is about half of a mail's CPU time. In
`postdesk serve` they run in a child process of the worker, a few mails ahead of it, so the
two use both cores while the worker still writes tickets one mail at a time in inbox order:
per-ticket order is the worker's order, whatever the child does. `drain`, `import`, the tests
and `worker.mode: thread` prepare inline, in the order mails are taken.

A mail that kills or hangs the child cannot take the worker with it: the worker gets a
`PrepareFailed` for that mail (counted as a failed attempt, quarantined after the last),
and the child is replaced.

PREPARE also evaluates the routing rules (gateway.pipeline.route), with the ruleset the worker
has in force (sent to the child whenever it changes), under a budget of CPU time
(`routing.evaluation_budget_seconds`): the child notes in shared memory which rule it is on,
and the worker kills and replaces a child that overruns; that mail is quarantined at once at
stage `route`, naming the rule's file:line (`RuleOverrun`: the same mail and rules would
overrun again). A preparer inline (`drain`, `import`, `worker.mode: thread`) cannot stop
itself: there the check of `rules check` and every reload, which refuses patterns that can
backtrack exponentially, is the guard, and an evaluation found over the budget afterwards
quarantines the mail the same way.
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
from multiprocessing.context import SpawnProcess
from typing import TYPE_CHECKING, Any, NoReturn, Protocol, cast

from gateway import logs, pipeline
from gateway.config import Settings
from gateway.errors import PrepareFailed, RuleOverrun, Stop
from gateway.pipeline import faults
from gateway.pipeline.context import IncomingMail, PreparedMail, Preparing
from gateway.pipeline.counters import CountersForChild
from gateway.pipeline.lifeline import die_with_parent
from gateway.redaction import Redactor

if TYPE_CHECKING:
    from gateway.routing.ruleset import RouteDecision, Ruleset


def overrun_reason(ruleset: Ruleset, index: int, budget: float) -> str:
    """Which rule ran over (file:line: admins' YAML, never mail content)."""
    if 0 <= index < len(ruleset.rules):
        rule = ruleset.rules[index]
        what = f"rule {rule.name!r} at {rule.file}:{rule.line}"
        logs.event("rules.overrun", logging.WARNING, rule=rule.name, file=rule.file,
                   line=rule.line, budget=budget)
    else:
        what = "the rules"
        logs.event("rules.overrun", logging.WARNING, budget=budget)
    return (f"evaluating {what} took more than {budget:g} s of CPU time "
            "(routing.evaluation_budget_seconds)")


# The slots of a RuleWatch's shared array.
_CPU, _WALL, _RULE, _SEQUENCE = range(4)


class RuleWatch:
    """Where the evaluation of the rules on one mail is: its start (CPU time of the evaluating
    thread and wall clock), the rule being tested and the mail's sequence number (0: none).
    In shared memory for a prepare process, so that its parent can read it while the child
    is stuck inside the regular expression engine; writing it costs the child ~0.1 µs a rule."""

    def __init__(self, shared: Any = None) -> None:
        self.shared = shared if shared is not None else [0.0] * 4
        self._mark = 0.0
        self._rule = -1
        self.slowest = (-1, 0.0)  # (rule, wall seconds) of the slowest rule so far

    def begin(self, sequence: int) -> None:
        shared = self.shared
        shared[_CPU] = time.thread_time()
        shared[_WALL] = time.monotonic()
        shared[_RULE] = -1
        shared[_SEQUENCE] = sequence  # last: a reader that sees it sees the rest
        self._mark, self._rule, self.slowest = time.perf_counter(), -1, (-1, 0.0)

    def on_rule(self, index: int) -> None:
        self._lap()
        self._rule = index
        self.shared[_RULE] = index

    def _lap(self) -> None:
        now = time.perf_counter()
        if now - self._mark > self.slowest[1]:
            self.slowest = (self._rule, now - self._mark)
        self._mark = now

    def end(self) -> float:
        """CPU seconds the evaluation took."""
        self._lap()
        self.shared[_SEQUENCE] = 0
        return time.thread_time() - self.shared[_CPU]

    def overrun(self, pid: int, budget: float) -> tuple[int, int] | None:
        """(sequence, rule) if the process `pid` has been evaluating longer than `budget`:
        its thread's CPU time where /proc tells it (a child starved of CPU is not stuck),
        else wall time."""
        shared = self.shared
        sequence = int(shared[_SEQUENCE])
        if not sequence:
            return None
        started, began, rule = shared[_CPU], shared[_WALL], int(shared[_RULE])
        if int(shared[_SEQUENCE]) != sequence:  # it moved on meanwhile
            return None
        cpu = _thread_cpu_seconds(pid)
        spent = cpu - started if cpu is not None else time.monotonic() - began
        return (sequence, rule) if spent > budget else None


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _thread_cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) of the main thread of process `pid`, from Linux's /proc."""
    try:
        with open(f"/proc/{pid}/task/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS


@functools.cache
def _redactor(entities: tuple[str, ...], model: str | None, staff: tuple[str, ...]) -> Redactor:
    return Redactor(entities=entities, spacy_model=model, staff_names=staff)


def shared_redactor(settings: Settings) -> Redactor | None:
    """One Presidio engine per process and configuration (building one takes ~1 s, ~70 MiB);
    None when redaction is switched off."""
    if not settings.redaction.enabled:
        return None
    return _redactor(
        tuple(settings.redaction.all_entities()),
        settings.redaction.spacy_model,
        tuple(agent.name for agent in settings.agents),
    )


def prepare(
    incoming: IncomingMail,
    settings: Settings,
    redactor: Redactor | None,
    ruleset: Ruleset | None = None,
    *,
    observe: pipeline.Observer | None = None,
    watch: RuleWatch | None = None,
    sequence: int = 1,
) -> PreparedMail:
    """Run PREPARE over one inbox row's data with `redactor` (None: redaction switched off)
    and evaluate `ruleset` on it (if given). Never raises for a bad mail: the outcome says
    which stage stopped or failed, and why. `observe` is told each stage's run time; `watch`
    follows the rules' evaluation (for the parent process)."""
    state = Preparing(incoming=incoming, settings=settings, redactor=redactor)
    route = stop_reason = error = fault = None
    try:
        pipeline.run(state, pipeline.PREPARE, observe)
        if ruleset is not None:
            route, error = _evaluate(state, ruleset, watch or RuleWatch(), sequence, observe)
    except Stop as stop:
        stop_reason = stop.reason
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        fault = faults.temporary(exc)
    return PreparedMail(
        inbox_id=incoming.id,
        mail=state.mail,
        texts=state.texts,
        commands=state.commands,
        inseparable=state.inseparable,
        analysis=state.analysis,
        decisions=state.decisions,
        route=route,
        language=state.language,
        ruleset=ruleset if route is not None else None,
        stage=state.stage,
        stop_reason=stop_reason,
        error=error,
        fault=fault,
    )


def _evaluate(state: Preparing, ruleset: Ruleset, watch: RuleWatch, sequence: int,
              observe: pipeline.Observer | None) -> tuple[RouteDecision, str | None]:
    """The rules' decision, and an error if it took more than the budget (when the parent did
    not stop it first, or inline, where nobody can)."""
    from gateway.pipeline import route

    assert state.mail is not None
    state.stage = "route"  # where a mail whose evaluation fails is quarantined
    budget = state.settings.routing.evaluation_budget_seconds
    state.language = route.mail_language(state.mail, state.settings)  # the rules read it
    began = time.perf_counter()
    watch.begin(sequence)
    try:
        decision = route.decide(state.mail, state.settings, state.incoming.received_at, ruleset,
                                watch.on_rule, state.language)
    finally:
        cpu = watch.end()
        if observe is not None:
            observe("rules", time.perf_counter() - began)
    if cpu > budget:
        return decision, str(RuleOverrun(overrun_reason(ruleset, watch.slowest[0], budget)))
    return decision, None


class Preparer(Protocol):
    """Prepares submitted inbox rows; `take` hands them back prepared, oldest first."""

    ahead: int  # how many rows the worker should claim ahead for it

    def submit(self, incoming: IncomingMail, ruleset: Ruleset | None = None) -> None: ...
    def take(self) -> PreparedMail: ...
    def take_ready(self) -> PreparedMail | None: ...
    def discard(self) -> None: ...
    def close(self) -> None: ...


class InlinePreparer:
    """Prepares each mail in the calling process when the worker takes it."""

    ahead = 1  # rows the worker claims ahead: saves a commit per mail, nothing runs early

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._items: deque[tuple[IncomingMail, Ruleset | None]] = deque()
        self.observe: pipeline.Observer | None = None  # the worker's metrics, if measured

    def submit(self, incoming: IncomingMail, ruleset: Ruleset | None = None) -> None:
        self._items.append((incoming, ruleset))

    def take(self) -> PreparedMail:
        """The oldest submitted mail, prepared."""
        incoming, ruleset = self._items.popleft()
        return prepare(incoming, self.settings, shared_redactor(self.settings), ruleset,
                       observe=self.observe)

    def take_ready(self) -> PreparedMail | None:
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
    """Prepares in a child process, up to `ahead` mails before the worker needs them.
    `announce`, a shared integer, is told the pid of each child started (serve kills it at
    shutdown if need be); `counters` builds the child's stage-time counters (serve's metrics)."""

    ahead = 4

    def __init__(
        self, settings: Settings, announce: Any = None, counters: CountersForChild | None = None
    ) -> None:
        self.settings = settings
        self._counters = counters
        self.timeout = settings.worker.prepare_timeout_seconds
        self.budget = settings.routing.evaluation_budget_seconds
        self._announce = announce
        self._context = multiprocessing.get_context("spawn")
        # (sequence, mail, ruleset), oldest first
        self._pending: deque[tuple[int, IncomingMail, Ruleset | None]] = deque()
        self._sequence = 0
        self._process: SpawnProcess | None = None
        self._tasks: Any = None
        self._results: Any = None
        self._watch = RuleWatch()
        self._sent: Ruleset | None = None  # the ruleset the child has
        self._started_at = 0.0
        self._ready_at: float | None = None  # when the child said it has loaded Presidio

    def _start(self) -> None:
        self._started_at, self._ready_at = time.monotonic(), None
        self._tasks = self._context.Queue()
        self._results = self._context.Queue()
        self._watch = RuleWatch(self._context.RawArray("d", 4))
        self._sent = None
        self._process = self._context.Process(
            target=_prepare_forever,
            args=(self.settings, self._tasks, self._results, os.getpid(), self._watch.shared,
                  self._counters),
            name="postdesk-prepare",
            daemon=True,
        )
        self._process.start()
        if self._announce is not None:
            self._announce.value = self._process.pid

    def submit(self, incoming: IncomingMail, ruleset: Ruleset | None = None) -> None:
        if self._process is None:
            self._start()
        self._sequence += 1
        self._pending.append((self._sequence, incoming, ruleset))
        self._send(self._sequence, incoming, ruleset)

    def _send(self, sequence: int, incoming: IncomingMail, ruleset: Ruleset | None) -> None:
        if ruleset is not None and ruleset is not self._sent:  # a reload: the child follows
            self._tasks.put(("rules", ruleset))
            self._sent = ruleset
        # as a plain tuple: half the pickling time of the frozen dataclass (~12 µs a mail)
        self._tasks.put(("mail", sequence, incoming.id, incoming.source, incoming.raw,
                         incoming.received_at))

    def take(self) -> PreparedMail:
        """The oldest submitted mail, prepared; PrepareFailed if the child died or hung on it
        (the child is then replaced and the mails behind it are handed to the new one), or
        RuleOverrun if the rules took longer than their budget on it. The time limit counts
        from when the child is ready: its start-up (loading Presidio) is not the mail's
        fault."""
        began = time.monotonic()
        wait = min(1.0, self.timeout, self.budget / 4)
        while True:
            prepared = self._receive(timeout=wait)
            if prepared is not None:
                return prepared
            assert self._process is not None
            if not self._process.is_alive():
                self._fail_head(PrepareFailed(f"the prepare process died on this mail (exit "
                                              f"code {self._process.exitcode})"))
            self._check_rules()
            if self._ready_at is None:
                if time.monotonic() - self._started_at > STARTUP_SECONDS:
                    self._fail_head(PrepareFailed(f"the prepare process did not start within "
                                                  f"{STARTUP_SECONDS} s"))
            elif time.monotonic() > max(began, self._ready_at) + self.timeout:
                self._fail_head(PrepareFailed(f"preparing this mail took longer than "
                                              f"{self.timeout:g} s"))

    def _check_rules(self) -> None:
        """Stop a child whose evaluation of the rules overran: RuleOverrun for the head mail;
        for a mail given back meanwhile (it comes again), only a new child."""
        assert self._process is not None and self._process.pid is not None
        over = self._watch.overrun(self._process.pid, self.budget)
        if over is None:
            return
        sequence, rule = over
        head, _, ruleset = self._pending[0]
        if sequence == head and ruleset is not None:
            self._fail_head(RuleOverrun(overrun_reason(ruleset, rule, self.budget)))
        if sequence < head:
            self._restart()

    def take_ready(self) -> PreparedMail | None:
        """The oldest submitted mail if it is prepared already, else None (without waiting)."""
        return self._receive(timeout=None)

    def _receive(self, timeout: float | None) -> PreparedMail | None:
        """The head's result if it arrives within `timeout` (None: only if already there)."""
        sequence, _, ruleset = self._pending[0]
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
                result = cast(PreparedMail, prepared)
                result.ruleset = ruleset if result.route is not None else None
                return result
            # else older than `sequence`: a mail given back by `discard`, its result is stale

    def _fail_head(self, failure: PrepareFailed) -> NoReturn:
        """Give up on the head mail: replace the child, hand it the mails behind."""
        self._pending.popleft()
        self._restart()
        raise failure

    def discard(self) -> None:
        """Forget every submitted mail; results still coming for them are skipped."""
        self._pending.clear()

    def _restart(self) -> None:
        old = self._process
        self._stop_child()
        self._start()
        logs.event("prepare.restarted", logging.WARNING,
                   exitcode=old.exitcode if old is not None else None)
        for sequence, incoming, ruleset in self._pending:  # the mails behind the failed one
            self._send(sequence, incoming, ruleset)

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
        if self._announce is not None:
            self._announce.value = 0
        for channel in (self._tasks, self._results):
            channel.cancel_join_thread()  # never block on a dead child's pipe
            channel.close()

    def close(self) -> None:
        self.discard()
        self._stop_child()
        self._process = None


def _prepare_forever(
    settings: Settings, tasks: Any, results: Any, parent_pid: int, watch: Any = None,
    counters: CountersForChild | None = None,
) -> None:
    """The prepare process: take ("mail", sequence, id, source, raw, received_at) tasks, put
    (sequence, PreparedMail) results, in order, evaluating the rules of the last ("rules",
    ruleset) task, until told to stop or the worker is gone (killed with it on Linux)."""
    die_with_parent(parent_pid)
    logs.setup(settings.log_level)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to serve, which stops us
    measured = counters(settings) if counters is not None else None  # stage times
    observe = measured.observe_stage if measured is not None else None
    redactor = shared_redactor(settings)  # built now, not on the first mail
    results.put((_READY, None))
    rules_watch = RuleWatch(watch)
    ruleset: Ruleset | None = None
    while os.getppid() == parent_pid:
        try:
            task = tasks.get(timeout=1.0)
        except queue.Empty:
            continue
        if task is None:
            break
        if task[0] == "rules":
            ruleset = task[1]
            continue
        _, sequence, inbox_id, source, raw, received_at = task
        incoming = IncomingMail(id=inbox_id, source=source, raw=raw, received_at=received_at)
        prepared = prepare(incoming, settings, redactor, ruleset, observe=observe,
                           watch=rules_watch, sequence=sequence)
        prepared.ruleset = None  # the worker has it: not pickled back with every mail
        results.put((sequence, prepared))
