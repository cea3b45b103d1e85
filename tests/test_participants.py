"""People a requester copies in become parties to the ticket, but only so many (issue 12, 6):
a mail with 3,000 Cc addresses, over real SMTP, makes at most `tickets.max_cc_per_mail`
parties, the rest stay on the stored mail only, a later agent reply goes to at most that many
plus the requester, and the service keeps answering other mail meanwhile."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from email.utils import make_msgid

import pytest

from gateway.app import App
from gateway.config import Settings
from storage.models import Article, Event, Participant, Ticket
from tests.fakes.smtp import Sink
from tests.helpers import make_mail, running, send, wait_for

REQUESTER = "erika.muster@example.net"
SERVICE = ["servicedesk@example.org"]  # the envelope: the Cc'd people get their copy elsewhere
CAP = 20


@pytest.fixture
def service(make_settings: Callable[..., Settings], sink: Sink) -> Iterator[App]:
    settings = make_settings(
        outgoing={"transport": "smtp", "host": "127.0.0.1", "port": sink.port,
                  "interval_seconds": 0.1},
        worker={"interval_seconds": 0.05},
        tickets={"max_cc_per_mail": CAP, "max_cc_per_ticket": CAP + 5},
    )
    app = App.build(settings)
    with running(app):
        yield app


def copied(count: int, start: int = 0) -> list[str]:
    return [f"kollege.{n:04d}@example.com" for n in range(start, start + count)]


def tickets(app: App) -> list[Ticket]:
    with app.db.session() as session:
        return list(session.query(Ticket).order_by(Ticket.id))


def cc_parties(app: App, ticket_id: int = 1) -> list[str]:
    with app.db.session() as session:
        rows = session.query(Participant).filter_by(ticket_id=ticket_id, role="cc")
        return sorted(p.email for p in rows)


def articles(app: App) -> int:
    with app.db.session() as session:
        return session.query(Article).filter_by(direction="in").count()


def events(app: App, kind: str) -> list[Event]:
    with app.db.session() as session:
        return list(session.query(Event).filter_by(kind=kind).order_by(Event.id))


def reply_to_notification(notification: EmailMessage, body: str, agent: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = agent
    msg["To"] = notification["Reply-To"].addresses[0].addr_spec
    msg["Subject"] = f"AW: {notification['Subject']}"
    msg["Message-ID"] = make_msgid(domain="example.org")
    msg["In-Reply-To"] = notification["Message-ID"]
    msg["References"] = notification["Message-ID"]
    msg.set_content(body)
    return msg


def test_three_thousand_cc_make_at_most_the_cap_of_mailed_parties(
    service: App, sink: Sink
) -> None:
    everyone = copied(3000)
    began = time.monotonic()  # a first mail, so the worker's start-up is not timed below
    send(service.settings, make_mail(sender="max@example.net", subject="Passwort vergessen"))
    wait_for(lambda: len(tickets(service)) == 1, timeout=60)
    warm = time.monotonic() - began
    mail = make_mail(subject="VPN Störung seit heute", body="Guten Tag,\ndas VPN bricht ab.\n")
    mail["Cc"] = ", ".join(everyone)
    began = time.monotonic()
    send(service.settings, mail, rcpt=SERVICE)
    accepted = time.monotonic() - began
    wait_for(lambda: len(tickets(service)) == 2, timeout=60)
    processed = time.monotonic() - began
    # Another requester's mail right behind it is answered too: nothing hangs on the big one.
    send(service.settings, make_mail(sender="moritz@example.net", subject="Monitor flackert"))
    wait_for(lambda: len(tickets(service)) == 3, timeout=60)
    after = time.monotonic() - began - processed
    print(f"\nfirst mail {warm:.2f} s; 3,000 Cc: SMTP accepted in {accepted:.2f} s, "
          f"ticket in {processed:.2f} s; the next mail's ticket {after:.2f} s later")
    assert accepted < 5 and processed < 20 and after < 10

    parties = cc_parties(service, ticket_id=2)
    assert parties == sorted(everyone[:CAP])  # the first ones as written, no more
    [limited] = events(service, "cc-limited")
    assert limited.detail["copied"] == 3000 and limited.detail["parties"] == CAP
    assert limited.detail["not_mailed"] == 3000 - CAP
    with service.db.session() as session:
        article = session.query(Article).filter_by(ticket_id=2, direction="in").one()
        assert len(article.cc_addrs) == 3000  # recorded on the stored mail, not mailed

    # The acknowledgement goes to the requester alone; an agent's reply to requester + cap.
    ack = wait_for(lambda: [m for m in sink.messages if REQUESTER in m[1]])
    assert ack[0][1] == [REQUESTER]
    owner = tickets(service)[1].owner
    assert owner is not None
    notification = wait_for(lambda: next(
        (m for (_, rcpts, _), m in zip(sink.messages, sink.parsed(), strict=True)
         if rcpts == [owner] and "[LDS-2]" in m["Subject"]), None))
    before = len(sink.messages)
    answer = reply_to_notification(notification, "Bitte VPN neu starten.\n", agent=owner)
    send(service.settings, answer, mail_from=owner,
         rcpt=[notification["Reply-To"].addresses[0].addr_spec])
    relayed = wait_for(lambda: [m for m in sink.messages[before:] if REQUESTER in m[1]])
    [(_, rcpts, _)] = relayed
    assert len(rcpts) <= CAP + 1
    assert sorted(rcpts) == sorted([REQUESTER, *everyone[:CAP]])


def test_later_mails_fill_the_ticket_cap_and_no_more(service: App, sink: Sink) -> None:
    first = make_mail(subject="Drucker im 3. OG defekt")
    first["Cc"] = ", ".join(copied(CAP))
    send(service.settings, first, rcpt=SERVICE)
    wait_for(lambda: len(cc_parties(service)) == CAP)
    assert events(service, "cc-limited") == []  # exactly the cap: nothing left out
    again = make_mail(subject="AW: [LDS-1] Drucker im 3. OG defekt", body="Noch da.\n")
    again["Cc"] = ", ".join(copied(10, start=CAP - 2))  # 2 already parties, 8 new
    send(service.settings, again, rcpt=SERVICE)
    wait_for(lambda: events(service, "cc-limited"))
    assert len(tickets(service)) == 1
    assert cc_parties(service) == sorted(copied(CAP + 5))  # the ticket cap is CAP + 5
    [limited] = events(service, "cc-limited")
    assert (limited.detail["copied"], limited.detail["parties"]) == (8, 5)


def test_a_copied_party_may_reply_on_the_ticket_one_beyond_the_cap_may_not(
    service: App, sink: Sink
) -> None:
    everyone = copied(CAP + 1)
    mail = make_mail(subject="Drucker im 3. OG defekt")
    mail["Cc"] = ", ".join(everyone)
    send(service.settings, mail, rcpt=SERVICE)
    wait_for(lambda: events(service, "cc-limited"))
    for sender in (everyone[0], everyone[-1]):
        send(service.settings, make_mail(sender=sender, subject="AW: [LDS-1] Drucker",
                                         body="Bei mir auch.\n"))
    wait_for(lambda: articles(service) == 3)
    # the party's reply joins LDS-1; the one left out opens a new ticket linked to it
    assert [t.requester for t in tickets(service)] == [REQUESTER, everyone[-1]]
