"""SMTP in → ticket → acknowledgement out through a real SMTP sink, with the rate limit and
concurrency — the running service, real sockets, a real database. (Threading, the loop guard
and duplicates through the service: tests/test_pipeline_thread.py and test_pipeline_guard.py.)"""

from __future__ import annotations

import threading
from email.utils import make_msgid

from gateway.app import App
from tests.fakes.smtp import Sink
from tests.helpers import (
    articles,
    make_mail,
    send,
    tickets,
    wait_for,
)


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
