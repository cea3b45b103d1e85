"""SMTP in → ticket → acknowledgement out through a real SMTP sink, with threading, loop guard,
rate limit, duplicates and concurrency — the running service, real sockets, a real database."""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from email.utils import make_msgid

import pytest

from gateway.app import App
from gateway.config import Settings
from storage.models import Ticket, utcnow
from tests.conftest import Sink, wait_for
from tests.helpers import OUTLOOK_THREAD_INDEX, articles, make_mail, running, send, tickets


@pytest.fixture
def service(make_settings: Callable[..., Settings], sink: Sink) -> Iterator[App]:
    # Agents in no team: no agent notifications, so the sink sees only requester mail here
    # (agents' mail is tested in test_agents.py).
    settings = make_settings(
        outgoing={"transport": "smtp", "host": "127.0.0.1", "port": sink.port,
                  "interval_seconds": 0.1},
        agents=[{"email": "anna.schmidt@example.org", "name": "Anna Schmidt"}],
    )
    app = App.build(settings)
    with running(app):
        yield app


def acks_to(sink: Sink, address: str) -> list:
    return [m for m in sink.parsed() if address in str(m["To"])]


def test_new_mail_opens_ticket_and_is_acknowledged(service: App, sink: Sink) -> None:
    request = make_mail()
    send(service.settings, request)
    wait_for(lambda: sink.messages)
    [(envelope_from, rcpts, _)] = sink.messages
    ack = sink.parsed()[0]
    [ticket] = tickets(service)
    assert ticket.ref == "LDS-1" and ticket.requester == "erika.muster@example.net"
    assert ticket.subject == "Drucker im 3. OG defekt" and ticket.status == "new"
    assert "[LDS-1]" in ack["Subject"]
    assert ack["From"].addresses[0].addr_spec == "servicedesk@example.org"
    assert rcpts == ["erika.muster@example.net"] and envelope_from == "servicedesk@example.org"
    assert ack["In-Reply-To"] == request["Message-ID"]
    assert request["Message-ID"] in ack["References"]
    assert ack["Auto-Submitted"] == "auto-replied"
    assert ack["Message-ID"].endswith("@example.org>")
    assert ack["Thread-Index"]
    raw_headers = sink.messages[0][2].split(b"\r\n\r\n", 1)[0]
    assert raw_headers.isascii()  # umlauts RFC 2047-encoded, no raw UTF-8 in headers


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


def test_automatic_mail_and_bounces_are_recorded_but_not_answered(service: App, sink: Sink) -> None:
    send(
        service.settings,
        make_mail(subject="Abwesenheitsnotiz: Drucker", headers={"Auto-Submitted": "auto-replied"}),
    )
    bounce = make_mail(
        sender="MAILER-DAEMON@example.net",
        subject="Undelivered Mail",
        body="This is the mail system at host example.net.",
    )
    send(service.settings, bounce, mail_from="")
    probe = make_mail(subject="Echte Anfrage")
    send(service.settings, probe)
    wait_for(lambda: sink.messages)
    wait_for(lambda: len([a for a in articles(service) if a.direction == "in"]) == 3)
    assert len(tickets(service)) == 3
    assert [m["In-Reply-To"] for m in sink.parsed()] == [probe["Message-ID"]]


def test_rate_limit_caps_acknowledgements_per_sender(service: App, sink: Sink) -> None:
    for number in range(30):
        send(service.settings, make_mail(subject=f"Anfrage {number}"))
    wait_for(lambda: len(tickets(service)) == 30)
    wait_for(lambda: len(sink.messages) >= 5)
    limit = service.settings.guard.max_auto_replies_per_hour
    assert len(sink.messages) == limit
    with service.db.session() as session:
        from storage.models import OutboxItem

        assert session.query(OutboxItem).count() == limit  # nothing else queued either


def test_same_message_id_twice_is_one_article(service: App, sink: Sink) -> None:
    msg = make_mail()
    send(service.settings, msg)
    send(service.settings, msg)
    wait_for(lambda: sink.messages)
    with service.db.session() as session:
        from storage.models import InboxItem

        wait_for(lambda: session.query(InboxItem).filter_by(state="done").count() == 2)
    assert len([a for a in articles(service) if a.direction == "in"]) == 1


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


def test_concurrent_clients_make_exactly_one_ticket_each(service: App) -> None:
    sent: list[str] = []
    lock = threading.Lock()

    def client(number: int) -> None:
        for index in range(20):
            msg = make_mail(
                sender=f"Nutzer {number} <user{number}@example.net>",
                subject=f"Anfrage {number}-{index}",
                message_id=make_msgid(domain="example.net"),
            )
            send(service.settings, msg)
            with lock:
                sent.append(msg["Message-ID"])

    threads = [threading.Thread(target=client, args=(n,)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wait_for(lambda: len(tickets(service)) >= 200, timeout=60)
    stored = [a.message_id for a in articles(service) if a.direction == "in"]
    assert sorted(stored) == sorted(sent)
    assert len(tickets(service)) == 200
    assert len({t.number for t in tickets(service)}) == 200


def test_replies_sent_right_behind_their_original_land_on_its_ticket_in_order(
    service: App,
) -> None:
    """The prepare process works ahead and prepared mails share a transaction: a reply queued
    right behind its original must still find the ticket the original opens, in inbox order."""
    conversations: list[list[str]] = []
    lock = threading.Lock()

    def client(number: int) -> None:
        for index in range(8):
            ids = [make_msgid(domain="example.net") for _ in range(3)]
            sender = f"Nutzer {number} <user{number}@example.net>"
            subject = f"Anliegen {number}-{index}"
            send(service.settings, make_mail(sender=sender, subject=subject, message_id=ids[0]))
            for parent, reply_id in ((ids[0], ids[1]), (ids[1], ids[2])):
                reply = make_mail(
                    sender=sender,
                    subject=f"AW: {subject}",
                    body="Nachtrag: es geht immer noch nicht.",
                    message_id=reply_id,
                    headers={"In-Reply-To": parent, "References": f"{ids[0]} {parent}"},
                )
                send(service.settings, reply)
            with lock:
                conversations.append(ids)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wait_for(lambda: sum(a.direction == "in" for a in articles(service)) >= 96, timeout=120)

    assert len(tickets(service)) == 32
    received = [a for a in articles(service) if a.direction == "in"]  # ordered by id
    by_ticket: dict[int, list[str]] = {}
    for article in received:
        by_ticket.setdefault(article.ticket_id, []).append(article.message_id)
    assert sorted(by_ticket.values()) == sorted(conversations)
