"""Which instances are running, told by a lock each holds while it runs: on PostgreSQL a
session-level advisory lock on the instance's own connection, on SQLite an flock on a file per
instance in a folder beside the database. The database (or the kernel) drops the lock the
moment the process dies, `kill -9` included, so a restarted instance takes back the rows a dead
one left `processing` at once instead of waiting for their lease to run out.

A lock that cannot be told (SQLite in memory, not POSIX) counts as held: that instance's rows
then come back when their lease runs out, never earlier. Two ids whose keys collide make a dead
instance look alive (the safe side, too).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from pathlib import Path

from sqlalchemy import Connection, text

from storage import private
from storage.engine import Database

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

ACQUIRE_SECONDS = 2.0
"""How long a starting instance tries for its lock: another instance may hold it for an
instant while it checks whether the id is alive."""


class InstanceInUse(Exception):
    """Another running process holds this instance id (the same `instance.id` configured
    twice)."""


def lock_key(instance_id: str) -> int:
    """The 63-bit key of an instance's lock (PostgreSQL advisory locks take a signed bigint)."""
    digest = hashlib.sha256(b"postdesk-instance:" + instance_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


class InstanceLock:
    """The lock of one instance id, held from `acquire` to `release`; `running(other)` tells
    whether another instance id's lock is held now."""

    def __init__(self, db: Database, instance_id: str) -> None:
        self.db = db
        self.instance_id = instance_id
        self.key = lock_key(instance_id)
        self._connection: Connection | None = None  # PostgreSQL: holds the advisory lock
        self._fd: int | None = None  # SQLite: holds the flock
        path = db.engine.url.database if db.is_sqlite else None
        self._folder = Path(path + "-instances") if path and path != ":memory:" else None

    def _file(self, key: int) -> Path | None:
        return None if self._folder is None else self._folder / f"{key:016x}.lock"

    def acquire(self) -> None:
        """Take the lock; InstanceInUse if another running process holds it."""
        deadline = time.monotonic() + ACQUIRE_SECONDS
        while not self._try_acquire():
            if time.monotonic() >= deadline:
                raise InstanceInUse(self.instance_id)
            time.sleep(0.1)

    def _try_acquire(self) -> bool:
        if not self.db.is_sqlite:
            connection = self.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            held = connection.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key})
            if held.scalar():
                self._connection = connection
                return True
            connection.close()
            return False
        path = self._file(self.key)
        if path is None or fcntl is None:
            return True
        private.make_dirs(path.parent)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # the file we locked must still be the one at the path (a stopping instance of the
            # same id unlinks its file as it lets go)
            if os.fstat(fd).st_ino != os.stat(path).st_ino:
                raise FileNotFoundError(path)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def running(self, instance_id: str) -> bool:
        """True unless the lock of `instance_id` is free right now (its instance is gone)."""
        key = lock_key(instance_id)
        if instance_id == self.instance_id or key == self.key:
            return True
        if not self.db.is_sqlite:
            with self.db.engine.connect().execution_options(
                isolation_level="AUTOCOMMIT"
            ) as connection:
                free = connection.execute(
                    text("SELECT pg_try_advisory_lock(:k)"), {"k": key}
                ).scalar()
                if free:
                    connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            return not free
        path = self._file(key)
        if path is None or fcntl is None:
            return True
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:  # stopped (its file went with it), or never held one
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return True
        finally:
            os.close(fd)  # drops our probe's lock with it
        return False

    def release(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):  # a lost connection dropped it already
                self._connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
            with contextlib.suppress(Exception):
                self._connection.close()
            self._connection = None
        if self._fd is not None:
            path = self._file(self.key)
            if path is not None:
                with contextlib.suppress(OSError):
                    path.unlink()
            os.close(self._fd)
            self._fd = None
