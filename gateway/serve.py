"""`postdesk serve`: run the parts the App built together — SMTP intake, the worker (its own
process, restarted if it dies), the scheduler's jobs and the ops endpoint — until SIGTERM/SIGINT,
and stop them within the shutdown timeout."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
import time
from types import FrameType
from typing import TYPE_CHECKING

from gateway import logs, metrics
from gateway.app import App, build_worker
from gateway.intake.smtp import SmtpIntake
from gateway.jobs.leader import Leadership
from gateway.jobs.outboxloop import OutboxLoop
from gateway.jobs.scheduler import build_scheduler
from gateway.pipeline.worker import Signal, run_worker_process
from gateway.signals import ProcessFlag

if TYPE_CHECKING:
    from multiprocessing.context import SpawnProcess

    from gateway.opshttp import OpsServer
    from gateway.web.server import WebServer


def serve(app: App, install_signals: bool = True) -> None:
    """Run `app` until SIGTERM/SIGINT (or `app.stop_event`)."""
    Service(app).run(install_signals)


class Service:
    """One run of `postdesk serve` over an App; `runner` and `ops` exist while it runs."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.settings = app.settings
        self.stop_event = app.stop_event
        self.runner: WorkerRunner | None = None
        self.ops: OpsServer | None = None  # with `metrics:` configured
        self.leadership: Leadership | None = None  # while it runs
        self.web: dict[str, WebServer] = {}  # with `web:` configured: "public", "internal"

    def run(self, install_signals: bool = True) -> None:
        """Run intake, worker and scheduler until SIGTERM/SIGINT (or `stop_event`), holding
        this instance's lock (gateway.app.App.running_instance) the whole time."""
        self.app.init_database()  # a schema upgrade under a lock; a wrong secret stops here
        with self.app.running_instance():
            self._run(install_signals)

    def _run(self, install_signals: bool) -> None:
        app = self.app
        runner = self.runner = WorkerRunner(app)
        ops = self._ops(runner)
        intake = SmtpIntake(
            app.settings,
            app.db,
            on_stored=runner.wake.set,
            on_reply=ops.metrics.smtp_reply if ops is not None else None,
        )
        # Bind first: a second serve on a busy port ends here with one line, before it starts a
        # worker process or puts back rows that the serve owning the port is working on.
        intake.start()
        if ops is not None:
            try:
                ops.start()
            except BaseException:
                intake.stop()
                raise
        try:
            self._start_web(runner)
        except BaseException:
            intake.stop()
            if ops is not None:
                ops.stop()
            raise
        # Rows this instance id left (a stable instance.id restarted) or whose instance is gone
        # or whose lease ran out; never the rows of a running instance.
        app.worker.recover(own=True, own_outbox=True)
        if install_signals:

            def _stop(signum: int, _frame: FrameType | None) -> None:
                logs.event("serve.stopping", signal=signum)
                self.stop_event.set()

            signal.signal(signal.SIGTERM, _stop)
            signal.signal(signal.SIGINT, _stop)
        leadership = self.leadership = Leadership(app.db, app.settings.jobs, me=app.instance_id)
        scheduler = build_scheduler(app, wake=runner.wake.set, leadership=leadership)
        outbox = OutboxLoop(app, runner.mail_queued)
        runner.start()
        leadership.start()  # knows whether it leads before the scheduler's first runs
        scheduler.start()
        outbox.start()
        logs.event(
            "serve.started",
            instance=app.instance_id,
            smtp=f"{app.settings.smtp.host}:{intake.port}",
            worker=app.settings.worker.mode,
            transport=app.settings.outgoing.transport,
            rules=app.worker.rules.value.version,
            templates=app.worker.templates.value.version,
        )
        try:
            self.stop_event.wait()
        finally:
            # The worker stops beside the intake, within the shutdown timeout whatever it does
            # (stuck, it is killed); the intake stops taking mail, what it accepted is committed.
            timeout = app.settings.worker.shutdown_timeout_seconds
            stopping = threading.Thread(target=runner.stop, args=(timeout,), name="stop-worker")
            stopping.start()
            intake.stop(grace=min(5.0, timeout / 2))
            stopping.join()
            if ops is not None:
                ops.stop()
            for server in self.web.values():
                server.stop()
            outbox.stop()
            scheduler.shutdown(wait=True)
            leadership.stop()  # after the jobs: another instance may lead at once
            app.db.dispose()
            logs.event("serve.stopped")

    def _start_web(self, runner: WorkerRunner) -> None:
        """The status pages and the internal listener (gateway.web), if `web:` is set."""
        web = self.app.settings.web
        if web is None:
            return
        from starlette.routing import BaseRoute

        from gateway.web import reports
        from gateway.web.app import WebParts, internal_app, metrics_route, public_app
        from gateway.web.server import WebServer

        app = self.app
        parts = WebParts(
            app.settings, app.db, app.keys.status_link, renderer=lambda: app.renderer,
            lifecycle=lambda: app.worker.lifecycle, wake_worker=runner.wake.set,
            wake_outbox=runner.mail_queued.set,
        )
        internal_routes: list[BaseRoute] = [reports.mount(app.settings, app.db)]
        if self.ops is not None:  # `metrics:` too: its /metrics also on the internal listener
            internal_routes.append(metrics_route(self.ops.metrics.registry))
        self.web = {
            "public": WebServer("public", public_app(parts), web.public.host, web.public.port,
                                web.trusted_proxies),
            "internal": WebServer("internal", internal_app(app.db, internal_routes),
                                  web.internal.host, web.internal.port),
        }
        started: list[WebServer] = []
        try:
            for server in self.web.values():
                server.start()
                started.append(server)
        except BaseException:
            for server in started:
                server.stop()
            raise

    def _ops(self, runner: WorkerRunner) -> OpsServer | None:
        """The /metrics and /healthz endpoint, if configured (`self.ops` while serving)."""
        if self.app.settings.metrics is None:
            return None
        from gateway.opshttp import OpsServer

        self.ops = OpsServer.build(self.app.settings, self.app.db, runner, self.app.instance_id)
        if self.ops.metrics.pipeline is not None:  # worker.mode: thread
            self.app.worker.measure(self.ops.metrics.pipeline)
        return self.ops


