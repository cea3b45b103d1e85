"""Temporary faults stay temporary: a full attachment store (ENOSPC) makes the mail wait with
back-off and become a ticket once space returns, using up none of its attempts; a database that
fails while a failure is recorded never leaves the row `processing`."""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError
from typer.testing import CliRunner

from gateway.app import App
from gateway.cli import cli
from gateway.config import Settings, WorkerSettings
from gateway.outgoing.senders import RecordingSender
from gateway.pipeline import faults, worker
from storage import spool
from storage.blobs import BlobStore
from storage.engine import Database
from storage.models import InboxItem, utcnow
from tests.helpers import make_mail, running, send, tickets, wait_for, write_config

FAST_RETRY = {"retry_backoff_seconds": 0.2, "retry_backoff_max_seconds": 0.4}


@pytest.fixture
def app(make_settings: Callable[..., Settings]) -> Iterator[App]:
    settings = make_settings(worker={"mode": "thread", "max_attempts": 1, **FAST_RETRY})
    application = App.build(settings, sender=RecordingSender())
    application.init_database()
    yield application
    application.db.dispose()


class FullDisk:
    """The blob store's disk: full (every write fails with ENOSPC) until `free()`."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.full = True
        self.failed = 0
        put = BlobStore.put

        def put_or_fail(store: BlobStore, data: bytes) -> str:
            if self.full:
                self.failed += 1
                raise OSError(errno.ENOSPC, "No space left on device", str(store.root / "x"))
            return put(store, data)

        monkeypatch.setattr(BlobStore, "put", put_or_fail)

    def free(self) -> None:
        self.full = False


def mail_with_attachment() -> EmailMessage:
    msg = make_mail()
    msg.add_attachment(b"%PDF-1.4 scan", maintype="application", subtype="pdf",
                       filename="scan.pdf")
    return msg


def enqueue(app: App, raw: bytes, key: str) -> int:
    with app.db.session() as session:
        [item_id] = spool.add_inbox_items(
            session, [spool.NewInboxItem(source="smtp", source_key=key, raw=raw)]
        )
    return item_id


def row(app: App, item_id: int) -> InboxItem:
    with app.db.reading() as session:  # not through the failing write sessions
        item = session.get(InboxItem, item_id)
        assert item is not None
        return item


def test_temporary_faults_are_the_environments_not_the_mails() -> None:
    assert faults.temporary(OSError(errno.ENOSPC, "full")) == "ENOSPC"
    assert faults.temporary(OSError(errno.EDQUOT, "quota")) == "EDQUOT"
    assert faults.temporary(OSError(errno.EIO, "io")) == "EIO"
    try:
        try:
            raise OSError(errno.EROFS, "read-only")
        except OSError as exc:
            raise RuntimeError("wrapped") from exc
    except RuntimeError as wrapped:
        assert faults.temporary(wrapped) == "EROFS"
    full = OperationalError("INSERT", {}, sqlite3.OperationalError("database or disk is full"))
    assert faults.temporary(full) == "ENOSPC"
    locked = OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked"))
    assert faults.temporary(locked) is None
    assert faults.temporary(OSError(errno.EACCES, "denied")) is None  # a set-up mistake: loud
    assert faults.temporary(ValueError("bad mail")) is None
    assert faults.reason("ENOSPC").startswith("ENOSPC: No space left on device")


def test_back_off_doubles_up_to_its_maximum_and_ends_with_the_window() -> None:
    settings = WorkerSettings(retry_backoff_seconds=15, retry_backoff_max_seconds=600,
                              retry_window_seconds=3600)
    waits = [faults.backoff(settings, n).total_seconds() for n in range(8)]
    assert waits == [15, 30, 60, 120, 240, 480, 600, 600]
    assert not faults.window_used(settings, 10)  # 3345 s waited
    assert faults.window_used(settings, 11)  # 3945 s


def test_a_full_blob_store_makes_the_mail_wait_without_using_up_its_attempts(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = FullDisk(monkeypatch)
    item_id = enqueue(app, mail_with_attachment().as_bytes(), "enospc")
    [outcome] = app.worker.drain()
    assert outcome.state == "requeued"  # with max_attempts 1, the old code quarantined here
    item = row(app, item_id)
    assert (item.state, item.attempts, item.retries) == ("queued", 0, 1)
    assert item.reason is not None and item.reason.startswith("ENOSPC: ")
    assert "/" not in item.reason  # no path, nothing of the mail
    assert item.not_before is not None and item.not_before > utcnow()
    assert app.worker.drain() == []  # not claimed again before its back-off ends

    for _ in range(3):  # the disk stays full: every try waits longer, nothing is quarantined
        wait_for(lambda: row(app, item_id).not_before <= utcnow(), timeout=5)  # type: ignore[operator]
        assert [o.state for o in app.worker.drain()] == ["requeued"]
    item = row(app, item_id)
    assert (item.state, item.attempts, item.retries) == ("queued", 0, 4)
    assert disk.failed == 4 and tickets(app) == []

    disk.free()
    wait_for(lambda: row(app, item_id).not_before <= utcnow(), timeout=5)  # type: ignore[operator]
    [outcome] = app.worker.drain()
    assert outcome.state == "done" and outcome.ticket_id is not None
    assert row(app, item_id).state == "done"


def test_a_fault_that_outlasts_the_retry_window_quarantines(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(worker={"retry_backoff_seconds": 0.05,
                                     "retry_backoff_max_seconds": 0.05,
                                     "retry_window_seconds": 0.1})
    application = App.build(settings, sender=RecordingSender())
    application.init_database()
    try:
        FullDisk(monkeypatch)
        item_id = enqueue(application, mail_with_attachment().as_bytes(), "window")
        states = []
        for _ in range(3):
            time.sleep(0.06)
            states += [o.state for o in application.worker.drain()]
        assert states == ["requeued", "requeued", "quarantined"]
        item = row(application, item_id)
        assert item.state == "quarantined" and item.stage == "record"
        assert item.reason == "ENOSPC: temporary fault outlasted worker.retry_window_seconds"
    finally:
        application.db.dispose()


def test_enospc_over_smtp_becomes_a_ticket_once_space_returns_without_inbox_retry(
    app: App, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The acceptance test: serve over real SMTP, the blob store's disk full, then freed."""
    disk = FullDisk(monkeypatch)
    config = write_config(tmp_path / "postdesk.yaml", app.settings)
    with running(app):
        send(app.settings, mail_with_attachment())
        wait_for(lambda: disk.failed >= 3)  # tried again and again (max_attempts is 1)
        assert tickets(app) == []
        with app.db.session() as session:
            [item] = spool.list_inbox(session)
        assert item.state in ("queued", "processing") and item.attempts <= 1

        # the row waits 0.4 s between tries and is `processing` for a moment in between: look
        # until both commands caught it waiting (they take longer than a wait under load)
        def shown_waiting() -> bool:
            listed = CliRunner().invoke(cli, ["--config", str(config), "inbox", "list"])
            status = CliRunner().invoke(cli, ["--config", str(config), "status"])
            outputs.append((listed.output, status.output))
            return "waiting until" in listed.output and "waiting: 1 mails" in status.output

        outputs: list[tuple[str, str]] = []
        wait_for(shown_waiting, timeout=20)
        listed, status = outputs[-1]
        assert "waiting until" in listed and "(ENOSPC, retry" in listed
        assert "waiting: 1 mails after a temporary fault (ENOSPC 1)" in status
        assert "Erika" not in listed + status

        disk.free()
        wait_for(lambda: tickets(app), timeout=10)
    with app.db.session() as session:
        [item] = spool.list_inbox(session)
    assert item.state == "done" and item.ticket_id == tickets(app)[0].id


