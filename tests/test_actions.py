"""The ticket actions shared by the #commands stage and the CLI (gateway.pipeline.actions), on a
real database: each change is one audit event, an unchanged value records nothing, and each
action says which mails it calls for."""

from __future__ import annotations

from datetime import timedelta

from gateway.pipeline import actions
from gateway.pipeline.actions import NOTHING, Notify
from storage.engine import Database
from storage.models import Ticket, utcnow
from storage.tickets import TicketStore

BEN, ANNA = "ben.mueller@example.org", "anna.schmidt@example.org"


def _ticket(store: TicketStore) -> Ticket:
    return store.create_ticket(prefix="LDS", subject="Drucker", requester="erika@example.net",
                               language="de", conversation="conv", now=utcnow())


def _events(store: TicketStore, ticket: Ticket) -> list[tuple[str, str, dict[str, object]]]:
    return [(e.kind, e.actor, e.detail) for e in store.events(ticket)]


def test_assigning_tells_the_new_owner_unless_they_took_it_themselves(db: Database) -> None:
    with db.session() as session:
        store = TicketStore(session)
        ticket = _ticket(store)
        later = utcnow() + timedelta(minutes=1)
        assert actions.assign(store, ticket, BEN, actor="cli:root", now=later) == Notify(
            owner=BEN, requester="assigned"
        )
        assert (ticket.owner, ticket.updated_at) == (BEN, later)
        assert store.participants(ticket)[BEN] == "agent"  # his replies count as the owner's
        assert actions.assign(store, ticket, BEN, actor="cli:root", now=later) == NOTHING
        assert actions.assign(store, ticket, ANNA, actor=ANNA, now=later) == NOTHING  # #take
        assert actions.assign(store, ticket, None, actor="cli:root", now=later) == NOTHING
        assert ticket.owner is None
        assert _events(store, ticket) == [
            ("assigned", "cli:root", {"old": None, "new": BEN}),
            ("assigned", ANNA, {"old": BEN, "new": ANNA}),
            ("assigned", "cli:root", {"old": ANNA, "new": None}),
        ]


def test_status_priority_queue_and_tag_record_changes_only(db: Database) -> None:
    with db.session() as session:
        store = TicketStore(session)
        ticket = _ticket(store)
        now = utcnow()
        assert actions.set_status(store, ticket, "pending", actor=BEN, now=now) == Notify(
            requester="status"
        )
        assert actions.set_status(store, ticket, "pending", actor=BEN, now=now) == NOTHING
        assert actions.set_priority(store, ticket, "high", actor=BEN, now=now) == NOTHING
        assert actions.set_priority(store, ticket, "high", actor=BEN, now=now) == NOTHING
        assert actions.move_to_queue(store, ticket, "it", actor=BEN, now=now) == NOTHING
        assert actions.move_to_queue(store, ticket, "it", actor=BEN, now=now) == NOTHING
        for tag in ("vpn", "vpn", "drucker"):
            assert actions.add_tag(store, ticket, tag, actor=BEN, now=now) == NOTHING
        assert (ticket.status, ticket.priority, ticket.queue, ticket.tags) == (
            "pending", "high", "it", ["vpn", "drucker"]
        )
        assert [(kind, detail) for kind, _, detail in _events(store, ticket)] == [
            ("status", {"old": "new", "new": "pending"}),
            ("priority", {"old": "normal", "new": "high"}),
            ("queue", {"old": None, "new": "it"}),
            ("tag", {"tag": "vpn"}),
            ("tag", {"tag": "drucker"}),
        ]


def test_a_note_is_an_internal_article_with_its_redaction_counts_in_the_event(
    db: Database,
) -> None:
    with db.session() as session:
        store = TicketStore(session)
        ticket = _ticket(store)
        now = utcnow()
        notify = actions.add_note(store, ticket, "Rückruf mit [NAME-1] vereinbart",
                                  actor="cli:root", now=now, redactions={"PERSON": 1})
        assert notify == NOTHING  # a note is never sent
        ticket_id = ticket.id
    with db.reading() as session:
        store = TicketStore(session)
        stored = store.with_articles("LDS-1")
        assert stored is not None and stored.id == ticket_id
        [note] = stored.articles
        assert (note.kind, note.direction, note.from_addr, note.body) == (
            "note", "in", "cli:root", "Rückruf mit [NAME-1] vereinbart"
        )
        [event] = store.events(stored)
        assert (event.kind, event.detail) == ("note", {"article_id": note.id, "PERSON": 1})
