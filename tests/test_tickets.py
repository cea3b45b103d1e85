"""TicketStore and the inbox spool on a real database: the cheap write paths (Core inserts,
INSERT … ON CONFLICT DO NOTHING, one-statement claims) keep the semantics of the obvious ones."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select

from storage import spool
from storage.autoreplies import AutoReplies
from storage.engine import Database
from storage.models import (
    Article,
    AutoReplyLog,
    Event,
    InboxItem,
    MessageRef,
    OutboxItem,
    Participant,
    Ticket,
    utcnow,
)
from storage.outbox import Outbox
from storage.tickets import TicketStore


def new_ticket(store: TicketStore, subject: str = "Drucker") -> Ticket:
    return store.create_ticket(prefix="LDS", subject=subject, requester="erika@example.net",
                               language="de", conversation="conv", now=utcnow())


def test_created_ticket_is_attached_and_later_changes_are_saved(db: Database) -> None:
    with db.session() as session:
        store = TicketStore(session)
        first, second = new_ticket(store), new_ticket(store, "VPN")
        assert (first.ref, second.ref) == ("LDS-1", "LDS-2")
        assert first.status == "new" and first.tags == [] and first.pseudonyms == {}
        assert store.by_ref("lds-2") is second  # the same object: it is in the session
        second.queue, second.tags = "it", ["vpn"]
        store.set_status(second, "open", actor="system", now=utcnow())
    with db.reading() as session:
        stored = session.scalars(select(Ticket).where(Ticket.ref == "LDS-2")).one()
        assert (stored.queue, stored.tags, stored.status) == ("it", ["vpn"], "open")
        [event] = session.scalars(select(Event).where(Event.ticket_id == stored.id)).all()
        assert (event.kind, event.detail) == ("status", {"old": "new", "new": "open"})


def test_participants_and_message_refs_are_stored_once(db: Database) -> None:
    with db.session() as session:
        store = TicketStore(session)
        ticket = new_ticket(store)
        store.add_participant(ticket, "Erika@Example.net", "requester")
        store.add_participant(ticket, "erika@example.net", "cc")  # already a party: role kept
        store.add_message_refs(ticket, ["<a@x>", "<b@x>", "<a@x>", ""], "in")
        store.add_message_refs(ticket, ["<b@x>", "<c@x>"], "out")
        assert store.participants(ticket) == {"erika@example.net": "requester"}
        assert store.message_ids(ticket) == ["<a@x>", "<b@x>", "<c@x>"]
        assert store.by_message_ids(["<zz@x>", "<c@x>"]) is ticket
    with db.reading() as session:
        assert len(session.scalars(select(Participant)).all()) == 1
        refs = session.execute(select(MessageRef.message_id, MessageRef.direction)
                               .order_by(MessageRef.id)).all()
        assert [tuple(r) for r in refs] == [("<a@x>", "in"), ("<b@x>", "in"), ("<c@x>", "out")]


def test_article_comes_back_with_its_id_and_attachments_point_at_it(db: Database) -> None:
    with db.session() as session:
        store = TicketStore(session)
        ticket = new_ticket(store)
        article = store.add_article(ticket, kind="requester", direction="in",
                                    from_addr="erika@example.net", to_addrs=["sd@example.org"],
                                    cc_addrs=[], subject="Drucker", body="Geht nicht.",
                                    message_id="<m1@x>", created_at=utcnow())
        store.add_attachment(article, filename="a.pdf", content_type="application/pdf",
                             size=3, sha256="0" * 64)
        assert article.id is not None and article.kind == "requester"
        assert store.message_id_seen("<m1@x>")[0] and not store.message_id_seen("<m2@x>")[0]
    with db.reading() as session:
        stored = session.get(Article, article.id)
        assert stored is not None and [a.filename for a in stored.attachments] == ["a.pdf"]


def test_add_inbox_items_returns_ids_in_order_and_existing_ids_for_known_keys(
    db: Database,
) -> None:
    def item(key: str) -> spool.NewInboxItem:
        return spool.NewInboxItem(source="smtp", source_key=key, raw=f"Subject: {key}\r\n\r\nx"
                                  .encode(), envelope_from="a@example.net",
                                  envelope_to=("sd@example.org",))

    with db.session() as session:
        first = spool.add_inbox_items(session, [item("a"), item("b")])
    with db.session() as session:  # a re-fetch after a crash, and a key twice in one batch
        second = spool.add_inbox_items(session, [item("c"), item("a"), item("c"), item("d")])
    assert len(set(first)) == 2 and first == sorted(first)
    assert second[1] == first[0] and second[0] == second[2]
    assert len({*first, *second}) == 4
    with db.reading() as session:
        rows = session.scalars(select(InboxItem).order_by(InboxItem.id)).all()
        assert [r.source_key for r in rows] == ["a", "b", "c", "d"]
        assert rows[0].state == "queued" and rows[0].size == len(item("a").raw)
        assert rows[0].envelope_to == ["sd@example.org"]


def test_claim_hands_out_the_oldest_row_whole_and_release_takes_the_attempt_back(
    db: Database,
) -> None:
    raw = b"Subject: x\r\n\r\nbody"
    with db.session() as session:
        ids = spool.add_inbox_items(session, [
            spool.NewInboxItem(source="smtp", source_key=k, raw=raw) for k in ("1", "2")])
    with db.session() as session:
        claim = spool.claim_inbox(session, "w1")
    assert claim is not None and claim.id == ids[0] and claim.attempts == 1
    assert claim.item.raw == raw and claim.item.state == "processing"
    assert claim.item.claimed_by == "w1"
    with db.session() as session:
        assert not spool.release_inbox(session, claim, "someone-else")
        assert spool.release_inbox(session, claim, "w1")
    with db.session() as session:
        again = spool.claim_inbox(session, "w1")
    assert again is not None and again.id == ids[0] and again.attempts == 1


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    """The SQL statements run on `db` inside the block (an executemany counts once)."""
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(" ".join(args[2].split()))

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


def test_message_id_seen_answers_the_duplicate_and_the_loop_question_at_once(
    db: Database,
) -> None:
    with db.session() as session:
        store = TicketStore(session)
        ticket = new_ticket(store)
        store.add_article(ticket, kind="requester", direction="in", from_addr="e@example.net",
                          to_addrs=[], cc_addrs=[], subject="s", body="b",
                          message_id="<in@x>", created_at=utcnow())
        store.add_article(ticket, kind="system", direction="out", from_addr="sd@example.org",
                          to_addrs=[], cc_addrs=[], subject="s", body="b",
                          message_id="<ack@x>", created_at=utcnow())
        store.add_message_refs(ticket, ["<in@x>"], "in")
        store.add_message_refs(ticket, ["<ack@x>"], "out")
        with statements(db) as seen:
            answers = [store.message_id_seen(m) for m in ("<in@x>", "<ack@x>", "<new@x>")]
        assert answers == [(True, False), (False, True), (False, False)]
        assert len(seen) == 3  # one statement per Message-ID


def test_a_routed_ticket_is_written_by_its_insert_alone(db: Database) -> None:
    with statements(db) as seen, db.session() as session:
        store = TicketStore(session)
        ticket = store.create_ticket(prefix="LDS", subject="VPN", requester="e@example.net",
                                     language="de", conversation=None, now=utcnow(),
                                     queue="it", owner="anna@example.org", priority="high",
                                     tags=["vpn"], pseudonyms={"ab12": 1})
        store.touch(ticket, ticket.updated_at)  # unchanged: nothing to write
    assert not [s for s in seen if s.startswith("UPDATE tickets")]
    with db.reading() as session:
        stored = session.scalars(select(Ticket)).one()
        assert (stored.queue, stored.owner, stored.priority, stored.tags, stored.pseudonyms) == (
            "it", "anna@example.org", "high", ["vpn"], {"ab12": 1})


def test_touch_stores_updated_at_at_once_and_leaves_nothing_to_flush(db: Database) -> None:
    with db.session() as session:
        ref = new_ticket(TicketStore(session)).ref
    later = utcnow() + timedelta(minutes=5)
    with db.session() as session:
        store = TicketStore(session)
        ticket = store.by_ref(ref)
        assert ticket is not None
        store.touch(ticket, later)
        assert ticket.updated_at == later and not session.dirty
    with db.reading() as session:
        assert session.scalars(select(Ticket.updated_at)).one() == later


def test_deferred_outbox_rows_and_refs_are_written_together_and_read_back_inside(
    db: Database,
) -> None:
    now = utcnow()
    with db.session() as session:
        store, box = TicketStore(session), Outbox(session)
        ticket = new_ticket(store)
        with statements(db) as seen, store.deferred(), box.deferred():
            for n in (1, 2):
                box.queue(ticket_id=ticket.id, kind="agent-notify", message_id=f"<o{n}@x>",
                          envelope_from="sd@example.org", envelope_to=["a@example.org"],
                          raw=f"mail {n}".encode(), now=now)
                store.add_message_refs(ticket, [f"<o{n}@x>"], "out")
            assert session.scalar(select(func.count()).select_from(OutboxItem)) == 0  # held
            assert store.message_ids(ticket) == ["<o1@x>", "<o2@x>"]  # a read writes them first
            assert box.agent_mails(ticket.id) == [b"mail 2", b"mail 1"]  # newest first
            store.add_message_refs(ticket, ["<o3@x>"], "out")
        assert [s.split(" (")[0] for s in seen if s.startswith("INSERT")] == [
            "INSERT INTO message_refs", "INSERT INTO outbox", "INSERT INTO message_refs"]
        with pytest.raises(RuntimeError), store.deferred(), box.deferred():
            box.queue(ticket_id=ticket.id, kind="agent-notify", message_id="<lost@x>",
                      envelope_from="sd@example.org", envelope_to=["a@example.org"],
                      raw=b"mail", now=now)
            raise RuntimeError  # the transaction fails: its held rows are dropped
        assert store.message_ids(ticket) == ["<o1@x>", "<o2@x>", "<o3@x>"]
    with db.reading() as session:
        stored = session.scalars(select(OutboxItem.message_id).order_by(OutboxItem.id)).all()
        assert stored == ["<o1@x>", "<o2@x>"]


def test_auto_reply_is_logged_only_under_the_limit_and_can_be_taken_back(db: Database) -> None:
    now = utcnow()
    since = now - timedelta(hours=1)
    with db.session() as session:
        log = AutoReplies(session)
        session.add(AutoReplyLog(recipient="erika@example.net",
                                 created_at=since - timedelta(seconds=1)))  # too old
        session.flush()
        logged = [log.log_within("Erika@example.net", now, since=since, limit=2)
                  for _ in range(3)]
        assert logged[0] is not None and logged[1] is not None and logged[2] is None

        def in_window() -> int:
            return int(session.scalar(
                select(func.count()).select_from(AutoReplyLog)
                .where(AutoReplyLog.recipient == "erika@example.net",
                       AutoReplyLog.created_at >= since)) or 0)

        assert in_window() == 2
        log.unlog(logged[1])
        assert in_window() == 1
        assert log.log_within("erika@example.net", now, since=since, limit=2)


def test_touch_joins_other_changes_in_one_update(db: Database) -> None:
    with db.session() as session:
        ref = new_ticket(TicketStore(session)).ref
    with statements(db) as seen, db.session() as session:
        store = TicketStore(session)
        ticket = store.by_ref(ref)
        assert ticket is not None
        ticket.pseudonyms = {"ab12": 1}
        store.touch(ticket, utcnow() + timedelta(minutes=5))
    assert len([s for s in seen if s.startswith("UPDATE tickets")]) == 1


def test_a_ticket_rolled_back_with_its_savepoint_does_not_block_the_next(db: Database) -> None:
    """The worker runs each mail of a batch in a savepoint; a failed one takes its ticket back,
    and the next mail's ticket may get the same number and id (SQLite: the counter row rolls
    back with it; PostgreSQL's sequence does not, the number stays a gap)."""
    with db.session() as session:
        failed = session.begin_nested()
        first = new_ticket(TicketStore(session), "wird zurückgerollt")
        failed.rollback()
        done = session.begin_nested()
        store = TicketStore(session)
        second = new_ticket(store, "bleibt")
        done.commit()
        assert (second.ref == first.ref) == db.is_sqlite
        assert store.by_ref(second.ref) is second
    with db.reading() as session:
        assert session.scalars(select(Ticket.subject)).all() == ["bleibt"]


def test_touch_taken_back_by_a_savepoint_rollback_is_not_remembered(db: Database) -> None:
    with db.session() as session:
        ticket = new_ticket(TicketStore(session))
        stored = ticket.updated_at
    with db.session() as session:
        store = TicketStore(session)
        ticket = store.by_ref(ticket.ref)
        assert ticket is not None
        savepoint = session.begin_nested()
        store.touch(ticket, utcnow() + timedelta(minutes=5))
        savepoint.rollback()
        assert ticket.updated_at == stored
