"""thread stage: a mail finds its ticket by `[LDS-N]` in the subject, In-Reply-To/References
or Outlook's Thread-Index; a stranger quoting a reference gets a new linked ticket; a reply
reopens a resolved ticket within `tickets.reopen_days`. The stage function on a Context over
a real database, then the same through the running service."""

from __future__ import annotations

import base64
import uuid
from datetime import timedelta

import pytest

from gateway.app import App
from gateway.config import Settings
from gateway.mail import threadindex
from gateway.mail.model import Address
from gateway.pipeline import thread
from gateway.pipeline.context import Context
from storage.engine import Database
from storage.models import Ticket, utcnow
from tests.fakes.smtp import Sink
from tests.helpers import (
    OUTLOOK_THREAD_INDEX,
    articles,
    make_mail,
    open_ticket_row,
    parsed_mail,
    send,
    stage_context,
    tickets,
    wait_for,
)


@pytest.mark.parametrize(
    ("subject", "ref"),
    [
        ("Re: [LDS-7] Drucker", "LDS-7"),
        ("AW: WG: [ lds - 0012 ] Drucker", "LDS-12"),
        ("Drucker [LDS-3] und [LDS-4]", "LDS-3"),
        ("Drucker [ABC-3]", None),
        ("Drucker LDS-3", None),
    ],
)
def test_subject_ref_finds_the_first_tag_of_our_prefix(subject: str, ref: str | None) -> None:
    assert thread.subject_ref(subject, "LDS") == ref


def test_clean_subject_drops_reply_prefixes_and_ticket_tags() -> None:
    assert thread.clean_subject("AW: Re: WG: [LDS-7]  Drucker   defekt", "LDS") == "Drucker defekt"
    assert thread.clean_subject("Re[2]: SV: Fwd: Anfrage", "LDS") == "Anfrage"


def test_a_mail_without_any_reference_leaves_the_ticket_to_record(
    db: Database, settings: Settings
) -> None:
    with stage_context(db, settings) as ctx:
        open_ticket_row(ctx)
        thread.run(ctx)
        assert ctx.ticket is None and ctx.linked_ticket is None and ctx.decisions == []


def threaded_by(ctx: Context) -> str:
    [decision] = [d for d in ctx.decisions if d.what == "threaded"]
    return str(decision.detail["by"])


def test_each_way_of_finding_the_ticket_is_recorded(db: Database, settings: Settings) -> None:
    index = threadindex.new_index(utcnow(), uuid.uuid4())
    with stage_context(db, settings) as ctx:
        ticket = open_ticket_row(ctx, status="open",
                                 conversation=threadindex.conversation_key(index))
        ctx.store.add_message_refs(ticket, ["<ack@example.org>"], "out")
        ctx.prepared.mail = parsed_mail(subject=f"AW: [{ticket.ref}] Drucker")
        thread.run(ctx)
        assert ctx.ticket is ticket and threaded_by(ctx) == "subject reference"
    with stage_context(db, settings, parsed_mail(references=["<ack@example.org>"])) as ctx:
        thread.run(ctx)
        assert ctx.ticket is not None and threaded_by(ctx) == "In-Reply-To/References"
    child = threadindex.child_index(index, utcnow())
    with stage_context(db, settings, parsed_mail(thread_index=child)) as ctx:
        thread.run(ctx)
        assert ctx.ticket is not None and threaded_by(ctx) == "Thread-Index"


def test_a_stranger_quoting_the_reference_is_linked_not_threaded(
    db: Database, settings: Settings
) -> None:
    stranger = parsed_mail(from_=Address("Max Fremd", "max@elsewhere.example"),
                           subject="Re: [LDS-1] Drucker")
    with stage_context(db, settings, stranger) as ctx:
        ticket = open_ticket_row(ctx, status="open")
        thread.run(ctx)
        assert ctx.ticket is None and ctx.linked_ticket is ticket
        assert [d.what for d in ctx.decisions] == ["new-linked"]


def test_a_requester_reply_reopens_within_the_period_and_links_after_it(
    db: Database, settings: Settings
) -> None:
    reply = parsed_mail(subject="Re: [LDS-1] Drucker")
    with stage_context(db, settings, reply) as ctx:
        ticket = open_ticket_row(ctx, status="resolved", resolved_at=ctx.now - timedelta(days=1))
        thread.run(ctx)
        assert ctx.ticket is ticket and ticket.status == "open"
        assert [d.what for d in ctx.decisions] == ["reopened", "threaded"]
    late = timedelta(days=settings.tickets.reopen_days + 1)
    with stage_context(db, settings, reply) as ctx:
        ticket = ctx.store.by_ref("LDS-1")
        assert ticket is not None
        ticket.status, ticket.resolved_at = "resolved", ctx.now - late
        thread.run(ctx)
        assert ctx.ticket is None and ctx.linked_ticket is ticket and ticket.status == "resolved"


def test_a_reply_to_a_closed_ticket_opens_a_linked_one_even_within_the_period(
    db: Database, settings: Settings
) -> None:
    """`closed` is final (auto-close after `resolved`): no reopen, whatever the reopen period."""
    reply = parsed_mail(subject="Re: [LDS-1] Drucker")
    with stage_context(db, settings, reply) as ctx:
        ticket = open_ticket_row(ctx, status="closed", resolved_at=ctx.now - timedelta(hours=1))
        thread.run(ctx)
        assert ctx.ticket is None and ctx.linked_ticket is ticket and ticket.status == "closed"
        assert [d.what for d in ctx.decisions] == ["new-linked"]


