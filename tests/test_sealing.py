"""Stored mail is sealed with the key of the database it is written through: a `Sealer` passed
to `open_database`, never a key set for the whole process (issue 13)."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from gateway.app import App
from gateway.config import Settings
from gateway.outgoing.senders import RecordingSender
from storage import spool
from storage.engine import Database, open_database
from storage.models import InboxItem
from storage.sealing import MARKER, Sealer, SealError

KEY_A = b"Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmE="  # 32 bytes, urlsafe base64 (Fernet)
KEY_B = b"cXV4YmF6YmFyZm9vcXV4YmF6YmFyZm9vcXV4YmF6YmE="


def store(db: Database, raw: bytes, key: str) -> int:
    with db.session() as session:
        [inbox_id] = spool.add_inbox_items(session, [spool.NewInboxItem("import", key, raw)])
    return inbox_id


def read(db: Database, inbox_id: int) -> bytes | None:
    with db.reading() as session:
        return session.scalar(select(InboxItem.raw).where(InboxItem.id == inbox_id))


def on_disk(db: Database, inbox_id: int) -> bytes:
    with db.reading() as session:
        return bytes(session.execute(text("SELECT raw FROM inbox WHERE id = :id"),
                                     {"id": inbox_id}).scalar_one())


def test_each_database_seals_with_its_own_key(db: Database, settings: Settings) -> None:
    first = open_database(settings.database.url, Sealer(KEY_A))
    second = open_database(settings.database.url, Sealer(KEY_B))
    try:
        sealed = store(first, b"Subject: eins\r\n\r\nText\r\n", "a")
        assert on_disk(db, sealed).startswith(MARKER)
        assert read(first, sealed) == b"Subject: eins\r\n\r\nText\r\n"
        with pytest.raises(SealError, match="cannot be decrypted"):
            read(second, sealed)  # another key, in the same process
        with pytest.raises(SealError, match="no key is configured"):
            read(db, sealed)  # a database opened without a sealer stores and reads plain bytes
        plain = store(db, b"Subject: zwei\r\n\r\nText\r\n", "b")
        assert on_disk(db, plain) == b"Subject: zwei\r\n\r\nText\r\n"
        assert read(second, plain) == b"Subject: zwei\r\n\r\nText\r\n"  # written before a key
    finally:
        first.dispose()
        second.dispose()


def test_building_an_app_sets_no_key_for_the_process(db: Database, settings: Settings) -> None:
    app = App.build(settings, sender=RecordingSender())
    try:
        sealed = store(app.db, b"Subject: App\r\n\r\nText\r\n", "app")
        assert on_disk(db, sealed).startswith(MARKER)  # the app's database seals
        plain = store(db, b"Subject: daneben\r\n\r\nText\r\n", "other")
        assert on_disk(db, plain) == b"Subject: daneben\r\n\r\nText\r\n"  # others do not
    finally:
        app.db.dispose()