class WorkerRunner:
    """Runs the pipeline worker beside the intake: in its own process by default (a core of its
    own), restarted if it dies; or, with `worker.mode: thread`, as a thread of serve."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.process_mode = app.settings.worker.mode == "process"
        context = multiprocessing.get_context("spawn")
        # Shared with the worker process: flags that a killed worker cannot jam (see signals)
        self.wake: Signal = ProcessFlag(context) if self.process_mode else app.worker.wake
        self._stop: Signal = ProcessFlag(context) if self.process_mode else threading.Event()
        self._context = context
        self._supervisor: threading.Thread | None = None
        self._process: SpawnProcess | None = None
        self._ready: Signal = ProcessFlag(context) if self.process_mode else threading.Event()
        # Set by the worker after each commit, for the outbox thread (gateway.jobs.outboxloop)
        self.mail_queued: Signal = (
            ProcessFlag(context) if self.process_mode else app.worker.mail_queued
        )
        self._prepare_pid = context.RawValue("i", 0)  # the worker's prepare process, if any
        self.restarts = 0  # worker processes that died and were replaced

    def start(self) -> None:
        target = self._supervise if self.process_mode else self._run_thread
        self._supervisor = threading.Thread(target=target, name="worker", daemon=True)
        self._supervisor.start()

    def _run_thread(self) -> None:
        self.app.worker.run_forever(self._stop, self.wake)

    @property
    def pid(self) -> int | None:
        """The worker process's id (process mode), for operators and tests."""
        return self._process.pid if self._process is not None else None

    def alive(self) -> bool:
        """Whether the worker runs and takes mail, judged now: in process mode from the
        process itself (its sentinel is readable the moment it ended, also before the
        supervisor noticed), and only once the new process said it is ready."""
        if not self.process_mode:
            return self._supervisor is not None and self._supervisor.is_alive()
        process = self._process
        if process is None or not self._ready.is_set():
            return False
        return not multiprocessing.connection.wait([process.sentinel], timeout=0)

    def _supervise(self) -> None:
        while not self._stop.is_set():
            self._ready.clear()
            process = self._context.Process(
                target=run_worker_process,
                args=(self.app.settings, self._stop, self.wake, os.getpid(), build_worker,
                      metrics.for_child_process, self.app.worker.checked(), self._ready,
                      self._prepare_pid, self.mail_queued),
                name="postdesk-worker",
                daemon=False,  # it starts the prepare process; it ends with serve on its own
            )
            process.start()
            self._process = process
            process.join()
            if not self._stop.is_set():
                self.restarts += 1
                logs.event("worker.died", exitcode=process.exitcode)
                self._stop.wait(1.0)
                # its half-done mail goes back to the queue (our own id: the process is gone)
                self.app.worker.recover()

    def stop(self, timeout: float = 60.0) -> None:
        """Tell the worker to stop and wait for it: a worker process still running near the
        end of `timeout` is terminated, then killed, with its prepare process, so this
        returns within `timeout`. A worker thread cannot be killed: it is left behind (a
        daemon thread, it ends with serve)."""
        deadline = time.monotonic() + timeout
        grace = min(1.0, timeout / 4)  # between asking and killing
        self._stop.set()
        self.wake.set()
        if self._supervisor is None:
            return
        self._supervisor.join(max(0.0, deadline - 2 * grace - time.monotonic()))
        process = self._process
        if self._supervisor.is_alive() and process is not None:
            logs.event("worker.killed", logging.WARNING, timeout=timeout)
            self._signal_children(process, signal.SIGTERM)
            process.join(grace)
            self._signal_children(process, signal.SIGKILL)
        self._supervisor.join(max(0.0, deadline - time.monotonic()))

    def _signal_children(self, process: SpawnProcess, signum: int) -> None:
        """Send `signum` to the prepare process and the worker process, while the worker runs
        (once it is gone, its prepare process is too, or about to be: see gateway.pipeline.lifeline;
        and its pid might be another process's by now)."""
        for pid in (self._prepare_pid.value, process.pid):
            if pid and process.exitcode is None:
                if signum == signal.SIGKILL:  # at cpu_priority idle it dies only with CPU time
                    with contextlib.suppress(AttributeError, OSError):
                        os.sched_setscheduler(pid, os.SCHED_OTHER, os.sched_param(0))
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signum)