@pytest.fixture
def db_app(make_settings: Callable[..., Settings]) -> Iterator[App]:
    """Database errors still count against worker.max_attempts (3 here)."""
    settings = make_settings(worker={"mode": "thread", "max_attempts": 3})
    application = App.build(settings, sender=RecordingSender())
    application.init_database()
    yield application
    application.db.dispose()


class FailingSessions:
    """The database fails (OperationalError: database is locked) for the next `count` sessions
    opened through `db.session()` once armed: a real fault injected at the session factory."""

    def __init__(self, app: App, monkeypatch: pytest.MonkeyPatch) -> None:
        self.left = 0
        self.refused = 0
        session = Database.session

        def failing(db: Database, *args: Any, **kwargs: Any) -> AbstractContextManager[Any]:
            if self.left > 0 and db is app.db:
                self.left -= 1
                self.refused += 1
                raise OperationalError("BEGIN", {}, sqlite3.OperationalError("database is locked"))
            return session(db, *args, **kwargs)

        monkeypatch.setattr(Database, "session", failing)

    def fail(self, count: int) -> None:
        self.left = count


def _fail_after_claim(app: App, sessions: FailingSessions, count: int) -> None:
    """Claim the row (sessions work), then fail the batch and `count - 1` more sessions;
    once: later claims work as usual."""
    claim = app.worker._claim
    armed = [True]

    def claim_then_fail(*args: Any) -> list[spool.Claim]:
        claims = claim(*args)
        if claims and armed.pop():
            sessions.fail(count)
            armed.append(False)
        return claims

    app.worker._claim = claim_then_fail  # type: ignore[method-assign]


