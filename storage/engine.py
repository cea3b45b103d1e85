"""Create the SQLAlchemy engine with the durability settings postdesk relies on.

SQLite runs in WAL mode with synchronous=FULL: in WAL mode NORMAL may lose the last commits on
power loss, and a mail we answered 250 for must survive that. Write transactions start with
BEGIN IMMEDIATE so two writers queue instead of failing on lock upgrade; read-only sessions use
a plain BEGIN (WAL readers never block the writer). Inside one process, SQLite writers also
take a Python lock: SQLite's own busy handler waits by sleeping in growing steps (up to 100 ms),
which turned a busy intake plus worker into second-long SMTP replies. PostgreSQL needs none of
this; the same SQL runs on both.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from storage import private, sealing
from storage.sealing import Sealer

try:  # POSIX: serialise SQLite writers across processes without SQLite's sleep-polling
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: SQLite's busy timeout alone
    fcntl = None  # type: ignore[assignment]

SQLITE_BUSY_TIMEOUT_MS = 30_000
READ_ONLY = "postdesk_read_only"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (see module docstring)
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = FULL")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute("PRAGMA secure_delete = ON")  # purged originals are overwritten, not just freed
    cursor.close()


def _sqlite_begin(conn: Any) -> None:
    read_only = conn.get_execution_options().get(READ_ONLY, False)
    conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def create_db_engine(url: str) -> Engine:
    """An engine for `url`; SQLite files get their folder created and the pragmas above. A
    database error never quotes the statement's values (`hide_parameters`): they are mail,
    addresses and names, and the error's text ends up in a quarantined row's reason."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            path = Path(parsed.database)
            private.make_dirs(path.parent)  # it holds personal data: 0700 folder, 0600 files
            private.create_file(path)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                               hide_parameters=True)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10,
                         hide_parameters=True)


class WriterLock:
    """One writer at a time: threads queue on a Lock, processes on flock() of a lock file.

    Used for SQLite only: the serve process's intake and its worker process then hand the write
    lock over at once instead of polling with SQLite's growing sleeps."""

    def __init__(self, path: Path | None) -> None:
        self._threads = threading.Lock()
        self._path = path
        self._fd: int | None = None
        self._pid = 0
        # A writer that must not wait long (the SMTP intake: a client waits for its 250) holds
        # a shared flock on this second file while it waits; the holder of the write lock can
        # test for that and commit early instead of adding more work to its transaction.
        self._waiting_path = path.with_name(path.name + "-waiting") if path else None
        self._waiting_fds: dict[str, int] = {}
        self._waiting_pid = 0

    def _file(self) -> int | None:
        if self._path is None or fcntl is None:
            return None
        if self._fd is None or self._pid != os.getpid():  # a forked child opens its own
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            self._pid = os.getpid()
        return self._fd

    def _waiting_file(self, role: str) -> int | None:
        """One descriptor per role: flock sees two descriptions even inside one process."""
        if self._waiting_path is None or fcntl is None:
            return None
        if self._waiting_pid != os.getpid():  # a forked child opens its own
            self._waiting_fds, self._waiting_pid = {}, os.getpid()
        if role not in self._waiting_fds:
            self._waiting_fds[role] = os.open(self._waiting_path, os.O_RDWR | os.O_CREAT, 0o600)
        return self._waiting_fds[role]

    @contextmanager
    def hold(self, urgent: bool = False) -> Iterator[None]:
        """Hold the lock; `urgent` lets the current holder see (`awaited`) that we wait."""
        fd = self._waiting_file("announce") if urgent else None
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_SH)
        try:
            self.__enter__()
        finally:
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
        try:
            yield
        finally:
            self.__exit__()

    def awaited(self) -> bool:
        """True if an urgent writer is waiting for this lock right now."""
        fd = self._waiting_file("probe")
        if fd is None:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False

    def __enter__(self) -> WriterLock:
        self._threads.acquire()
        try:
            fd = self._file()
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            self._threads.release()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        try:
            if self._fd is not None and fcntl is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()


@dataclass(frozen=True)
class Database:
    """An engine plus its session factories; `session()` and `reading()` are the only ways code
    gets a Session."""

    engine: Engine
    sessions: sessionmaker[Session]
    read_sessions: sessionmaker[Session]
    write_lock: WriterLock = field(default_factory=lambda: WriterLock(None))

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def session(self, urgent: bool = False) -> Iterator[Session]:
        """One write transaction: committed on success, rolled back on any exception. An
        `urgent` writer (the SMTP intake) makes the holder of the SQLite write lock, if it
        asks (`write_lock.awaited()`), finish its transaction sooner."""
        with (
            self.write_lock.hold(urgent) if self.is_sqlite else nullcontext(),
            self.sessions() as session,
            session.begin(),
        ):
            yield session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """One read-only transaction (queries for the CLI, status, benchmarks)."""
        with self.read_sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


def open_database(url: str, sealer: Sealer | None = None) -> Database:
    """The database at `url`; stored mail is sealed and opened with `sealer` (None: plain)."""
    engine = create_db_engine(url)
    if sealer is not None:
        sealing.attach(engine, sealer)
    reader = engine.execution_options(**{READ_ONLY: True})
    database = engine.url.database
    lock_file = None
    if engine.dialect.name == "sqlite" and database and database != ":memory:":
        lock_file = Path(database + "-writelock")
    return Database(
        engine,
        sessionmaker(engine, expire_on_commit=False),
        sessionmaker(reader, expire_on_commit=False),
        WriterLock(lock_file),
    )
