"""storage.direct: the worker's writes handed straight to sqlite3 must store exactly what
SQLAlchemy would (dates, JSON, sealed bytes, column defaults), raise SQLAlchemy's exceptions,
show up for cursor listeners, and fall back to SQLAlchemy where they cannot go direct."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Table, event, insert, select, text
from sqlalchemy.exc import IntegrityError, StatementError

from storage.direct import Direct, execute, run_direct
from storage.engine import Database, open_database
from storage.migrate import upgrade
from storage.models import Event, OutboxItem
from storage.sealing import MARKER, Sealer

_OUTBOX = cast(Table, OutboxItem.__table__)
_EVENTS = cast(Table, Event.__table__)
NOW = datetime(2026, 12, 7, 9, 30, 15, 123456, tzinfo=UTC)


@pytest.fixture
def sealed_db(db_url: str) -> Iterator[Database]:
    db = open_database(db_url, Sealer(Fernet.generate_key()))
    upgrade(db)
    yield db
    db.dispose()


def outbox_row(message_id: str, **extra: Any) -> dict[str, Any]:
    return {"ticket_id": None, "kind": "requester-received", "message_id": message_id,
            "envelope_from": "servicedesk@example.org", "envelope_to": ["erika@example.net"],
            "raw": b"Subject: Drucker\r\n\r\nHallo", "created_at": NOW, **extra}


def stored(db: Database, message_id: str) -> dict[str, Any]:
    """The row as the database holds it, column by column (raw text, not through the ORM)."""
    with db.reading() as session:
        row = session.execute(text("SELECT * FROM outbox WHERE message_id = :m"),
                              {"m": message_id}).mappings().one()
    return {key: value for key, value in row.items() if key != "id"}


def test_a_direct_insert_stores_what_sqlalchemy_stores(sealed_db: Database) -> None:
    direct = Direct(insert(_OUTBOX))
    with sealed_db.session() as session:
        session.connection().execute(insert(_OUTBOX), [outbox_row("<core@x>")])
        execute(session.connection(), direct, [outbox_row("<direct@x>")])
    core, fast = stored(sealed_db, "<core@x>"), stored(sealed_db, "<direct@x>")
    raw_core, raw_fast = core.pop("raw"), fast.pop("raw")
    due_core, due_fast = core.pop("next_attempt_at"), fast.pop("next_attempt_at")  # utcnow()
    assert type(due_core) is type(due_fast) and len(str(due_core)) == len(str(due_fast))
    assert {**core, "message_id": None} == {**fast, "message_id": None}  # defaults, JSON, dates
    assert bytes(raw_fast).startswith(MARKER) and bytes(raw_core).startswith(MARKER)  # sealed
    with sealed_db.reading() as session:
        item = session.scalars(select(OutboxItem).where(OutboxItem.message_id == "<direct@x>")
                               ).one()
        assert item.raw == b"Subject: Drucker\r\n\r\nHallo" and item.created_at == NOW
        assert item.state == "queued" and item.attempts == 0 and item.envelope_to == [
            "erika@example.net"]


def test_several_rows_go_in_one_statement_and_returning_gives_the_id(db: Database) -> None:
    rows = [{"ticket_id": None, "actor": "system", "kind": f"k{i}", "detail": {"n": i},
             "created_at": NOW} for i in range(3)]
    returning = Direct(insert(_EVENTS).returning(_EVENTS.c.id))
    with db.session() as session:
        execute(session.connection(), Direct(insert(_EVENTS)), rows)
        new_id = execute(session.connection(), returning, {**rows[0], "kind": "k3"}).scalar_one()
    with db.reading() as session:
        kinds = session.execute(select(Event.id, Event.kind, Event.detail).order_by(Event.id))
        assert [(k, d) for _, k, d in kinds] == [("k0", {"n": 0}), ("k1", {"n": 1}),
                                                 ("k2", {"n": 2}), ("k3", {"n": 0})]
        assert new_id == session.scalar(select(Event.id).where(Event.kind == "k3"))


def test_returned_rows_come_back_as_sqlalchemy_gives_them(sealed_db: Database) -> None:
    """Dates, JSON and sealed columns of a RETURNING row, processed as SQLAlchemy does."""
    returning = insert(_OUTBOX).returning(*_OUTBOX.c)
    with sealed_db.session() as session:
        core = dict(session.connection().execute(returning, outbox_row("<core@x>")).mappings()
                    .one())
        fast = execute(session.connection(), Direct(returning), outbox_row("<fast@x>")
                       ).mappings().one()
    assert fast["raw"] == b"Subject: Drucker\r\n\r\nHallo" and fast["created_at"] == NOW
    assert fast["envelope_to"] == ["erika@example.net"] and fast["state"] == "queued"
    assert {key: type(value) for key, value in core.items()} == {
        key: type(value) for key, value in fast.items()}


def test_a_database_error_is_sqlalchemys_and_listeners_see_the_statement(db: Database) -> None:
    seen: list[str] = []

    def listen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement.split()[0])

    event.listen(db.engine, "before_cursor_execute", listen)
    direct = Direct(insert(_OUTBOX))
    with pytest.raises(IntegrityError), db.session() as session:  # message_id is unique
        execute(session.connection(), direct, [outbox_row("<same@x>")])
        execute(session.connection(), direct, [outbox_row("<same@x>")])
    assert seen.count("INSERT") >= 2


def test_a_value_a_type_refuses_is_a_statement_error_without_the_values(db: Database) -> None:
    with pytest.raises(StatementError) as refused, db.session() as session:
        execute(session.connection(), Direct(insert(_OUTBOX)),
                [outbox_row("<naive@x>", created_at=NOW.replace(tzinfo=None))])
    assert "naive datetime" in str(refused.value) and "erika" not in str(refused.value)


def test_rows_of_different_keys_and_other_dialects_go_through_sqlalchemy(db: Database) -> None:
    """(SQLAlchemy compiles an executemany for the first row's keys, as before.)"""
    direct = Direct(insert(_OUTBOX))
    mixed = [outbox_row("<a@x>"), outbox_row("<b@x>", state="quarantined")]
    with db.session() as session:
        assert run_direct(session.connection(), direct, mixed) is None
        execute(session.connection(), direct, mixed)
        if db.engine.dialect.name != "sqlite":
            assert run_direct(session.connection(), direct, [outbox_row("<c@x>")]) is None
    assert stored(db, "<a@x>")["state"] == stored(db, "<b@x>")["state"] == "queued"
