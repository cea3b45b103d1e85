"""Attachment bytes, addressed by their sha256, behind one interface with two stores (config
`blobs.store`):

- `BlobStore` (filesystem, the default): a file per sha256 under `data_dir/blobs`, written and
  fsynced before the row commits, so a committed Attachment row never points at a missing or
  half-written file. Each host has its own.
- `DatabaseBlobStore`: a row of the `blobs` table (bytea on PostgreSQL, BLOB on SQLite), written
  in the same transaction as the Attachment row, so every instance on the database reads what
  any of them stored and N hosts share nothing but the database. The one place where stored
  attachment bytes pass in and out: encryption at rest would go into `_seal`/`_open`.

The pipeline and the CLI get a store `bound` to their transaction's session; the filesystem
store ignores it."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, cast

from storage import private

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from storage.engine import Database


class BlobMissing(FileNotFoundError):
    """No stored bytes for this sha256 (a file or row that is not there)."""


class Blobs(Protocol):
    """What the pipeline and the CLI use of a blob store."""

    def put(self, data: bytes) -> str:
        """Store `data` (idempotent) and return its sha256 hex digest."""
        ...

    def get(self, sha256: str) -> bytes:
        """The stored bytes; BlobMissing (a FileNotFoundError) if there are none."""
        ...

    def bound(self, session: Session) -> Blobs:
        """This store inside `session`'s transaction."""
        ...


def open_store(kind: str, root: Path, db: Database) -> Blobs:
    """The store of config `blobs.store`: "database" (the blobs table of `db`) or
    "filesystem" (files under `root`, data_dir/blobs)."""
    if kind == "database":
        return DatabaseBlobStore(db)
    return BlobStore(root)


class BlobStore:
    """Content-addressed files under `root` (`data_dir/blobs`)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def put(self, data: bytes) -> str:
        """Store `data` (idempotent) and return its sha256 hex digest."""
        digest = hashlib.sha256(data).hexdigest()
        target = self.path(digest)
        if target.exists():
            return digest
        private.make_dirs(target.parent)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return digest

    def get(self, sha256: str) -> bytes:
        try:
            return self.path(sha256).read_bytes()
        except FileNotFoundError as exc:
            raise BlobMissing(sha256) from exc

    def bound(self, session: Session) -> BlobStore:
        return self


class DatabaseBlobStore:
    """Attachment bytes in the `blobs` table. Unbound, each call is its own transaction;
    `bound(session)` joins the caller's (the worker's, so the blob commits with its row)."""

    def __init__(self, db: Database, session: Session | None = None) -> None:
        self.db = db
        self.session = session

    def bound(self, session: Session) -> DatabaseBlobStore:
        return DatabaseBlobStore(self.db, session)

    def put(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        if self.session is None:
            with self.db.session() as session:
                _insert(session, digest, _seal(data))
        else:
            _insert(self.session, digest, _seal(data))
        return digest

    def get(self, sha256: str) -> bytes:
        if self.session is None:
            with self.db.reading() as session:
                stored = _select(session, sha256)
        else:
            stored = _select(self.session, sha256)
        if stored is None:
            raise BlobMissing(sha256)
        return _open(stored)


def _seal(data: bytes) -> bytes:
    """Bytes as stored: the place for encryption at rest (stored plain today, like the files)."""
    return data


def _open(stored: bytes) -> bytes:
    return stored


def _insert(session: Session, digest: str, stored: bytes) -> None:
    """One row per sha256; a second instance storing the same bytes at the same moment skips
    (INSERT … ON CONFLICT DO NOTHING)."""
    from sqlalchemy import Table

    from storage.models import Blob, utcnow
    from storage.spool import insert_unless_present

    table = cast(Table, Blob.__table__)
    statement = insert_unless_present(session.get_bind().dialect.name, table)
    session.execute(
        statement.values(sha256=digest, size=len(stored), data=stored, created_at=utcnow())
    )


def _select(session: Session, sha256: str) -> bytes | None:
    from sqlalchemy import select

    from storage.models import Blob

    value = session.execute(select(Blob.data).where(Blob.sha256 == sha256)).scalar()
    return None if value is None else bytes(value)
