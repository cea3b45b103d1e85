"""Attachment bytes behind one interface with two stores (config `blobs.store`), encrypted at
rest with the key of the stored originals (storage.sealing, Fernet) and addressed by an HMAC
of their content:

- `BlobStore` (filesystem, the default): a file per address under `data_dir/blobs`, written
  and fsynced before the row commits, so a committed Attachment row never points at a missing
  or half-written file. Each host has its own.
- `DatabaseBlobStore`: a row of the `blobs` table (bytea on PostgreSQL, BLOB on SQLite), written
  in the same transaction as the Attachment row, so every instance on the database reads what
  any of them stored and N hosts share nothing but the database.

Why an HMAC and not the sha256 as the address: a file named by the sha256 of its content lets
anyone who can list the folder (or a backup of it) confirm that a given document is there
(one guessed sick note, one CV) without any key. The HMAC (key derived from the server secret,
purpose "blob-address") keeps de-duplication (same bytes, same address, under one secret) and
confirms nothing without the key. Attachment rows keep both: `blob` (the address) and `sha256`
(the contract of `tickets show --json`; see docs/operations.md for what that still tells a
reader of the database).

Blobs stored before (plain, named by their sha256) stay readable: a value without the sealing
marker is returned as it is, and a row without `blob` is found under its sha256.
`postdesk secrets reseal` (storage.rekey) moves them to sealed, HMAC-addressed blobs.

The pipeline and the CLI get a store `bound` to their transaction's session; the filesystem
store ignores it."""

from __future__ import annotations

import hashlib
import hmac
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, cast

from storage import private
from storage.sealing import PLAIN, Sealer

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from storage.engine import Database


class BlobMissing(FileNotFoundError):
    """No stored bytes at this address (a file or row that is not there)."""


class Blobs(Protocol):
    """What the pipeline, the CLI and the reseal use of a blob store."""

    def address(self, data: bytes) -> str:
        """Where `data` is stored: HMAC-SHA256 of it with the address key (hex), or its sha256
        without a key (tests, plain stores)."""
        ...

    def put(self, data: bytes) -> str:
        """Store `data` sealed (idempotent) and return its address."""
        ...

    def get(self, address: str) -> bytes:
        """The stored bytes, opened; BlobMissing (a FileNotFoundError) if there are none."""
        ...

    def current(self, address: str) -> bool:
        """Whether the blob at `address` is sealed with the current key (reseal skips it)."""
        ...

    def remove(self, address: str) -> None:
        """Delete the blob at `address` if it is there (reseal, after its rows moved)."""
        ...

    def bound(self, session: Session) -> Blobs:
        """This store inside `session`'s transaction."""
        ...


def open_store(kind: str, root: Path, db: Database, sealer: Sealer = PLAIN,
               address_key: bytes = b"") -> Blobs:
    """The store of config `blobs.store`: "database" (the blobs table of `db`) or
    "filesystem" (files under `root`, data_dir/blobs), sealing with `sealer` and addressing
    with `address_key` (gateway.secrets.Keys)."""
    if kind == "database":
        return DatabaseBlobStore(db, sealer=sealer, address_key=address_key)
    return BlobStore(root, sealer=sealer, address_key=address_key)


def content_address(data: bytes, address_key: bytes) -> str:
    if not address_key:
        return hashlib.sha256(data).hexdigest()
    return hmac.new(address_key, data, hashlib.sha256).hexdigest()


class BlobStore:
    """Sealed files under `root` (`data_dir/blobs`), named by their address."""

    def __init__(self, root: Path, *, sealer: Sealer = PLAIN, address_key: bytes = b"") -> None:
        self.root = root
        self.sealer = sealer
        self.address_key = address_key

    def path(self, address: str) -> Path:
        return self.root / address[:2] / address[2:4] / address

    def address(self, data: bytes) -> str:
        return content_address(data, self.address_key)

    def put(self, data: bytes) -> str:
        """Store `data` sealed (idempotent) and return its address."""
        digest = self.address(data)
        target = self.path(digest)
        if target.exists():
            return digest
        self._write(target, self.sealer.seal(data))
        return digest

    def _write(self, target: Path, stored: bytes) -> None:
        private.make_dirs(target.parent)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(stored)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _stored(self, address: str) -> bytes:
        try:
            return self.path(address).read_bytes()
        except FileNotFoundError as exc:
            raise BlobMissing(address) from exc

    def get(self, address: str) -> bytes:
        return self.sealer.unseal(self._stored(address))

    def current(self, address: str) -> bool:
        return self.sealer.current(self._stored(address))

    def remove(self, address: str) -> None:
        self.path(address).unlink(missing_ok=True)

    def bound(self, session: Session) -> BlobStore:
        return self


class DatabaseBlobStore:
    """Sealed attachment bytes in the `blobs` table (its key column holds the address).
    Unbound, each call is its own transaction; `bound(session)` joins the caller's (the
    worker's, so the blob commits with its row)."""

    def __init__(self, db: Database, session: Session | None = None, *,
                 sealer: Sealer = PLAIN, address_key: bytes = b"") -> None:
        self.db = db
        self.session = session
        self.sealer = sealer
        self.address_key = address_key

    def bound(self, session: Session) -> DatabaseBlobStore:
        return DatabaseBlobStore(self.db, session, sealer=self.sealer,
                                 address_key=self.address_key)

    def address(self, data: bytes) -> str:
        return content_address(data, self.address_key)

    def put(self, data: bytes) -> str:
        digest = self.address(data)
        if self.session is None:
            with self.db.session() as session:
                _insert(session, digest, self.sealer.seal(data), len(data))
        else:
            _insert(self.session, digest, self.sealer.seal(data), len(data))
        return digest

    def _stored(self, address: str) -> bytes:
        if self.session is None:
            with self.db.reading() as session:
                stored = _select(session, address)
        else:
            stored = _select(self.session, address)
        if stored is None:
            raise BlobMissing(address)
        return stored

    def get(self, address: str) -> bytes:
        return self.sealer.unseal(self._stored(address))

    def current(self, address: str) -> bool:
        return self.sealer.current(self._stored(address))

    def remove(self, address: str) -> None:
        from sqlalchemy import delete

        from storage.models import Blob

        if self.session is None:
            with self.db.session() as session:
                session.execute(delete(Blob).where(Blob.sha256 == address))
        else:
            self.session.execute(delete(Blob).where(Blob.sha256 == address))


def _insert(session: Session, digest: str, stored: bytes, size: int) -> None:
    """One row per address (`size`: of the content, not of the sealed bytes); a second
    instance storing the same bytes at the same moment skips (INSERT … ON CONFLICT DO
    NOTHING)."""
    from sqlalchemy import Table

    from storage.models import Blob, utcnow
    from storage.spool import insert_unless_present

    table = cast(Table, Blob.__table__)
    statement = insert_unless_present(session.get_bind().dialect.name, table)
    session.execute(
        statement.values(sha256=digest, size=size, data=stored, created_at=utcnow())
    )


def _select(session: Session, address: str) -> bytes | None:
    from sqlalchemy import select

    from storage.models import Blob

    value = session.execute(select(Blob.data).where(Blob.sha256 == address)).scalar()
    return None if value is None else bytes(value)
