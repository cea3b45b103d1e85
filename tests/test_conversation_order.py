"""Conversation order, atomic de-duplication and counters under concurrency (issue 14,
defects 3-5), each on its own: conversation keys, the in-order claim, the unique inbound
Message-ID, the round-robin counter's first use by two instances, articles in arrival order.
(With real serve processes: tests/test_scaleout.py.)"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import select

from gateway.config import Settings
from gateway.errors import Stop
from gateway.intake.conversation import keyed
from gateway.mail.conversation import keys
from gateway.pipeline import guard, record
from storage import spool
from storage.assignment import next_in_rotation
from storage.engine import Database
from storage.models import Article, Event, InboxConversation, InboxItem, utcnow
from storage.tickets import TicketStore
from tests.helpers import OUTLOOK_REPLY, make_mail, parsed_mail, stage_context


def _raw(**fields: object) -> bytes:
    return bytes(make_mail(**fields))  # type: ignore[arg-type]


def test_a_reply_shares_a_key_with_its_original_and_strangers_share_none() -> None:
    original = make_mail(message_id="<orig-1@example.net>")
    by_parent = _raw(subject="Re: x", headers={"In-Reply-To": "<orig-1@example.net>"})
    by_references = _raw(subject="Re: x", headers={"References": "<a@b> <orig-1@example.net>"})
    by_tag = _raw(subject="AW: Drucker [lds-42]")
    tagged = _raw(subject="Drucker [LDS - 42] noch einmal")
    outlook = _raw(headers={"Thread-Index": OUTLOOK_REPLY})
    outlook_again = _raw(headers={"Thread-Index": OUTLOOK_REPLY[:30] + "AAAAAA"})
    own = set(keys(bytes(original)))
    assert own & set(keys(by_parent)) and own & set(keys(by_references))
    assert set(keys(by_tag)) & set(keys(tagged))
    assert set(keys(outlook)) & set(keys(outlook_again))
    stranger = set(keys(_raw(subject="Anderes Thema")))
    for other in (by_parent, by_references, by_tag, outlook):
        assert not stranger & set(keys(other))
    # a key is a hash: nothing of the headers is stored
    assert all(len(key) == 32 and "example" not in key for key in keys(by_parent))
    # a mail without a Message-ID is keyed by its bytes: its second delivery shares the key
    bare = b"Subject: ohne Kennung\r\n\r\nText\r\n"
    assert keys(bare) == keys(bare) and keys(bare) != keys(bare + b"!")


def _add(db: Database, raw: bytes, key: str) -> int:
    with db.session() as session:
        [item] = keyed(db, [spool.NewInboxItem("smtp", key, raw)])
        [inbox_id] = spool.add_inbox_items(session, [item])
    return inbox_id


def _claim(db: Database) -> int | None:
    with db.session() as session:
        claim = spool.claim_inbox(session, "test")
    return claim.id if claim is not None else None


def test_sqlite_rows_get_no_keys_and_are_claimed_in_inbox_order(db: Database) -> None:
    if not db.is_sqlite:
        pytest.skip("the SQLite path")
    original = make_mail()
    first = _add(db, bytes(original), "o")
    second = _add(db, _raw(headers={"In-Reply-To": original["Message-ID"]}), "r")
    with db.reading() as session:
        assert session.scalars(select(InboxConversation)).all() == []
    assert (_claim(db), _claim(db)) == (first, second)  # as before: no waiting on SQLite


def test_a_reply_is_not_claimed_while_its_original_waits_but_after_it_settled(
    db: Database,
) -> None:
    if db.is_sqlite:
        pytest.skip("several instances claim from one queue on PostgreSQL only")
    original = make_mail()
    first = _add(db, bytes(original), "o")
    reply = _add(db, _raw(subject="Re", headers={"In-Reply-To": original["Message-ID"]}), "r")
    stranger = _add(db, _raw(subject="Anderes"), "s")
    assert _claim(db) == first  # processing now, on "another instance"
    assert _claim(db) == stranger  # the reply waits; an unrelated mail does not
    assert _claim(db) is None
    with db.session() as session:
        spool.finish_inbox(session, first, worker="test", ticket_id=None, stage=None, reason=None)
        # a finished row's keys are gone: they would only grow the table
        assert session.scalars(
            select(InboxConversation).where(InboxConversation.inbox_id == first)).all() == []
    assert _claim(db) == reply


def test_a_quarantined_original_does_not_stall_its_replies(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("several instances claim from one queue on PostgreSQL only")
    original = make_mail()
    first = _add(db, bytes(original), "o")
    reply = _add(db, _raw(subject="Re", headers={"References": original["Message-ID"]}), "r")
    assert _claim(db) == first
    assert _claim(db) is None
    with db.session() as session:
        spool.quarantine_inbox(session, first, worker="test", stage="parse", reason="broken")
    assert _claim(db) == reply


def test_a_copy_in_flight_elsewhere_is_waited_for_and_finished_as_a_duplicate(
    db: Database, settings: Settings
) -> None:
    """Two instances run the same mail's stages at once: the second copy's guard waits for the
    first copy's transaction and stops as a duplicate once it commits (the old check-then-insert
    let both through: two tickets)."""
    if db.is_sqlite:
        pytest.skip("SQLite has one writer: the copies cannot overlap")
    mail = parsed_mail()
    outcome: list[object] = []
    started = threading.Event()

    def second_copy() -> None:
        with stage_context(db, settings, parsed_mail(message_id=mail.message_id)) as ctx:
            started.set()
            try:
                guard.run(ctx)
                outcome.append("passed")
            except Stop as stop:
                outcome.append(stop.reason)

    with stage_context(db, settings, mail) as ctx:
        guard.run(ctx)
        record.run(ctx)
        other = threading.Thread(target=second_copy)
        other.start()
        started.wait(10)
        time.sleep(0.5)  # the second copy is in its guard by now, waiting
        assert outcome == []
        ticket_id = ctx.ticket.id if ctx.ticket is not None else None
    other.join(30)
    assert outcome == [guard.DUPLICATE]
    with db.reading() as session:
        kinds = session.scalars(select(Event.kind).where(Event.ticket_id == ticket_id)).all()
    assert "duplicate" in kinds


def test_two_instances_first_using_a_round_robin_counter_at_once_both_get_a_turn(
    db: Database,
) -> None:
    """The first use inserted the row after an UPDATE found none: the second instance's INSERT
    waited for the first's transaction and then failed (UniqueViolation, mail quarantined)."""
    if db.is_sqlite:
        pytest.skip("SQLite has one writer")
    turns: list[object] = []

    def other_instance() -> None:
        try:
            with db.session() as session:
                turns.append(next_in_rotation(session, "it"))
        except Exception as exc:  # recorded: the assertion shows it
            turns.append(exc)

    with db.session() as session:
        turns.append(next_in_rotation(session, "it"))
        other = threading.Thread(target=other_instance)
        other.start()
        time.sleep(0.5)  # the first instance's batch goes on with other mails
    other.join(30)
    assert sorted(turns) == [0, 1], turns  # type: ignore[type-var]


def test_a_tickets_articles_are_listed_in_arrival_order(
    db: Database, make_settings: Callable[..., Settings]
) -> None:
    """Processed out of order (an earlier mail after a later one): listed as they arrived."""
    now = utcnow()
    with db.session() as session:
        store = TicketStore(session)
        ticket = store.create_ticket(prefix="LDS", subject="x", requester="a@example.net",
                                     language="de", conversation=None, now=now)
        for key, arrived in (("later", now), ("earlier", now - timedelta(seconds=5))):
            inbox = InboxItem(source="smtp", source_key=key, raw=b"x", received_at=arrived)
            session.add(inbox)
            session.flush()
            store.add_article(ticket, kind="requester", direction="in", subject=key,
                              inbox_id=inbox.id, created_at=now)
        ref = ticket.ref
    with db.reading() as session:
        listed = TicketStore(session).with_articles(ref)
        assert listed is not None
        assert [a.subject for a in listed.articles] == ["earlier", "later"]
        by_id = session.scalars(select(Article.subject).order_by(Article.id)).all()
        assert by_id == ["later", "earlier"]
