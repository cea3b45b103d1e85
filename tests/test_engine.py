"""The SQLite write lock: an urgent writer (the SMTP intake) that waits is visible to the holder,
which then ends its batch early."""

from __future__ import annotations

import threading
import time

import pytest

from storage.engine import Database


def test_the_holder_sees_an_urgent_writer_waiting_and_only_while_it_waits(db: Database) -> None:
    if not db.is_sqlite:
        pytest.skip("PostgreSQL has no single write lock")
    got_in = threading.Event()

    def intake() -> None:
        with db.session(urgent=True):
            got_in.set()

    with db.session():  # the worker's transaction
        assert not db.write_lock.awaited()
        waiter = threading.Thread(target=intake)
        waiter.start()
        deadline = time.monotonic() + 5
        while not db.write_lock.awaited() and time.monotonic() < deadline:
            time.sleep(0.005)
        assert db.write_lock.awaited()
        assert not got_in.is_set()
    waiter.join(timeout=5)
    assert got_in.is_set()
    assert not db.write_lock.awaited()


def test_an_ordinary_writer_waiting_is_not_announced(db: Database) -> None:
    if not db.is_sqlite:
        pytest.skip("PostgreSQL has no single write lock")
    started = threading.Event()

    def outbox() -> None:
        started.set()
        with db.session():
            pass

    with db.session():
        waiter = threading.Thread(target=outbox)
        waiter.start()
        started.wait(5)
        time.sleep(0.05)
        assert not db.write_lock.awaited()
    waiter.join(timeout=5)
