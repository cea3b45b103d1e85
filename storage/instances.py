"""Which instances are running, told by a lock each holds while it runs: on PostgreSQL a
session-level advisory lock on the instance's own connection, on SQLite a byte-range lock
(lockf) in a file beside the database. The database (or the kernel) drops the lock the moment
the process dies, `kill -9` included, so a restarted instance takes back the rows a dead one
left `processing` at once instead of waiting for their lease to run out.

A lock that cannot be told (SQLite in memory, not POSIX) counts as held: the rows of that
instance then come back when their lease runs out, never earlier. Two distinct ids that hash
to one key make a dead instance look alive (the safe side, too).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from pathlib import Path

from sqlalchemy import Connection, text

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


def _offset(key: int) -> int:
    """The byte of the SQLite lock file that stands for `key` (40 bits: well inside off_t)."""
    return key >> 23


class InstanceLock:
    """The lock of one instance id, held from `acquire` to `release`; `running(other)` tells
    whether another instance id's lock is held now."""

    def __init__(self, db: Database, instance_id: str) -> None:
        self.db = db
        self.instance_id = instance_id
        self.key = lock_key(instance_id)
        self._connection: Connection | None = None  # PostgreSQL: holds the advisory lock
        self._fd: int | None = None  # SQLite: holds the lockf range
        path = db.engine.url.database if db.is_sqlite else None
        self._file = Path(path + "-instances") if path and path != ":memory:" else None

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
        if self._file is None or fcntl is None:
            return True
        fd = os.open(self._file, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, _offset(self.key))
        except OSError:
            os.close(fd)
            return False
        self._fd = fd  # kept open: closing any descriptor of the file drops the process's locks
        return True

    def running(self, instance_id: str) -> bool:
        """True unless the lock of `instance_id` is free right now (its instance is gone)."""
        key = lock_key(instance_id)
        if instance_id == self.instance_id or key == self.key or (
            self.db.is_sqlite and _offset(key) == _offset(self.key)
        ):
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
        if self._fd is None or fcntl is None:
            return True
        try:  # on our own descriptor: a second one, once closed, would drop our own lock
            fcntl.lockf(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, _offset(key))
        except OSError:
            return True
        fcntl.lockf(self._fd, fcntl.LOCK_UN, 1, _offset(key))
        return False

    def release(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):  # a lost connection dropped it already
                self._connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
            with contextlib.suppress(Exception):
                self._connection.close()
            self._connection = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
