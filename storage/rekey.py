"""Re-encrypt what is stored under the current key after the server secret was rotated
(`postdesk secrets reseal`): inbox and outbox originals, and attachment blobs, which also move
to the address the current key gives them (an HMAC of their content; plain blobs of old
versions, named by their sha256, move too and are then removed).

Safe to interrupt and to run again: every batch is its own transaction; a value already sealed
with the current key is skipped; an original is rewritten only if it is still the value read
(compare-and-set: retention may have deleted it meanwhile); a blob is written under its new
address before its rows point there, and the old one is removed only once no row points at it.
A run interrupted between the two leaves the old blob behind, and the sweep at the end of the
next run removes it. Run it once every instance runs with the new secret: an instance still on
the old one would write blobs that the sweep cannot tell from leftovers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import LargeBinary, exists, or_, select, type_coerce, update

from storage.blobs import BlobMissing, Blobs, BlobStore, DatabaseBlobStore
from storage.models import Attachment, Blob, InboxItem, OutboxItem
from storage.sealing import Sealer, SealError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from storage.engine import Database


@dataclass
class Resealed:
    """What one run did, by kind: counts only (no content, no names)."""

    counts: dict[str, int] = field(default_factory=dict)

    def add(self, what: str, count: int = 1) -> None:
        self.counts[what] = self.counts.get(what, 0) + count


def reseal_originals(db: Database, sealer: Sealer, done: Resealed, batch: int = 200) -> None:
    """Inbox and outbox raw mails not sealed with the current key: opened (with a previous key
    or as plain) and sealed again. `sealer` must be the one `db` was opened with."""
    for model, name in ((InboxItem, "inbox"), (OutboxItem, "outbox")):
        raw = type_coerce(model.raw, LargeBinary)  # the stored bytes, as they are
        last = 0
        while True:
            with db.session() as session:
                ids = list(session.scalars(
                    select(model.id).where(model.id > last, model.raw.is_not(None))
                    .order_by(model.id).limit(batch)
                ))
                for row_id in ids:  # one mail in memory at a time (up to 25 MiB each)
                    stored = session.scalar(select(raw).where(model.id == row_id))
                    if stored is None:
                        continue  # purged meanwhile
                    value = bytes(stored)
                    if sealer.current(value):
                        done.add(f"{name} current")
                        continue
                    try:
                        opened = sealer.unseal(value)
                    except SealError:
                        done.add(f"{name} not openable")
                        continue
                    result: Any = session.execute(
                        update(model).where(model.id == row_id, raw == value)
                        .values(raw=opened)  # the column seals it with the current key
                    )
                    done.add(f"{name} resealed" if result.rowcount else f"{name} changed meanwhile")
            if not ids:
                break
            last = ids[-1]


def reseal_attachments(db: Database, blobs: Blobs, done: Resealed, batch: int = 100) -> None:
    """Every attachment's blob sealed with the current key, at its current address; then the
    blobs no row points at any more (and not sealed with the current key) are removed."""
    last = 0
    while True:
        moved: set[str] = set()
        with db.session() as session:
            rows = session.execute(
                select(Attachment.id, Attachment.sha256, Attachment.blob)
                .where(Attachment.id > last).order_by(Attachment.id).limit(batch)
            ).all()
            store = blobs.bound(session)
            for row_id, sha256, blob in rows:
                old = blob or sha256
                if _move(store, session, row_id, old, done):
                    moved.add(old)
        if moved:
            with db.session() as session:
                for old in moved:
                    if not _referenced(session, old):
                        blobs.bound(session).remove(old)
                        done.add("attachment blobs removed")
        if not rows:
            break
        last = rows[-1][0]
    _sweep(db, blobs, done)


def _move(store: Blobs, session: Session, row_id: int, old: str, done: Resealed) -> bool:
    """Point one attachment row at its blob under the current key; True if it moved."""
    try:
        data = store.get(old)
    except BlobMissing:
        done.add("attachments missing")
        return False
    except SealError:
        done.add("attachments not openable")
        return False
    new = store.address(data)
    if new == old:
        done.add("attachments current" if store.current(old) else "attachments left")
        return False
    store.put(data)
    session.execute(update(Attachment).where(Attachment.id == row_id).values(blob=new))
    done.add("attachments resealed")
    return True


def _referenced(session: Session, address: str) -> bool:
    """Whether an attachment row points at `address` (or, stored before 0007, names it by
    its sha256)."""
    return bool(session.execute(select(exists().where(or_(
        Attachment.blob == address,
        (Attachment.blob.is_(None)) & (Attachment.sha256 == address),
    )))).scalar())


def _sweep(db: Database, blobs: Blobs, done: Resealed) -> None:
    """Remove blobs left behind by an interrupted run: no row points at them and they are not
    sealed with the current key (a blob sealed with it may belong to a mail being recorded)."""
    for address in _stored_addresses(db, blobs):
        with db.session() as session:
            store = blobs.bound(session)
            try:
                if store.current(address) or _referenced(session, address):
                    continue
            except BlobMissing:
                continue
            store.remove(address)
            done.add("leftover blobs removed")


def _stored_addresses(db: Database, blobs: Blobs) -> list[str]:
    if isinstance(blobs, BlobStore):
        if not blobs.root.is_dir():
            return []
        return sorted(path.name for path in blobs.root.glob("??/??/*")
                      if path.is_file() and not path.name.startswith(".tmp-"))
    if isinstance(blobs, DatabaseBlobStore):
        with db.reading() as session:
            return list(session.execute(select(Blob.sha256).order_by(Blob.sha256)).scalars())
    return []