def test_closing_keeps_when_the_ticket_was_resolved_and_notes_when_it_closed(
    db: Database, settings: Settings
) -> None:
    with stage_context(db, settings, parsed_mail()) as ctx:
        ticket = open_ticket_row(ctx, status="open")
        ctx.store.set_status(ticket, "resolved", actor="cli", now=ctx.now)
        later = ctx.now + timedelta(days=7)
        ctx.store.set_status(ticket, "closed", actor="system", now=later)
        assert ticket.resolved_at == ctx.now and ticket.closed_at == later


def test_automatic_mail_and_pending_tickets(db: Database, settings: Settings) -> None:
    """An out-of-office answer never reopens; a requester's answer to `pending` opens it."""
    reply = parsed_mail(subject="Re: [LDS-1] Drucker")
    with stage_context(db, settings, reply, automatic_reason="Auto-Submitted: auto-replied") as ctx:
        ticket = open_ticket_row(ctx, status="resolved", resolved_at=ctx.now)
        thread.run(ctx)
        assert ctx.ticket is ticket and ticket.status == "resolved"
    with stage_context(db, settings, reply) as ctx:
        ticket = ctx.store.by_ref("LDS-1")
        assert ticket is not None
        ticket.status = "pending"
        thread.run(ctx)
        assert ticket.status == "open"
        assert [d.what for d in ctx.decisions] == ["requester-answered", "threaded"]


# --- through the running service (moved from test_end_to_end.py) ----------------------------


def test_replies_thread_by_subject_references_and_outlook_thread_index(
    service: App, sink: Sink
) -> None:
    first = make_mail(
        headers={
            "Thread-Index": base64.b64encode(OUTLOOK_THREAD_INDEX).decode(),
            "Thread-Topic": "Drucker im 3. OG defekt",
        }
    )
    send(service.settings, first)
    wait_for(lambda: sink.messages)
    ack = sink.parsed()[0]

    by_subject = make_mail(subject=f"Re: AW: {ack['Subject']}", body="Noch eine Info.")
    by_references = make_mail(
        subject="ganz anderer Betreff",
        body="Nachtrag",
        headers={"References": f"{first['Message-ID']} {ack['Message-ID']}"},
    )
    child = OUTLOOK_THREAD_INDEX + bytes.fromhex("0000a1b2c3")
    outlook = make_mail(
        subject="AW: Drucker im 3. OG defekt",
        body="Antwort aus Outlook",
        headers={
            "Thread-Index": base64.b64encode(child).decode(),
            "Thread-Topic": "Drucker im 3. OG defekt",
        },
    )
    for msg in (by_subject, by_references, outlook):
        send(service.settings, msg)
    wait_for(lambda: len(articles(service)) >= 5)  # 4 received + 1 acknowledgement
    assert len(tickets(service)) == 1
    received = [a for a in articles(service) if a.direction == "in"]
    assert {a.message_id for a in received} == {
        m["Message-ID"] for m in (first, by_subject, by_references, outlook)
    }
    assert len(sink.messages) == 1  # replies to an open ticket get no second acknowledgement


def test_stranger_quoting_a_reference_gets_a_new_linked_ticket(service: App, sink: Sink) -> None:
    send(service.settings, make_mail())
    wait_for(lambda: sink.messages)
    stranger = make_mail(
        sender="Max Fremd <max@elsewhere.example>",
        subject="Re: [LDS-1] Drucker im 3. OG defekt",
        body="Was ist da los?",
    )
    send(service.settings, stranger)
    wait_for(lambda: len(tickets(service)) == 2)
    first, second = tickets(service)
    assert second.linked_ticket_id == first.id and second.requester == "max@elsewhere.example"
    assert [
        a.from_addr for a in articles(service) if a.ticket_id == first.id and a.direction == "in"
    ] == ["erika.muster@example.net"]
    wait_for(lambda: len(sink.messages) == 2)
    for _envelope_from, rcpts, raw in sink.messages:  # nothing about LDS-1 to the stranger
        if rcpts == ["max@elsewhere.example"]:
            assert b"[LDS-2]" in raw and b"LDS-1]" not in raw.split(b"\r\n\r\n")[0]


def test_reply_reopens_a_resolved_ticket_within_reopen_days(service: App, sink: Sink) -> None:
    send(service.settings, make_mail())
    wait_for(lambda: sink.messages)
    with service.db.session() as session:
        ticket = session.query(Ticket).one()
        ticket.status, ticket.resolved_at = "resolved", utcnow()
    send(service.settings, make_mail(subject="Re: [LDS-1] Drucker", body="Geht wieder nicht."))
    wait_for(lambda: tickets(service)[0].status == "open")
    assert len(tickets(service)) == 1
    wait_for(lambda: len(sink.messages) == 2)  # "reopened" notice

    with service.db.session() as session:
        ticket = session.query(Ticket).one()
        ticket.status = "resolved"
        ticket.resolved_at = utcnow() - timedelta(days=service.settings.tickets.reopen_days + 1)
    send(service.settings, make_mail(subject="Re: [LDS-1] Drucker", body="Schon wieder."))
    wait_for(lambda: len(tickets(service)) == 2)
    assert tickets(service)[1].linked_ticket_id == tickets(service)[0].id
