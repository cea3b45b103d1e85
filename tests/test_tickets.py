"""TicketStore and the inbox spool on a real database: the cheap write paths (Core inserts,
INSERT … ON CONFLICT DO NOTHING, one-statement claims) keep the semantics of the obvious ones."""

from __future__ import annotations

from sqlalchemy import select

from storage import spool
from storage.engine import Database
from storage.models import Article, Event, InboxItem, MessageRef, Participant, Ticket, utcnow
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
        assert store.has_inbound_message("<m1@x>") and not store.has_inbound_message("<m2@x>")
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