def test_a_database_error_while_recording_a_failure_is_retried_shortly(
    db_app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = db_app
    sessions = FailingSessions(app, monkeypatch)
    monkeypatch.setattr(worker, "SETTLE_WAITS", (0.01, 0.01, 0.01, 0.01))
    _fail_after_claim(app, sessions, 3)  # the batch, then the failure handler twice
    item_id = enqueue(app, make_mail().as_bytes(), "db-flaky")
    outcome = app.worker.process_some(1)
    assert [o.state for o in outcome] == ["requeued"] and sessions.refused == 3
    assert row(app, item_id).state == "queued"  # not left `processing`


def test_a_failure_the_database_refuses_to_record_is_recorded_once_it_is_back(
    db_app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = db_app
    sessions = FailingSessions(app, monkeypatch)
    monkeypatch.setattr(worker, "SETTLE_WAITS", (0.01, 0.01, 0.01, 0.01))
    _fail_after_claim(app, sessions, 1 + 5 + 2)  # batch, every try of the handler, 2 rounds
    item_id = enqueue(app, make_mail().as_bytes(), "db-down")
    [outcome] = app.worker.process_some(1)
    assert outcome.state == "unsettled" and row_state(app, item_id) == "processing"
    for _ in range(2):  # the database is still down: the worker loop survives the error
        with pytest.raises(OperationalError):
            app.worker.process_some(1)
    # the database is back: recorded at the next round (no lease of 300 s), then processed
    outcomes = app.worker.drain()
    assert [o.state for o in outcomes] == ["done"]
    item = row(app, item_id)
    assert item.state == "done" and item.attempts == 2


def test_the_worker_loop_records_a_refused_failure_without_waiting_for_the_lease(
    db_app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = db_app
    sessions = FailingSessions(app, monkeypatch)
    monkeypatch.setattr(worker, "SETTLE_WAITS", (0.01,))
    _fail_after_claim(app, sessions, 1 + 2 + 3)
    item_id = enqueue(app, make_mail().as_bytes(), "db-loop")
    with running(app):
        item = wait_for(lambda: (i := row(app, item_id)).state == "done" and i, timeout=10)
    assert item.ticket_id is not None
    assert item.attempts <= 3  # recorded, requeued, done: within seconds, not lease_seconds


def row_state(app: App, item_id: int) -> str:
    return row(app, item_id).state


def _mount_small_tmpfs(path: Path) -> bool:
    """A real file system that can be filled: a 256 KiB tmpfs (needs root, as in the project's
    containers); False where mounting is not allowed."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(path)],
                             capture_output=True, check=False)
    return mounted.returncode == 0


def _fill(path: Path) -> None:
    with path.open("wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC


def test_a_really_full_blob_store_under_serve_with_its_worker_process(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """No injection: the blob store is a tmpfs filled up; serve runs its real worker process."""
    blobs = tmp_path / "var" / "blobs"
    blobs.mkdir(parents=True)
    if not _mount_small_tmpfs(blobs):
        pytest.skip("mounting a small tmpfs needs root")
    try:
        _fill(blobs / "filler")
        settings = make_settings(worker={"max_attempts": 1, **FAST_RETRY})
        assert settings.worker.mode == "process"
        application = App.build(settings, sender=RecordingSender())
        application.init_database()
        msg = make_mail()
        msg.add_attachment(os.urandom(64 * 1024), maintype="application",
                           subtype="octet-stream", filename="dump.bin")
        with running(application):
            send(settings, msg)

            def retries() -> int:
                with application.db.reading() as session:
                    items = spool.list_inbox(session, with_mail=False)
                return items[0].retries if items else 0

            wait_for(lambda: retries() >= 3, timeout=30)
            assert tickets(application) == []
            (blobs / "filler").unlink()  # space is back
            wait_for(lambda: tickets(application), timeout=30)
        with application.db.reading() as session:
            [item] = spool.list_inbox(session, with_mail=False)
        assert (item.state, item.attempts) == ("done", 1)
        application.db.dispose()
    finally:
        subprocess.run(["umount", "-l", str(blobs)], check=False)


def test_an_error_outside_the_stages_does_not_leave_the_row_processing(
    db_app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = db_app
    current = app.worker.templates.current  # read in the batch, outside the mail's savepoint
    calls = [0]

    def broken_once() -> Any:
        calls[0] += 1
        if calls[0] == 1:
            raise RuntimeError("templates could not be loaded")
        return current()

    monkeypatch.setattr(app.worker.templates, "current", broken_once)
    item_id = enqueue(app, make_mail().as_bytes(), "outside")
    [outcome] = app.worker.process_some(1)
    assert outcome.state == "requeued" and row_state(app, item_id) == "queued"
    assert [o.state for o in app.worker.drain()] == ["done"]


def test_a_preparer_that_refuses_a_claim_gives_every_claim_back(
    db_app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = db_app
    submit = app.worker.preparer.submit
    calls = [0]

    def broken_once(*args: Any) -> Any:
        calls[0] += 1
        if calls[0] == 1:
            raise BrokenPipeError("prepare process gone")
        return submit(*args)

    monkeypatch.setattr(app.worker.preparer, "submit", broken_once)
    item_id = enqueue(app, make_mail().as_bytes(), "handover")
    with pytest.raises(BrokenPipeError):
        app.worker.process_some(1)
    assert row_state(app, item_id) == "queued"
    assert [o.state for o in app.worker.drain()] == ["done"]


def test_a_temporary_fault_while_preparing_makes_the_mail_wait(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway import pipeline

    stages = list(pipeline.PREPARE)
    name, parse = stages[0]
    failed = [0]

    def out_of_descriptors(ctx: Any) -> None:
        if failed[0] == 0:
            failed[0] += 1
            raise OSError(errno.EMFILE, "Too many open files")
        parse(ctx)

    monkeypatch.setattr(pipeline, "PREPARE", ((name, out_of_descriptors), *stages[1:]))
    item_id = enqueue(app, make_mail().as_bytes(), "emfile")
    [outcome] = app.worker.drain()
    assert outcome.state == "requeued"  # quarantined at once before
    item = row(app, item_id)
    assert (item.state, item.attempts, item.retries) == ("queued", 0, 1)
    assert item.reason is not None and item.reason.startswith("EMFILE: ")
    wait_for(lambda: row(app, item_id).not_before <= utcnow(), timeout=5)  # type: ignore[operator]
    assert [o.state for o in app.worker.drain()] == ["done"]
